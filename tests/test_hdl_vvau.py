"""VVAUComponent in the Amaranth simulator, every output word against VVAU.execute; its
throughput; and a depthwise convolution SlidingWindow(depthwise) → VVAU through the Top."""

import random
import time
import zlib

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwgen.dataflow import FIFO, VVAU, DataflowGraph, SlidingWindow
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import VVAUComponent

import streamsim
from streamsim import random_values, simulate_layer, straddling_thresholds
from test_hdl_swg import simulate_top


def make_vvau(c, k, idt, wdt, pe, *, odt=None, n_thr=None, out_base=None, spatial=(), frames=2,
              seed=0, name="dw", pipeline="auto"):
    """A VVAU with random weights and (unless ``odt`` is None or ``raw:T``) thresholds, and
    input frames ``x`` in the depthwise window order."""
    rng = np.random.default_rng(seed)
    idt, wdt = DType(idt), DType(wdt)
    W = random_values(rng, wdt, (c, k))
    layer = VVAU(name, channels=c, kernel_elems=k, in_dt=idt, wdt=wdt, out_dt=None, weights=W,
                 spatial=tuple(spatial), pe=pe, pipeline=pipeline)
    x = random_values(rng, idt, (frames,) + tuple(layer.in_shape))
    if odt is None:
        layer.out_dt = layer.acc_dt
    elif odt.startswith("raw:"):
        layer.out_dt = DType(odt[4:])
    else:
        layer.out_dt = DType(odt)
        step = layer.out_step
        base = layer.odt.min if out_base is None else out_base
        n = (layer.odt.max - base) // step if n_thr is None else n_thr
        lo, hi = layer.acc_range
        acc = (layer._unfold(x) * W.T).sum(axis=-2)
        layer.thresholds = straddling_thresholds(rng, acc, lo, hi, n)
        layer.out_base = base
    layer.validate()
    return layer, x


# (C, K, idt, wdt, pe, odt, extra)
CASES = [
    (4, 9, "UINT2", "INT2", 2, "UINT2", {"spatial": (2, 2)}),       # 3×3 depthwise, thresholds
    (4, 9, "UINT2", "INT2", 4, None, {"spatial": (3,)}),            # PE full, raw
    (6, 4, "INT3", "INT3", 1, "INT4", {"spatial": (2,)}),           # PE 1, signed out
    (6, 1, "UINT4", "INT4", 3, None, {"spatial": (3,)}),            # K = 1 (per-channel scale)
    (3, 25, "INT4", "INT4", 3, "raw:INT16", {}),                    # 5×5, raw into wider type
    (8, 6, "BIPOLAR", "BIPOLAR", 4, "BIPOLAR", {"spatial": (2,)}),  # binary, thresholds
    (8, 6, "BIPOLAR", "BIPOLAR", 2, None, {}),                      # binary raw
    (4, 3, "UINT1", "UINT3", 2, "UINT3", {"spatial": (2,)}),
    (4, 2, "INT8", "BIPOLAR", 4, "raw:INT12", {}),
    (6, 9, "BIPOLAR", "INT2", 2, "INT3", {"out_base": -3, "n_thr": 4}),
    (6, 9, "UINT2", "BINARY", 6, "UINT1", {"n_thr": 1, "out_base": 0, "spatial": (2,)}),
    (2, 4, "UINT2", "INT2", 1, "INT3", {"out_base": -2, "n_thr": 0}),   # no thresholds: constant
]


def _case_id(c):
    C, K, idt, wdt, pe, odt, extra = c
    s = f"{wdt}x{idt}-C{C}-K{K}-pe{pe}-{odt or 'raw'}"
    if "spatial" in extra:
        s += "-sp" + "x".join(map(str, extra["spatial"]))
    return s


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_vvau_words(case):
    C, K, idt, wdt, pe, odt, extra = case
    extra = dict(extra)
    spatial = extra.pop("spatial", ())
    layer, x = make_vvau(C, K, idt, wdt, pe, odt=odt, spatial=spatial, frames=3,
                         seed=zlib.crc32(_case_id(case).encode()), **extra)
    simulate_layer(layer, x, VVAUComponent)


