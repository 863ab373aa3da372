"""SlidingWindowComponent in the Amaranth simulator, every output word against SlidingWindow.execute;
its throughput (exactly max(out_words, in_words) per frame); a cycle-level model of its
schedule, checked cycle for cycle against the hardware and then swept over many geometries;
and SlidingWindow → MVAU through the stitched Top."""

import random
import time
import zlib

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwgen.dataflow import FIFO, MVAU, DataflowGraph, SlidingWindow
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import SlidingWindowComponent, Top
from hwgen.dataflow.pipeline import pipeline_levels
from hwgen.hdl.swg import buffer_rows
from hwgen.streams import pack

import streamsim
from streamsim import random_values, simulate_layer, straddling_thresholds


def make_swg(ifm, channels, kernel, stride, pad, simd, depthwise, dt="UINT3", pad_value=0, name="swg",
             pipeline="auto"):
    layer = SlidingWindow(name, ifm=tuple(ifm), channels=channels, kernel=tuple(kernel),
                          stride=tuple(stride), pad=tuple(pad), pad_value=pad_value, dt=DType(dt),
                          simd=simd, depthwise=depthwise, pipeline=pipeline)
    layer.validate()
    return layer


def frames_for(layer, n, seed):
    rng = np.random.default_rng(seed)
    return random_values(rng, layer.dt, (n,) + tuple(layer.in_shape))


P0 = (0, 0, 0, 0)
P1 = (1, 1, 1, 1)
# (ifm, C, kernel, stride, pad, simd, depthwise, dt, pad_value)
CASES = [
    ((5, 7), 4, (3, 3), (1, 1), P1, 2, False, "INT3", -3),       # odd sizes, signed non-zero pad
    ((5, 7), 4, (3, 3), (1, 1), P1, 2, True, "INT3", -3),
    ((3, 3), 3, (3, 3), (1, 1), P0, 3, False, "UINT4", 0),       # kernel = input, SIMD full
    ((3, 3), 3, (3, 3), (1, 1), P1, 1, True, "UINT2", 2),        # kernel = input + padding
    ((5, 7), 4, (5, 7), (1, 1), P0, 2, False, "UINT3", 0),       # non-square kernel = input
    ((5, 7), 2, (1, 1), (1, 1), P0, 1, False, "BIPOLAR", 0),     # 1×1, SIMD 1
    ((5, 7), 2, (1, 1), (2, 3), P0, 2, True, "BIPOLAR", 0),      # 1×1 strided
    ((6, 6), 4, (2, 3), (2, 1), (0, 1, 1, 1), 2, False, "UINT3", 5),   # 2×3, asymmetric pad
    ((7, 5), 6, (5, 5), (3, 3), (2, 2, 2, 2), 3, True, "INT4", -8),    # 5×5, stride 3
    ((7, 7), 2, (3, 3), (3, 3), P0, 1, False, "UINT2", 0),       # stride = kernel (pooling)
    ((8, 8), 3, (2, 2), (2, 2), P0, 3, True, "INT8", 0),         # 2×2 max-pool window
    ((8, 8), 2, (2, 2), (3, 3), P0, 1, True, "UINT3", 0),        # stride > kernel: skipped rows
    ((4, 9), 2, (2, 4), (3, 2), (1, 0, 0, 2), 2, True, "INT2", 1),     # asymmetric pad
    ((9, 4), 1, (3, 1), (2, 1), (1, 0, 1, 0), 1, False, "UINT1", 1),   # 3×1, one channel
    ((1, 6), 4, (1, 3), (1, 1), (0, 1, 0, 1), 4, False, "UINT4", 9),   # 1-D, one row
    ((6, 1), 2, (3, 1), (1, 1), (2, 0, 1, 0), 1, True, "INT3", 3),     # 1-D, one column
    ((5, 5), 8, (3, 3), (2, 2), P1, 4, False, "INT3", 0),        # stride 2 + padding
    ((6, 5), 6, (3, 2), (1, 2), (2, 1, 0, 0), 2, True, "UINT2", 3),    # top/left pad only
    ((2, 2), 4, (2, 2), (1, 1), (1, 1, 1, 1), 2, False, "INT2", -2),   # tiny image, pad around
]


