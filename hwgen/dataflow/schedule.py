"""Word-level schedule of a dataflow graph, for sizing its FIFOs analytically.

Every hardware block of hwgen works in a fixed order, one step per clock,
and a step waits only for the input word it needs (and for room at its
output).  So the time at which each stream word is produced and consumed is
a max-plus recurrence: ``t[j] = max(t[j−1] + 1, arrival of the word step j
needs)``, which numpy evaluates for a whole stream at once as
``t = j + cummax(a − j)`` (:func:`asap`).  This module models every layer kind
that way — the MVAU's ``(pixel, nf, sf)`` steps that read input only when
``nf == 0``, the SlidingWindow's writer and reader coupled by its line-buffer
rows, the width converter's two banks, the joins, the fork — and computes,
with unbounded FIFOs, the word times of every stream over a few frames whose
input arrives at the graph's steady-state interval.

The occupancy of a FIFO in that schedule (words written and not yet read) is
the depth it needs: with at least that depth the schedule is feasible, and
since the hardware is a monotone max-plus system, an input that arrives
earlier (a testbench streaming back to back) can only make every word earlier,
so no FIFO overflows into a stall of the bottleneck and nothing deadlocks.
``O(words per frame · frames)`` numpy work plus a Python loop over rows and
width-converter blocks: well under a second for CNV.
"""

import math

import numpy as np

from .graph import INPUT, parse_ref

__all__ = ["asap", "schedule", "fifo_occupancy", "latency"]

NEG = -np.inf
INF = np.inf

# Cycles from the step that completes an output word to that word being valid on the output,
# when the hardware component does not say (see hwgen.hdl.*: LATENCY).
_DEFAULT_LATENCY = {"MVAU": 3, "VVAU": 3, "Thresholding": 2, "Requant": 3, "Pool": 1, "GlobalPool": 2,
                    "SlidingWindow": 1, "LabelSelect": 2, "AddStreams": 2, "Concat": 1, "Duplicate": 0,
                    "FIFO": 2, "WidthConverter": 1}


def latency(layer):
    """Output latency of ``layer``'s hardware (its component's ``latency_of(layer)`` or ``LATENCY``)."""
    try:
        from ..hdl.top import COMPONENTS
        cls = COMPONENTS.get(layer.kind)
        f = getattr(cls, "latency_of", None)
        if callable(f):
            return int(f(layer))
        v = getattr(cls, "LATENCY", None)
        if isinstance(v, int):
            return v
    except Exception:            # pragma: no cover - a component without a usable latency
        pass
    return _DEFAULT_LATENCY.get(layer.kind, 3)


def asap(a):
    """Times of consecutive one-per-cycle steps where step ``j`` may not happen before ``a[j]``:
    ``t[j] = max(a[j], t[j−1] + 1)``."""
    a = np.asarray(a, dtype=float)
    if a.size == 0:
        return a
    j = np.arange(a.size, dtype=float)
    return np.maximum.accumulate(a - j) + j


def _need_after(arrival, need):
    """``arrival[need]`` where ``need ≥ 0``, else −∞ (a step that needs no input word)."""
    out = np.full(need.shape, NEG)
    m = need >= 0
    out[m] = arrival[need[m]]
    return out


# --------------------------------------------------------------------------- per kind
# Each model gets the arrival times of its input words (one array per input, all frames)
# and returns (read times per input, valid times of the words per output).

def _stepper(layer, arrivals, frames):
    """One word in, one word out per cycle (Thresholding, Requant, FIFO, ...)."""
    r = asap(arrivals[0])
    return [r], [r + latency(layer)]


def _mvau(layer, arrivals, frames):
    nf, sf, px = layer.mh // layer.pe, layer.mw // layer.simd, layer.pixels
    steps = np.arange(frames * px * nf * sf)
    p, rest = np.divmod(steps, nf * sf)
    f_, s_ = np.divmod(rest, sf)
    need = np.where(f_ == 0, p * sf + s_, -1)
    t = asap(_need_after(arrivals[0], need))
    reads = t[need >= 0]
    outs = t[s_ == sf - 1] + latency(layer)
    return [reads], [outs]


