"""SlidingWindow: the im2col generator of a convolution or pooling window.

Input: a feature map ``(IH, IW, C)`` streamed channels-last in words of
``simd`` lanes.  Output: for every output pixel ``(oy, ox)`` (row-major) the
window ``x[oy·SH + kh − PT, ox·SW + kw − PL, c]`` with out-of-image positions
set to ``pad_value``, ordered

* ``(kh, kw, c)`` (``depthwise=False``, the order an MVAU's weight columns use), or
* ``(c // simd, kh, kw, c % simd)`` (``depthwise=True``: a word's lanes are
  ``simd`` channels of one kernel position, all K positions of a channel group
  before the next group — the order a VVAU or a Pool consumes).

Cycles per frame: one word in or out per cycle, so
``max(OH·OW·KH·KW·C, IH·IW·C) / SIMD``.

Hardware (:mod:`hwgen.hdl.swg`): a writer storing the input words in a line buffer of
:func:`buffer_rows` rows, one per cycle, and a reader issuing the window words one per
cycle once the rows they need are written; a window word is valid
:meth:`SlidingWindow.latency` cycles after its read issue.

Cost terms: const, ``ctr`` (counter bits), ``width`` SIMD·bits, ``mem`` (line buffer RAM).
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import FoldingError, HwgenError
from .base import Layer, register
from .estimate import log2, mem_sum, memory
from .maxplus import INF, NEG, asap
from .pipeline import pipeline_levels

__all__ = ["SlidingWindow", "im2col", "buffer_rows"]


def im2col(x, kernel, stride, pad, pad_value, depthwise=False, simd=1):
    """Reference window generator: (N, IH, IW, C) -> (N, OH, OW, KH·KW·C)."""
    x = np.asarray(x, dtype=np.int64)
    n, ih, iw, c = x.shape
    kh, kw = kernel
    sh, sw = stride
    pt, pl, pb, pr = pad
    xp = np.full((n, ih + pt + pb, iw + pl + pr, c), pad_value, dtype=np.int64)
    xp[:, pt:pt + ih, pl:pl + iw, :] = x
    oh = (ih + pt + pb - kh) // sh + 1
    ow = (iw + pl + pr - kw) // sw + 1
    out = np.empty((n, oh, ow, kh, kw, c), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
    if depthwise:
        out = out.reshape(n, oh, ow, kh * kw, c // simd, simd).transpose(0, 1, 2, 4, 3, 5)
    return out.reshape(n, oh, ow, kh * kw * c)


def _geometry(layer):
    (ih, iw), (kh, kw), (sh, sw) = layer.ifm, layer.kernel, layer.stride
    pt, pl, pb, pr = layer.pad
    oh, ow = layer.ofm
    cf = layer.channels // layer.simd
    return ih, iw, cf, kh, kw, sh, sw, pt, pl, oh, ow


def buffer_rows(layer):
    """Rows ``R`` of the line buffer: the fewest for which a row-level schedule proves the
    steady-state interval ``max(out_words, in_words)``.

    The schedule is conservative (a row counts as written only when all its
    words are, and an output row waits for all its rows), so the hardware,
    which works word by word, is never slower than it. Two regimes:

    * ``out_words > in_words`` (the reader is the bottleneck): the reader
      emits output row ``j`` in cycles ``[j·T_r, (j+1)·T_r)`` (``T_r =
      OW·KH·KW·CF``), releasing the rows below the next ``need`` when it
      completes it; the writer starts row ``g`` as soon as row ``g − R`` is
      released and row ``g − 1`` is written. ``R`` must let the writer finish
      every row before the first output row that reads it begins.
    * otherwise (the writer is the bottleneck, or both are equal): the writer
      takes a word every cycle (row ``g`` in ``[g·T_w, (g+1)·T_w)``, ``T_w =
      IW·CF``); the reader starts output row ``j`` when the previous one is
      done and all of its rows are written. ``R`` must let the release of row
      ``g − R`` come before the writer starts row ``g``.

    Both are max-plus recurrences with period one frame; they are run for a
    few frames from an empty buffer (older history is dominated after one
    frame) and checked on the last one. ``O(frames·(IH + OH))`` per candidate.
    """
    ih, iw, cf, kh, kw, sh, sw, pt, pl, oh, ow = _geometry(layer)
    iwcf, t_r = iw * cf, ow * kh * kw * cf
    out_words, in_words = oh * t_r, ih * iwcf
    need = [max(0, j * sh - pt) for j in range(oh)]
    lo = [max(0, j * sh - pt) for j in range(oh)]                 # first image row of window j
    hi = [min(ih - 1, j * sh - pt + kh - 1) for j in range(oh)]   # last image row of window j
    first_use = [None] * ih                                       # first output row reading row g
    for j in range(oh - 1, -1, -1):
        for g in range(lo[j], hi[j] + 1):
            first_use[g] = j
    last_hold = [0] * ih                                          # last output row with need <= g
    j = 0
    for g in range(ih):
        while j + 1 < oh and need[j + 1] <= g:
            j += 1
        last_hold[g] = j
    NEG = float("-inf")
    frames = 4

    def released(g):            # cycle from which row g's slot may be rewritten (reader-bound)
        if g < 0:
            return NEG
        f, r = divmod(g, ih)
        return (f * oh + last_hold[r] + 1) * t_r

    def ok_reader_bound(R):
        w_prev = NEG
        for g in range(frames * ih):
            w = max(w_prev + iwcf, released(g - R))
            w_prev = w
            f, r = divmod(g, ih)
            if f == frames - 1 and first_use[r] is not None:
                if w + iwcf > (f * oh + first_use[r]) * t_r:
                    return False
        return True

    def ok_writer_bound(R):
        start, r_prev = [], NEG
        for jj in range(frames * oh):
            f, j = divmod(jj, oh)
            r_prev = max(r_prev + t_r, f * in_words + (hi[j] + 1) * iwcf)
            start.append(r_prev)
        for g in range((frames - 1) * ih, frames * ih):
            h = g - R
            if h < 0:
                continue
            f, r = divmod(h, ih)
            if start[f * oh + last_hold[r]] + t_r > g * iwcf:
                return False
        return True

    ok = ok_reader_bound if out_words > in_words else ok_writer_bound
    R = 1
    while not ok(R):
        R += 1
    return R


@register
@dataclass
class SlidingWindow(Layer):
    kind = "SlidingWindow"

    ifm: tuple = (1, 1)              # (IH, IW)
    channels: int = 1
    kernel: tuple = (1, 1)           # (KH, KW)
    stride: tuple = (1, 1)           # (SH, SW)
    pad: tuple = (0, 0, 0, 0)        # (top, left, bottom, right)
    pad_value: int = 0
    dt: DType = None
    simd: int = 1
    depthwise: bool = False
    mem_style: str = "auto"
    # register stages: "auto" (read address registered), "none"/0 (address adder into the memory
    # read), or k >= 1 (as "auto"); see hwgen.dataflow.pipeline
    pipeline: int | str = "auto"

    @property
    def idt(self):
        return self.dt

    @property
    def odt(self):
        return self.dt

    @property
    def ofm(self):
        (ih, iw), (kh, kw), (sh, sw) = self.ifm, self.kernel, self.stride
        pt, pl, pb, pr = self.pad
        return ((ih + pt + pb - kh) // sh + 1, (iw + pl + pr - kw) // sw + 1)

    @property
    def in_shape(self):
        return tuple(self.ifm) + (self.channels,)

    @property
    def out_shape(self):
        return tuple(self.ofm) + (self.kernel[0] * self.kernel[1] * self.channels,)

    @property
    def in_lanes(self):
        return self.simd

    out_lanes = in_lanes

    @property
    def folding(self):
        return {"simd": self.simd}

    def validate(self):
        (ih, iw), (kh, kw), (sh, sw) = self.ifm, self.kernel, self.stride
        pt, pl, pb, pr = self.pad
        if min(kh, kw, sh, sw, ih, iw) < 1 or min(self.pad) < 0:
            raise HwgenError(f"layer {self.name}: kernel, stride and image sizes must be positive and padding non-negative")
        if kh > ih + pt + pb or kw > iw + pl + pr:
            raise HwgenError(f"layer {self.name}: kernel {kh}×{kw} must fit the padded input {ih + pt + pb}×{iw + pl + pr}")
        if max(pt, pb) >= kh or max(pl, pr) >= kw:
            raise HwgenError(f"layer {self.name}: padding {self.pad} must be smaller than the kernel {kh}×{kw}")
        if not isinstance(self.simd, int) or self.simd < 1 or self.channels % self.simd:
            raise FoldingError(f"layer {self.name}: SIMD={self.simd} must divide C={self.channels}")
        if not self.dt.allowed(np.array([self.pad_value])) and any(self.pad):
            raise HwgenError(f"layer {self.name}: padding value {self.pad_value} is not a {self.dt} value")

    def execute(self, x):
        x = self.check_input(x)
        return im2col(x, self.kernel, self.stride, self.pad, self.pad_value, self.depthwise, self.simd)

    def cycles(self):
        (oh, ow), (kh, kw) = self.ofm, self.kernel
        out_words = oh * ow * kh * kw * self.channels // self.simd
        in_words = self.ifm[0] * self.ifm[1] * self.channels // self.simd
        return max(out_words, in_words)

    def latency(self):
        """Cycles from a window word's read issue (reader step) to it being valid on the output:
        1, or 2 pipelined (registered read address). From the handshake of the last input word
        it needs, one more (the write)."""
        return 2 if pipeline_levels(self) else 1

    def release_delay(self):
        """Cycles after an output row's last read issue from which the writer may reuse the rows
        it released: 1, or 2 when the read address is registered (pipelined)."""
        return 2 if pipeline_levels(self) else 1

    def _read_needs(self):
        """``(IH, IW·CF, OH, SH, PT, need)``: ``need[y]`` the input word (within the frame) each
        read issue of output row ``y`` needs, −1 for a pad position."""
        ih, iw, cf, kh, kw, sh, sw, pt, pl, oh, ow = _geometry(self)
        oy, ox, a, b, c = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), np.arange(cf),
                                      indexing="ij")
        if self.depthwise:          # (oy, ox, cf, kh, kw)
            oy, ox, a, b, c = (x.transpose(0, 1, 4, 2, 3) for x in (oy, ox, a, b, c))
        iy, ix = oy * sh - pt + a, ox * sw - pl + b
        inside = (iy >= 0) & (iy < ih) & (ix >= 0) & (ix < iw)
        need = np.where(inside, (iy * iw + ix) * cf + c, -1).reshape(oh, -1)      # per output row
        return ih, iw * cf, oh, sh, pt, need

    def schedule(self, arrivals, frames):
        """Writer and reader coupled by the line buffer of ``R`` rows: the writer writes input row
        ``g`` (one word per cycle) once the output row releasing row ``g − R`` has been issued
        (:meth:`release_delay`); the reader issues a window word the cycle after the word it
        needs was written. Its reads are the writes; outputs :meth:`latency` after the issues."""
        ih, iwcf, oh, sh, pt, need = self._read_needs()
        R = buffer_rows(self)
        release = self.release_delay()
        a = arrivals[0]
        in_per_frame, t_r = ih * iwcf, need.shape[1]
        writes = np.full(frames * in_per_frame, INF)
        reads = np.empty(frames * oh * t_r)
        row_end = []                      # issue time of the last word of each global output row

        def need_after(o):                # `need` once global output row o is complete
            f, y = divmod(o, oh)
            return f * ih + (max(0, (y + 1) * sh - pt) if y + 1 < oh else ih)

        state = {"g": 0, "last_w": NEG, "o_rel": 0}

        def write_rows(upto):             # write global input rows state.g .. upto
            while state["g"] <= upto and state["g"] < frames * ih:
                g = state["g"]
                start = NEG
                if g - R + 1 > 0:         # slot free once `need` >= g − R + 1
                    o = state["o_rel"]
                    while o < len(row_end) and need_after(o) < g - R + 1:
                        o += 1
                    state["o_rel"] = o
                    if o >= len(row_end):
                        return            # released by an output row not scheduled yet
                    start = row_end[o] + release
                seg = a[g * iwcf:(g + 1) * iwcf].copy()
                seg[0] = max(seg[0], start, state["last_w"] + 1)
                w = asap(seg)
                writes[g * iwcf:(g + 1) * iwcf] = w
                state["last_w"] = w[-1]
                state["g"] += 1

        last_r = NEG
        for o in range(frames * oh):
            f, y = divmod(o, oh)
            idx = need[y]
            used = idx[idx >= 0]
            if used.size:
                write_rows(f * ih + int(used.max()) // iwcf)
            req = np.where(idx >= 0, writes[np.maximum(idx, 0) + f * in_per_frame] + 1, NEG)
            req[0] = max(req[0], last_r + 1)
            r = asap(req)
            reads[o * t_r:(o + 1) * t_r] = r
            last_r = r[-1]
            row_end.append(last_r)
        write_rows(frames * ih - 1)       # rows no output row of the simulated frames reads
        return [writes], [reads + self.latency()]

    def cost_terms(self):
        w = self.simd * self.dt.bits
        depth = buffer_rows(self) * self.ifm[1] * (self.channels // self.simd)
        mem = mem_sum(memory(w, depth, self.mem_style, rom=False))
        (ih, iw), (kh, kw) = self.ifm, self.kernel
        (oh, ow), cf = self.ofm, self.channels // self.simd
        ctr = sum(log2(v + 2) for v in (ih, iw * cf, depth, oh, ow, kh, kw, cf, kw * cf, ih + kh)) + 2 * log2(depth)
        return {"LUT": {"const": 1, "ctr": ctr, "width": w, "mem": mem["LUT"]},
                "FF": {"const": 1, "ctr": ctr, "width": w, "mem": mem["FF"]},
                "BRAM18": mem["BRAM18"], "DSP": 0}
