"""Hardware of the SlidingWindow layer: an im2col generator with a circular line buffer.

Geometry: input ``(IH, IW, C)`` in words of ``SIMD`` lanes (``CF = C/SIMD``
words per pixel); output, per output pixel ``(oy, ox)``, the ``KH·KW·CF`` words
of its window in the order ``(kh, kw, cf)`` or, with ``depthwise``,
``(cf, kh, kw)``; out-of-image positions are the pad value and read no memory.

Two independent processes share one simple dual-port memory of ``R`` rows of
``IW·CF`` words (input rows only, no padding stored; ``R`` from
:func:`buffer_rows`):

* the **writer** stores every input word at the next address of the circular
  buffer (rows of consecutive frames follow each other, so global row ``g``
  sits in slot ``g mod R``);
* the **reader** walks ``(oy, ox, kh, kw, cf)`` (or the depthwise order),
  keeps the address of the current row and column incrementally (no
  multiplier) and issues one word per cycle: a pad word, or a memory read.

Both are coupled by one counter ``D`` = rows completely written − ``need``,
where ``need`` is the first input row the current output row still uses
(``max(0, oy·SH − PT)``, rows of consecutive frames counted on): the writer
runs while ``D < R`` (the slot it writes holds a row below ``need``); the
reader issues the word of input row ``iy`` when it is a pad position, or
``iy − need < D``, or ``iy`` is the row being written and the word's column
index is below the writer's. When the reader completes an output row,
``need`` advances (by ``SH``, less near the top padding, and to the next
frame's first row after the last output row) and ``D`` drops by as much. The
reader never waits for a whole row or frame: it emits windows of a row as
soon as their words have arrived, while the writer already fills the rows of
the next output row, or of the next frame.

Pipeline (output side advances when ``en = ~o.valid | o.ready``)::

    S0  reader counters, address, availability        -> memory read (none for a pad)
    S1  o.valid register; o.payload = the memory's read register, or the pad word

The writer takes an input word in the cycle ``i.valid & (D < R)`` and the
reader may issue a read of it in the next cycle: a window word is valid on
the output 2 cycles after the handshake of the last input word it needs
(pad words need none). Steady state: ``max(out_words, in_words)`` cycles per
frame, with no bubble between frames, given ``R`` from :func:`buffer_rows`.

Memory: ``R·IW·C/SIMD`` words of ``SIMD·bits``; ``R`` is usually ``KH + 1`` to
``KH + 3`` (CNV's 32×32×64 3×3 layer: 6 rows = 384 words; a 3×3 kernel with
'same' padding: 4 rows), and two frames' rows when the kernel covers the
whole input.
"""

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..dataflow.swg import SlidingWindow
from .common import check_layer, memory_attrs, stream_signature

__all__ = ["SlidingWindowComponent", "buffer_rows"]


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