def _grouped(layer, arrivals, frames, group):
    """One input word per cycle; an output word after every ``group`` input words."""
    r = asap(arrivals[0])
    return [r], [r[group - 1::group] + latency(layer)]


def _vvau(layer, arrivals, frames):
    return _grouped(layer, arrivals, frames, layer.kernel_elems)


def _global_pool(layer, arrivals, frames):
    r = asap(arrivals[0])
    g = layer.channels // layer.pe
    per_frame = layer.in_words
    idx = (np.arange(frames)[:, None] * per_frame + per_frame - g + np.arange(g)[None, :]).ravel()
    return [r], [r[idx] + latency(layer)]


def _label_select(layer, arrivals, frames):
    a, n, k = arrivals[0], layer.in_words, layer.k
    reads, outs = np.empty(frames * n), []
    prev, drain_start = NEG, NEG
    for f in range(frames):
        seg = a[f * n:(f + 1) * n].copy()
        seg[0] = max(seg[0], prev + 1)
        seg[-1] = max(seg[-1], drain_start + k - 2)   # waits while the previous frame's drain has > 1 word
        r = asap(seg)
        reads[f * n:(f + 1) * n] = r
        prev = r[-1]
        drain_start = r[-1] + latency(layer)
        outs.append(drain_start + np.arange(k))
    return [reads], [np.concatenate(outs)]


def _add_streams(layer, arrivals, frames):
    r = asap(np.maximum(arrivals[0], arrivals[1]))
    return [r, r.copy()], [r + latency(layer)]


def _concat(layer, arrivals, frames):
    lanes = layer.lanes
    per_px = [c // lanes for c in layer.channels_in]
    npx = frames * layer.pixels
    order_port = np.concatenate([np.full(w, j) for j, w in enumerate(per_px)])
    order_idx = np.concatenate([np.arange(w) for w in per_px])
    port = np.tile(order_port, npx)
    pix = np.repeat(np.arange(npx), sum(per_px))
    word = np.tile(order_idx, npx)
    a = np.empty(port.size)
    for j, w in enumerate(per_px):
        m = port == j
        a[m] = arrivals[j][pix[m] * w + word[m]]
    r = asap(a)
    reads = [r[port == j] for j in range(len(per_px))]
    return reads, [r + latency(layer)]


def _duplicate(layer, arrivals, frames):
    r = asap(arrivals[0])
    return [r], [r.copy() for _ in range(layer.n_out)]


def _width_converter(layer, arrivals, frames):
    lin, lout = layer.lanes_in, layer.lanes_out
    a = arrivals[0]
    if lin == lout:
        r = asap(a)
        return [r], [r]
    L = math.lcm(lin, lout)
    nin, nout = L // lin, L // lout
    blocks = a.size // nin
    # The write side fills bank b mod 2 with block b once block b−2 has left; the read side
    # emits block b from the cycle after its last word was written, after block b−1.  The two
    # sides are coupled only when the output is the slower side: iterate to the fixed point
    # (each pass is vectorised; times only grow, and a few passes settle).
    gate = np.full(a.size, NEG)
    for _ in range(4 * blocks + 2):
        reads = asap(np.maximum(a, gate))
        last_in = reads[nin - 1::nin]
        outs = asap(np.repeat(last_in + 1, nout))
        ends = outs[nout - 1::nout]
        new_gate = np.full(a.size, NEG)
        new_gate[2 * nin::nin] = ends[:-2] + 1 if blocks > 2 else new_gate[2 * nin::nin]
        if np.array_equal(new_gate, gate):
            break
        gate = new_gate
    return [reads], [outs]


def _swg_geometry(layer):
    from .swg import _geometry
    ih, iw, cf, kh, kw, sh, sw, pt, pl, oh, ow = _geometry(layer)
    oy, ox, a, b, c = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), np.arange(cf),
                                  indexing="ij")
    if layer.depthwise:         # (oy, ox, cf, kh, kw)
        oy, ox, a, b, c = (x.transpose(0, 1, 4, 2, 3) for x in (oy, ox, a, b, c))
    iy, ix = oy * sh - pt + a, ox * sw - pl + b
    inside = (iy >= 0) & (iy < ih) & (ix >= 0) & (ix < iw)
    need = np.where(inside, (iy * iw + ix) * cf + c, -1).reshape(oh, -1)      # per output row
    return ih, iw * cf, oh, sh, pt, need