def _case_id(c):
    ifm, C, k, s, pad, simd, dw, dt, pv = c
    return (f"{ifm[0]}x{ifm[1]}x{C}-k{k[0]}x{k[1]}-s{s[0]}x{s[1]}-p{''.join(map(str, pad))}"
            f"-simd{simd}-{'dw' if dw else 'std'}-{dt}")


@pytest.mark.parametrize("pipeline", ["auto", "none"])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_swg_words(case, pipeline):
    ifm, C, k, s, pad, simd, dw, dt, pv = case
    layer = make_swg(ifm, C, k, s, pad, simd, dw, dt, pv, pipeline=pipeline)
    seed = zlib.crc32(_case_id(case).encode())
    simulate_layer(layer, frames_for(layer, 3, seed), SlidingWindowComponent)


@pytest.mark.parametrize("pipeline", ["auto", "none"])
@pytest.mark.parametrize("gaps,backpressure", [(0.0, 0.7), (0.7, 0.0), (0.5, 0.5), (0.1, 0.9)])
def test_swg_handshake_stress(gaps, backpressure, pipeline):
    layer = make_swg((5, 6), 4, (3, 3), (2, 1), (1, 0, 1, 2), 2, True, "INT4", -5, pipeline=pipeline)
    simulate_layer(layer, frames_for(layer, 3, 9), SlidingWindowComponent, gaps=gaps,
                   backpressure=backpressure)


def test_swg_im2col_orders():
    """The golden model's two orders on a hand-checked example."""
    layer = make_swg((2, 3), 2, (2, 2), (1, 1), P0, 1, False, "UINT4")
    x = np.arange(12).reshape(1, 2, 3, 2)
    y = layer.execute(x)
    assert y.shape == (1, 1, 2, 8)
    assert list(y[0, 0, 0]) == [0, 1, 2, 3, 6, 7, 8, 9]                 # (kh, kw, c)
    layer.depthwise = True
    assert list(layer.execute(x)[0, 0, 1]) == [2, 4, 8, 10, 3, 5, 9, 11]  # (c, kh, kw), simd 1


# -- throughput ----------------------------------------------------------------------------

THROUGHPUT = [
    ((10, 10), 8, (3, 3), (1, 1), P0, 4, False),     # CNV-like (out-bound), scaled down
    ((10, 10), 8, (3, 3), (1, 1), P0, 4, True),
    ((10, 10), 8, (3, 3), (1, 1), P1, 8, False),     # 'same' padding
    ((8, 8), 4, (1, 1), (2, 2), P0, 2, False),       # in-bound: 1×1 stride 2
    ((8, 8), 2, (2, 2), (2, 2), P0, 1, True),        # pooling window: out == in
    ((7, 7), 2, (2, 2), (3, 3), P0, 2, True),        # stride > kernel, in-bound
    ((5, 7), 4, (5, 7), (1, 1), P0, 2, False),       # kernel = input: out == in
    ((6, 9), 2, (3, 2), (2, 3), (1, 0, 2, 1), 1, True),
    ((13, 3), 8, (1, 4), (3, 2), (0, 2, 0, 1), 1, True),   # needs extra rows (writer slower per row)
    ((5, 5), 3, (1, 1), (1, 1), P0, 1, False),       # 1×1: out == in
]


@pytest.mark.parametrize("pipeline", ["auto", "none"])
@pytest.mark.parametrize("geom", THROUGHPUT, ids=[_case_id(g + ("UINT2", 0)) for g in THROUGHPUT])
def test_swg_throughput(geom, pipeline):
    """No gaps, no back-pressure: consecutive frames start exactly cycles() apart, and the
    cycle-level schedule model predicts every handshake."""
    ifm, C, k, s, pad, simd, dw = geom
    layer = make_swg(ifm, C, k, s, pad, simd, dw, "UINT2", 1, pipeline=pipeline)
    res = simulate_layer(layer, frames_for(layer, 4, 1), SlidingWindowComponent, gaps=0.0,
                         backpressure=0.0)
    intervals = streamsim.frame_intervals(res, layer.out_words)
    assert intervals[-2:] == [layer.cycles()] * 2, (intervals, layer.cycles())
    out_t, in_t = schedule(layer, buffer_rows(layer), frames=4)
    assert res.out_cycles == out_t
    n = min(len(in_t), len(res.in_cycles))
    assert res.in_cycles[:n] == in_t[:n]