class SlidingWindowComponent(wiring.Component):
    """Streaming window generator built from an IR :class:`~hwgen.dataflow.SlidingWindow`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.SlidingWindow`
        The layer (validated on construction).

    Members
    -------
    i : ``In(stream.Signature(unsigned(SIMD · dt.bits)))``
        Input feature map, channels-last, ``SIMD`` lanes per word.
    o : ``Out(stream.Signature(unsigned(SIMD · dt.bits)))``
        Windows, ``SIMD`` lanes per word, in the layer's window order.

    Attributes
    ----------
    rows : int
        Rows of the line buffer (:func:`buffer_rows`).
    depth : int
        Words of the line buffer, ``rows · IW · C/SIMD``.
    """

    #: Cycles from the handshake of the last input word a window word needs to that word
    #: being valid on the output.
    LATENCY = 2

    def __init__(self, layer):
        check_layer(self, layer, SlidingWindow, "a SlidingWindow")
        self.layer = layer
        self.rows = buffer_rows(layer)
        ih, iw, cf, *_ = _geometry(layer)
        self.depth = self.rows * iw * cf
        super().__init__({
            "i": In(stream_signature(layer.in_lanes, layer.idt)),
            "o": Out(stream_signature(layer.out_lanes, layer.odt)),
        })

    def pad_word(self):
        """The output word of a pad position: every lane the code of ``pad_value``."""
        L = self.layer
        code = int(L.dt.encode([L.pad_value])[0]) if any(L.pad) else 0
        word = 0
        for s in range(L.simd):
            word |= code << (s * L.dt.bits)
        return word

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        IH, IW, CF, KH, KW, SH, SW, PT, PL, OH, OW = _geometry(L)
        PB, PR = L.pad[2], L.pad[3]
        R, DEPTH = self.rows, self.depth
        IWCF = IW * CF
        width = L.simd * L.dt.bits
        padded = any(L.pad)

        def wrap(x):
            """x mod DEPTH for 0 <= x < 2·DEPTH."""
            return Mux(x >= DEPTH, x - DEPTH, x)

        mem = m.submodules.buffer = Memory(shape=unsigned(width), depth=DEPTH, init=[],
                                           attrs=memory_attrs(L.mem_style, "ram"))
        wport = mem.write_port()
        rport = mem.read_port(domain="sync")

        # -- writer ---------------------------------------------------------------------
        # D = rows completely written - need (may be negative while the reader skips rows
        # that are still to come, e.g. with a stride larger than the kernel)
        D = Signal(range(-IH - 1, R + 2))
        widx = Signal(range(IWCF))          # column word index within the row being written
        waddr = Signal(range(DEPTH))
        write = Signal()
        row_written = Signal()
        m.d.comb += [
            self.i.ready.eq(D < R),
            write.eq(self.i.valid & (D < R)),
            row_written.eq(write & (widx == IWCF - 1)),
            wport.addr.eq(waddr),
            wport.data.eq(self.i.payload),
            wport.en.eq(write),
        ]
        with m.If(write):
            m.d.sync += [
                widx.eq(Mux(widx == IWCF - 1, 0, widx + 1)),
                waddr.eq(Mux(waddr == DEPTH - 1, 0, waddr + 1)),
            ]

        # -- reader counters ------------------------------------------------------------------
        oy, ox = Signal(range(OH)), Signal(range(OW))
        kh, kw, cf = Signal(range(KH)), Signal(range(KW)), Signal(range(CF))
        top_max = (OH - 1) * SH - PT
        left_max = (OW - 1) * SW - PL
        top = Signal(range(-PT - 1, top_max + SH + 2), init=-PT)            # oy·SH − PT
        left = Signal(range(-PL - 1, left_max + SW + 2), init=-PL)          # ox·SW − PL
        cbase = Signal(range(-PL * CF - 1, (left_max + SW + 1) * CF + 1), init=-PL * CF)  # left·CF
        kwoff = Signal(range((KW - 1) * CF + 1))                            # kw·CF
        iy = Signal(range(-PT - 1, top_max + KH + 1), init=-PT)             # top + kh
        ix = Signal(range(-PL - 1, left_max + KW + 1), init=-PL)            # left + kw
        colidx = Signal(range(-PL * CF - 1, (left_max + KW) * CF + 1), init=-PL * CF)  # ix·CF + cf
        rel = Signal(range(-PT - 1, KH + 1), init=-PT)                      # iy − need
        need_base = Signal(range(DEPTH))    # buffer address of row `need`
        rowaddr = Signal(range(DEPTH))      # buffer address of row iy (when iy >= 0)

        cf_l, kw_l, kh_l = Signal(), Signal(), Signal()
        ox_l, oy_l = Signal(), Signal()
        m.d.comb += [cf_l.eq(cf == CF - 1), kw_l.eq(kw == KW - 1), kh_l.eq(kh == KH - 1),
                     ox_l.eq(ox == OW - 1), oy_l.eq(oy == OH - 1)]
        if L.depthwise:
            inc_kw, inc_kh, inc_cf = Const(1), kw_l, kw_l & kh_l
        else:
            inc_cf, inc_kw, inc_kh = Const(1), cf_l, cf_l & kw_l
        win_end, row_end = Signal(), Signal()
        m.d.comb += [win_end.eq(cf_l & kw_l & kh_l), row_end.eq(cf_l & kw_l & kh_l & ox_l)]

        def nxt(sig, inc, last, first, step):
            n = Signal.like(sig, name=f"{sig.name}_next")
            m.d.comb += n.eq(Mux(inc, Mux(last, first, sig + step), sig))
            return n

        cf_n = nxt(cf, inc_cf, cf_l, 0, 1)
        kw_n = nxt(kw, inc_kw, kw_l, 0, 1)
        kwoff_n = nxt(kwoff, inc_kw, kw_l, 0, CF)
        kh_n = nxt(kh, inc_kh, kh_l, 0, 1)
        ox_n = nxt(ox, win_end, ox_l, 0, 1)
        left_n = nxt(left, win_end, ox_l, -PL, SW)
        cbase_n = nxt(cbase, win_end, ox_l, -PL * CF, SW * CF)
        oy_n = nxt(oy, row_end, oy_l, 0, 1)
        top_n = nxt(top, row_end, oy_l, -PT, SH)

        # rows `need` advances by when output row oy is complete: SH, less near the top
        # padding (need = max(0, top) with top = oy·SH − PT), and after the last output row
        # up to the next frame's first row
        part = SH - PT % SH if PT % SH else 0           # the one step from top < 0 to top > 0
        end = IH - max(0, top_max)
        d_rows = Signal(range(max(IH, SH) + 1))
        d_addr = Signal(range(DEPTH))
        m.d.comb += [
            d_rows.eq(Mux(oy_l, end, Mux(top >= 0, SH, Mux(top > -SH, part, 0)))),
            d_addr.eq(Mux(oy_l, (end % R) * IWCF,
                          Mux(top >= 0, (SH % R) * IWCF, Mux(top > -SH, (part % R) * IWCF, 0)))),
        ]
        need_base_n = Signal.like(need_base)
        m.d.comb += need_base_n.eq(Mux(row_end, wrap(need_base + d_addr), need_base))

        # -- availability and issue -----------------------------------------------------------
        en = Signal()
        pad = Signal()
        avail = Signal()
        step = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            pad.eq((iy < 0) | (iy >= IH) | (ix < 0) | (ix >= IW)),
            avail.eq(pad | (rel < D) | ((rel == D) & (colidx < widx))),
            step.eq(en & avail),
        ]
        with m.If(step):
            m.d.sync += [
                cf.eq(cf_n), kw.eq(kw_n), kwoff.eq(kwoff_n), kh.eq(kh_n),
                ox.eq(ox_n), left.eq(left_n), cbase.eq(cbase_n),
                oy.eq(oy_n), top.eq(top_n),
                iy.eq(top_n + kh_n),
                ix.eq(left_n + kw_n),
                colidx.eq(cbase_n + kwoff_n + cf_n),
                rel.eq(kh_n + Mux(top_n < 0, top_n, 0)),
                need_base.eq(need_base_n),
                # the row address restarts at `need` with every kh = 0 and moves one row
                # down per kh step from an image row (rows above the image share row 0's)
                rowaddr.eq(Mux(kh_n == 0, need_base_n,
                               Mux(inc_kh & (iy >= 0), wrap(rowaddr + IWCF), rowaddr))),
            ]
        m.d.sync += D.eq(D + row_written - Mux(step & row_end, d_rows, 0))

        m.d.comb += [
            rport.addr.eq(rowaddr + colidx),
            rport.en.eq(en & ~pad),
        ]

        # -- S1: output register ---------------------------------------------------------------
        s1_pad = Signal()
        with m.If(en):
            m.d.sync += [self.o.valid.eq(step), s1_pad.eq(pad)]
        if padded:
            m.d.comb += self.o.payload.eq(Mux(s1_pad, self.pad_word(), rport.data))
        else:
            m.d.comb += self.o.payload.eq(rport.data)
        return m