def _swg_release(layer):
    """Cycles after an output row's last read issue from which the writer may reuse the rows it
    released: 1, or 2 when the read address is registered (pipelined SlidingWindow)."""
    try:
        from ..hdl.common import pipeline_levels
        return 2 if pipeline_levels(layer) else 1
    except Exception:            # pragma: no cover - conservative without the hardware package
        return 2


def _sliding_window(layer, arrivals, frames):
    from .swg import buffer_rows
    ih, iwcf, oh, sh, pt, need = _swg_geometry(layer)
    R = buffer_rows(layer)
    release = _swg_release(layer)
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
    return [writes], [reads + latency(layer)]


MODELS = {
    "MVAU": _mvau, "VVAU": _vvau, "Pool": _vvau, "GlobalPool": _global_pool, "LabelSelect": _label_select,
    "Thresholding": _stepper, "Requant": _stepper, "FIFO": _stepper, "AddStreams": _add_streams,
    "Concat": _concat, "Duplicate": _duplicate, "WidthConverter": _width_converter,
    "SlidingWindow": _sliding_window,
}


def _input_words(graph):
    """Words per frame of the accelerator's input stream."""
    for l in graph.layers:
        for k, r in enumerate(graph.input_refs(l)):
            if parse_ref(r)[0] == INPUT:
                shape = (getattr(l, "in_shapes", None) or [l.in_shape])[k]
                return int(np.prod(shape)) // l.in_lanes
    raise ValueError("the graph reads no input")


def schedule(graph, frames, period=None, source=None):
    """Word times of every stream of ``graph`` over ``frames`` frames whose input words arrive
    spread evenly over ``period`` cycles per frame (default: the graph's interval), or at the
    cycles ``source`` gives (one per input word of all frames; zeros: all at once).

    Returns ``(reads, outs)``: ``reads[layer][k]`` the cycles in which ``layer`` takes the
    words of its input ``k``; ``outs[layer][k]`` the cycles in which the words of its output
    ``k`` become valid (``inf``: not within the simulated frames)."""
    period = graph.cycles() if period is None else period
    n_in = _input_words(graph)
    k = np.arange(frames * n_in)
    f, w = np.divmod(k, n_in)
    src = f * period + np.floor(w * period / n_in)
    if source is not None:
        src = np.asarray(source, dtype=float)
        if src.shape != (frames * n_in,):
            raise ValueError(f"source must give {frames * n_in} input word times, not {src.shape}")
    reads, outs = {}, {}
    for l in graph.layers:
        model = MODELS.get(l.kind)
        if model is None:
            raise NotImplementedError(f"no schedule model for layer kind {l.kind}")
        arr = []
        for ref in graph.input_refs(l):
            name, port = parse_ref(ref)
            arr.append(src if name == INPUT else outs[name][port])
        reads[l.name], outs[l.name] = model(l, arr, frames)
    return reads, outs


def fifo_occupancy(written, taken, until=INF):
    """Most words held at once by a FIFO whose words enter at ``written`` and leave at ``taken``
    (both ascending), counted at every write up to cycle ``until``."""
    written = np.asarray(written, dtype=float)
    taken = np.sort(np.asarray(taken, dtype=float))
    m = written <= until
    if not m.any():
        return 0
    w = written[m]
    held = np.arange(1, w.size + 1) - np.searchsorted(taken, w, side="right")
    return int(held.max())