def test_swg_throughput_cnv_layer1():
    """FINN CNV's first 3×3 layer after the input conv: 32×32×64, SIMD 32 (out-bound, 16,200 words)."""
    layer = make_swg((32, 32), 64, (3, 3), (1, 1), P0, 32, False, "UINT2")
    assert buffer_rows(layer) == 6
    res = simulate_layer(layer, frames_for(layer, 4, 2), SlidingWindowComponent, gaps=0.0,
                         backpressure=0.0)
    assert layer.cycles() == 16200
    assert streamsim.frame_intervals(res, layer.out_words)[-2:] == [16200, 16200]
    assert np.all(np.diff(res.out_cycles[layer.out_words // 2:]) == 1)   # back to back after start-up


@pytest.mark.parametrize("pipeline", ["auto", "none"])
def test_swg_latency(pipeline):
    """A window word is valid 1 + ``layer.latency()`` cycles after the handshake of the last input
    word it needs (the write, then the read issue)."""
    layer = make_swg((3, 4), 2, (1, 1), (1, 1), P0, 2, False, pipeline=pipeline)
    res = simulate_layer(layer, frames_for(layer, 1, 0), SlidingWindowComponent, gaps=0.0,
                         backpressure=0.0)
    lat = layer.latency() + 1
    assert lat == (2 if pipeline == "none" else 3)
    assert [o - i for o, i in zip(res.out_cycles, res.in_cycles)] == [lat] * 12
    layer = make_swg((3, 4), 2, (2, 2), (1, 1), (1, 1, 0, 0), 1, False, pipeline=pipeline)
    res = simulate_layer(layer, frames_for(layer, 1, 0), SlidingWindowComponent, gaps=0.0,
                         backpressure=0.0)
    # first window: 6 pad words need no input; the 7th needs input word 0 (taken in cycle 0)
    first = lat - 1
    assert res.out_cycles[:8] == list(range(first, first + 8)) and res.in_cycles[:2] == [0, 1]


def test_swg_cnv_schedule():
    """The CNV-sized layer through the (cycle-exact) schedule model: after the first frame's
    start-up every output word follows the previous one back to back, across frame
    boundaries too; the line buffer is 6 rows = 384 words."""
    layer = make_swg((32, 32), 64, (3, 3), (1, 1), P0, 32, False, "UINT2")
    comp = SlidingWindowComponent(layer)
    comp._MustUse__silence = True
    assert (comp.rows, comp.depth) == (6, 6 * 32 * 2)
    out_t, _ = schedule(layer, comp.rows, frames=3)
    steps = np.diff(out_t[layer.out_words // 2:])
    assert steps.max() == 1
    assert out_t[2 * layer.out_words] - out_t[layer.out_words] == layer.cycles()


# -- schedule model -------------------------------------------------------------------------

def schedule(layer, rows, frames, *, max_cycles=None, pipelined=None):
    """Cycle-level model of SlidingWindowComponent with input always valid and output always
    ready: (cycles of the output handshakes, cycles of the input handshakes).

    The writer takes a word when ``D < rows``; the reader issues the word at position
    (oy, ox, kh, kw, cf) when it is padding, or its row is complete (``iy − need < D``), or it is
    in the row being written before the writer's column; an issued word is taken on the
    output the next cycle. ``D`` = rows written − need, need = max(0, oy·SH − PT).

    ``pipelined`` (default: the layer's ``pipeline`` setting): the issued word is taken two
    cycles later, and the writer sees the rows an output row releases one cycle later
    (``Dw``) than the reader (``D``)."""
    if pipelined is None:
        pipelined = bool(pipeline_levels(layer))
    (ih, iw), (kh_, kw_), (sh, sw) = layer.ifm, layer.kernel, layer.stride
    pt, pl, _, _ = layer.pad
    oh, ow = layer.ofm
    cf_ = layer.channels // layer.simd
    iwcf = iw * cf_
    need = [max(0, j * sh - pt) for j in range(oh)]
    delta = [need[j + 1] - need[j] for j in range(oh - 1)] + [ih - need[-1]]
    if layer.depthwise:
        order = [(a, b, c) for c in range(cf_) for a in range(kh_) for b in range(kw_)]
    else:
        order = [(a, b, c) for a in range(kh_) for b in range(kw_) for c in range(cf_)]
    total_in = frames * ih * iwcf
    D = Dw = widx = oy = ox = k = frame = t = written = pending = 0
    outs, ins = [], []
    max_cycles = max_cycles or 50 * frames * (layer.in_words + layer.out_words) + 1000
    while frame < frames:
        assert t < max_cycles, "schedule model: no progress"
        a, b, c = order[k]
        iy, ix = oy * sh - pt + a, ox * sw - pl + b
        rel = iy - need[oy]
        avail = (iy < 0 or iy >= ih or ix < 0 or ix >= iw or rel < D
                 or (rel == D and ix * cf_ + c < widx))
        dD = drel = 0
        if (Dw if pipelined else D) < rows and written < total_in:
            ins.append(t)
            written += 1
            widx += 1
            if widx == iwcf:
                widx, dD = 0, 1
        if avail:
            outs.append(t + (2 if pipelined else 1))
            k += 1
            if k == len(order):
                k, ox = 0, ox + 1
                if ox == ow:
                    ox, drel = 0, delta[oy]
                    oy += 1
                    if oy == oh:
                        oy, frame = 0, frame + 1
        D += dD - drel
        Dw += dD - pending
        pending = drel
        assert D <= rows and Dw <= rows
        t += 1
    return outs, ins


def random_geometry(r, max_size=12, max_k=6, max_s=4, cfs=(1, 2, 3, 5)):
    while True:
        ih, iw = r.randint(1, max_size), r.randint(1, max_size)
        kh, kw = r.randint(1, min(ih + 2, max_k)), r.randint(1, min(iw + 2, max_k))
        sh, sw = r.randint(1, max_s), r.randint(1, max_s)
        if r.random() < 0.4:
            pad = P0
        else:
            pad = (r.randint(0, kh - 1), r.randint(0, kw - 1), r.randint(0, kh - 1), r.randint(0, kw - 1))
        if kh > ih + pad[0] + pad[2] or kw > iw + pad[1] + pad[3]:
            continue
        cf = r.choice(cfs)
        simd = r.choice([1, 2, 3])
        return dict(ifm=(ih, iw), channels=cf * simd, kernel=(kh, kw), stride=(sh, sw), pad=pad,
                    simd=simd, depthwise=r.random() < 0.5)


@pytest.mark.parametrize("block", range(4))
def test_swg_buffer_rows_sweep(block):
    """Over many random geometries the schedule model with buffer_rows() rows reaches
    exactly cycles() per frame (both sides' extremes: out- and in-bound, skipped rows,
    kernel = input, heavy padding)."""
    r = random.Random(500 + block)
    for _ in range(60):
        g = random_geometry(r)
        layer = make_swg(g["ifm"], g["channels"], g["kernel"], g["stride"], g["pad"], g["simd"],
                         g["depthwise"])
        rows = buffer_rows(layer)
        for pipelined in (False, True):
            out_t, _ = schedule(layer, rows, frames=8, pipelined=pipelined)
            starts = out_t[::layer.out_words]
            intervals = [b - a for a, b in zip(starts, starts[1:])]
            assert intervals[-3:] == [layer.cycles()] * 3, (g, rows, intervals, layer.cycles(), pipelined)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(20))
def test_swg_buffer_rows_sweep_large(block):
    r = random.Random(9000 + block)
    for _ in range(60):
        g = random_geometry(r, max_size=20, max_k=9, max_s=6, cfs=(1, 2, 4, 16))
        layer = make_swg(g["ifm"], g["channels"], g["kernel"], g["stride"], g["pad"], g["simd"],
                         g["depthwise"])
        rows = buffer_rows(layer)
        for pipelined in (False, True):
            out_t, _ = schedule(layer, rows, frames=10, pipelined=pipelined)
            starts = out_t[::layer.out_words]
            intervals = [b - a for a, b in zip(starts, starts[1:])]
            assert intervals[-3:] == [layer.cycles()] * 3, (g, rows, intervals, layer.cycles(), pipelined)


# -- random sweeps through the hardware -------------------------------------------------------

TYPES = ["BIPOLAR", "UINT1", "UINT2", "INT3", "INT4", "UINT8"]


def random_layer(k, **kw):
    r = random.Random(k)
    g = random_geometry(r, **kw)
    dt = DType(r.choice(TYPES))
    if any(g["pad"]) and dt.name == "BIPOLAR":
        dt = DType("INT2")
    pv = r.randint(dt.min, dt.max)
    return make_swg(g["ifm"], g["channels"], g["kernel"], g["stride"], g["pad"], g["simd"],
                    g["depthwise"], dt.name, pv, pipeline=r.choice(["auto", "none"]))


@pytest.mark.parametrize("k", range(16))
def test_swg_random_sweep(k):
    layer = random_layer(k, max_size=7, max_k=4, max_s=3, cfs=(1, 2, 3))
    simulate_layer(layer, frames_for(layer, 2, 100 + k), SlidingWindowComponent)


@pytest.mark.slow
@pytest.mark.parametrize("k", range(200))
def test_swg_random_sweep_large(k):
    layer = random_layer(10_000 + k)
    simulate_layer(layer, frames_for(layer, 3, 200 + k), SlidingWindowComponent)


# -- construction ------------------------------------------------------------------------

def test_swg_large_elaboration_fast():
    t0 = time.perf_counter()
    for ifm, c, simd in (((32, 32), 64, 32), ((224, 224), 3, 3), ((56, 56), 256, 8)):
        layer = make_swg(ifm, c, (3, 3), (1, 1), P1, simd, False, "UINT4")
        Fragment.get(SlidingWindowComponent(layer), None)
    assert time.perf_counter() - t0 < 10


def test_swg_rejects_wrong_layer():
    with pytest.raises(TypeError, match="layer must be a SlidingWindow"):
        SlidingWindowComponent(FIFO("f", shape=(4,), dt=DType("UINT2"), lanes=1, depth=2))
    layer = make_swg((5, 5), 4, (3, 3), (1, 1), P0, 2, False)
    layer.simd = 3
    with pytest.raises(HwgenError, match="SIMD=3 must divide C=4"):
        SlidingWindowComponent(layer)


# -- SlidingWindow → MVAU through the Top ---------------------------------------------------------

def conv_graph(seed=0, frames=3, *, ifm=(6, 5), c=4, mh=6, kernel=(3, 3), stride=(1, 1), pad=P1,
               simd=2, pe=3):
    """SlidingWindow (INT3 input, pad value −1) → FIFO → MVAU (thresholds to UINT2) over the
    output pixels: a 3×3 convolution."""
    rng = np.random.default_rng(seed)
    i3, i2, u2 = DType("INT3"), DType("INT2"), DType("UINT2")
    swg = make_swg(ifm, c, kernel, stride, pad, simd, False, "INT3", -1, name="conv0.swg")
    x = random_values(rng, i3, (frames,) + tuple(swg.in_shape))
    mw = kernel[0] * kernel[1] * c
    W = random_values(rng, i2, (mh, mw))
    fifo = FIFO("conv0.fifo", shape=swg.out_shape, dt=i3, lanes=simd, depth=4)
    mvau = MVAU("conv0", mw=mw, mh=mh, in_dt=i3, wdt=i2, out_dt=u2, weights=W,
                spatial=tuple(swg.ofm), pe=pe, simd=simd)
    lo, hi = mvau.acc_range
    mvau.thresholds = straddling_thresholds(rng, swg.execute(x) @ W.T, lo, hi, 3)
    graph = DataflowGraph(layers=[swg, fifo, mvau], name="conv")
    graph.validate()
    return graph, x


def simulate_top(graph, x, **kw):
    top = Top(graph)
    first, last = graph.layers[0], graph.layers[-1]
    in_words = [w for f in pack(x, first.idt, first.in_lanes) for w in f]
    expected = pack(graph.execute(x), last.odt, last.out_lanes)
    res = streamsim.run(top, streamsim.axis_in(top), streamsim.axis_out(top), in_words,
                        sum(len(f) for f in expected), **kw)
    streamsim.check_frames(res, expected, what="top")
    return res


def test_top_swg_mvau():
    graph, x = conv_graph(seed=1)
    simulate_top(graph, x)


def test_top_swg_mvau_throughput():
    """The MVAU (NF·SF per pixel) is the bottleneck; the window generator keeps up."""
    graph, x = conv_graph(seed=2, frames=4, ifm=(6, 6), c=4, mh=4, stride=(2, 1), pe=2, simd=4)
    res = simulate_top(graph, x, gaps=0.0, backpressure=0.0)
    words = graph.layers[-1].out_words
    assert graph.cycles() == graph.layers[-1].cycles()
    assert streamsim.frame_intervals(res, words)[-2:] == [graph.cycles()] * 2