@pytest.mark.parametrize("gaps,backpressure", [(0.0, 0.7), (0.7, 0.0), (0.5, 0.5)])
def test_vvau_handshake_stress(gaps, backpressure):
    layer, x = make_vvau(4, 9, "INT3", "INT3", 2, odt="UINT2", spatial=(2,), frames=3, seed=5)
    simulate_layer(layer, x, VVAUComponent, gaps=gaps, backpressure=backpressure)


@pytest.mark.parametrize("c,k,pe,spatial", [(4, 9, 2, (2,)), (6, 1, 3, (3,)), (4, 4, 4, (2, 2)),
                                            (3, 5, 1, ())])
def test_vvau_throughput(c, k, pe, spatial):
    """One input word per cycle: frames exactly cycles() apart, inputs back to back."""
    layer, x = make_vvau(c, k, "UINT2", "INT3", pe, odt="UINT2", spatial=spatial, frames=4, seed=3)
    res = simulate_layer(layer, x, VVAUComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 3
    assert list(np.diff(res.in_cycles)) == [1] * (len(res.in_cycles) - 1)
    assert res.out_cycles[0] - res.in_cycles[k - 1] == res.dut.LATENCY


# (C, K, idt, wdt, pe, odt)
PIPE_CASES = [
    (6, 9, "BIPOLAR", "BIPOLAR", 3, "BIPOLAR"),
    (6, 5, "UINT2", "INT2", 2, "UINT2"),
    (5, 9, "UINT4", "INT4", 5, "INT4"),
    (3, 7, "INT8", "INT8", 1, None),
    (4, 3, "INT3", "BIPOLAR", 2, "raw:INT12"),
]


@pytest.mark.parametrize("pipeline", ["none", 1, 2, 3])
@pytest.mark.parametrize("case", PIPE_CASES, ids=[f"{c[3]}x{c[2]}-C{c[0]}-K{c[1]}-{c[5] or 'raw'}" for c in PIPE_CASES])
def test_vvau_pipeline(case, pipeline):
    """Every pipeline setting against execute() with back-pressure; throughput and latency."""
    C, K, idt, wdt, pe, odt = case
    layer, x = make_vvau(C, K, idt, wdt, pe, odt=odt, spatial=(2,), frames=3, pipeline=pipeline,
                         seed=zlib.crc32(repr(case).encode()))
    simulate_layer(layer, x, VVAUComponent, gaps=0.3, backpressure=0.5)
    res = simulate_layer(layer, x, VVAUComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 2
    assert res.out_cycles[0] - res.in_cycles[K - 1] == res.dut.LATENCY
    expected = 3 if pipeline == "none" else 5 + (layer.thresholds is not None)
    assert res.dut.LATENCY == expected


def test_vvau_rom_layout():
    layer, _ = make_vvau(6, 4, "UINT2", "INT3", 3, odt="UINT2", seed=1)
    comp = VVAUComponent(layer)
    rom = comp.weight_rom()
    Fragment.get(comp, None)
    assert len(rom) == (6 // 3) * 4
    W = layer.wdt.encode(layer.weights)
    g, k = 1, 2
    for p in range(3):
        assert (rom[g * 4 + k] >> (p * 3)) & 7 == W[g * 3 + p, k]


def test_vvau_large_elaboration_fast():
    rng = np.random.default_rng(0)
    layer = VVAU("big", channels=512, kernel_elems=9, in_dt=DType("UINT4"), wdt=DType("INT4"),
                 out_dt=DType("UINT4"), weights=rng.integers(-8, 8, size=(512, 9)),
                 thresholds=np.sort(rng.integers(-200, 200, size=(512, 15)), axis=1),
                 spatial=(14, 14), pe=16)
    t0 = time.perf_counter()
    Fragment.get(VVAUComponent(layer), None)
    assert time.perf_counter() - t0 < 10


def test_vvau_rejects_wrong_layer():
    with pytest.raises(TypeError, match="layer must be a VVAU"):
        VVAUComponent(FIFO("f", shape=(4,), dt=DType("UINT2"), lanes=1, depth=2))
    layer, _ = make_vvau(6, 4, "UINT2", "INT3", 3, odt="UINT2", seed=1)
    layer.pe = 4
    with pytest.raises(HwgenError, match="PE=4 must divide C=6"):
        VVAUComponent(layer)


W_TYPES = ["BIPOLAR", "BINARY", "INT2", "INT3", "INT4", "UINT2"]
I_TYPES = ["BIPOLAR", "UINT1", "UINT2", "INT3", "UINT4", "INT8"]
O_CHOICES = [None, "raw:INT24", "BIPOLAR", "UINT1", "UINT2", "INT4"]


@pytest.mark.parametrize("k", range(12))
def test_vvau_random_sweep(k):
    r = random.Random(k)
    c = r.choice([2, 3, 4, 6])
    layer, x = make_vvau(c, r.choice([1, 2, 4, 9]), r.choice(I_TYPES), r.choice(W_TYPES),
                         r.choice([d for d in range(1, c + 1) if c % d == 0]), odt=r.choice(O_CHOICES),
                         spatial=r.choice([(), (2,), (2, 2)]), frames=2, seed=300 + k,
                         pipeline=r.choice(["auto", "none", 1, 2]))
    simulate_layer(layer, x, VVAUComponent)


# -- SlidingWindow(depthwise) → VVAU ---------------------------------------------------------

def dwconv_graph(seed=0, frames=3, *, ifm=(5, 6), c=4, kernel=(3, 3), stride=(1, 1),
                 pad=(1, 1, 1, 1), pe=2):
    rng = np.random.default_rng(seed)
    u3, i3 = DType("UINT3"), DType("INT3")
    swg = SlidingWindow("dw0.swg", ifm=ifm, channels=c, kernel=kernel, stride=stride, pad=pad,
                        pad_value=0, dt=u3, simd=pe, depthwise=True)
    x = random_values(rng, u3, (frames,) + tuple(swg.in_shape))
    k = kernel[0] * kernel[1]
    W = random_values(rng, i3, (c, k))
    fifo = FIFO("dw0.fifo", shape=swg.out_shape, dt=u3, lanes=pe, depth=3)
    vvau = VVAU("dw0", channels=c, kernel_elems=k, in_dt=u3, wdt=i3, out_dt=DType("UINT2"),
                weights=W, spatial=tuple(swg.ofm), pe=pe)
    lo, hi = vvau.acc_range
    acc = (vvau._unfold(swg.execute(x)) * W.T).sum(axis=-2)
    vvau.thresholds = straddling_thresholds(rng, acc, lo, hi, 3)
    graph = DataflowGraph(layers=[swg, fifo, vvau], name="dwconv")
    graph.validate()
    return graph, x


def test_top_swg_vvau():
    graph, x = dwconv_graph(seed=1)
    simulate_top(graph, x)


def test_top_swg_vvau_throughput():
    graph, x = dwconv_graph(seed=2, frames=4)
    res = simulate_top(graph, x, gaps=0.0, backpressure=0.0)
    words = graph.layers[-1].out_words
    assert streamsim.frame_intervals(res, words)[-2:] == [graph.cycles()] * 2


@pytest.mark.slow
@pytest.mark.parametrize("k", range(150))
def test_vvau_random_sweep_large(k):
    r = random.Random(10_000 + k)
    c = r.choice([2, 3, 4, 6, 8, 12, 16])
    layer, x = make_vvau(c, r.choice([1, 2, 3, 4, 9, 25]), r.choice(I_TYPES), r.choice(W_TYPES),
                         r.choice([d for d in range(1, c + 1) if c % d == 0]), odt=r.choice(O_CHOICES),
                         spatial=r.choice([(), (2,), (3,), (2, 2)]), frames=3, seed=600 + k,
                         pipeline=r.choice(["auto", "none", 1, 2, 3]))
    simulate_layer(layer, x, VVAUComponent)
