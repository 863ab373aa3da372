"""PoolComponent and GlobalPoolComponent in the Amaranth simulator, every output word against
the layers' execute; their throughput; SlidingWindow(depthwise) → Pool → GlobalPool through
the Top."""

import random
import time
import zlib

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwgen.dataflow import FIFO, DataflowGraph, GlobalPool, Pool, SlidingWindow
from hwgen.dataflow.pool import pool_dtype
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import GlobalPoolComponent, PoolComponent

import streamsim
from streamsim import random_values, simulate_layer
from test_hdl_swg import simulate_top


def make_pool(c, k, mode, idt, pe, *, odt=None, spatial=(), frames=2, seed=0, name="pool"):
    idt = DType(idt)
    odt = DType(odt) if odt else pool_dtype(mode, idt, k)
    layer = Pool(name, channels=c, kernel_elems=k, mode=mode, in_dt=idt, out_dt=odt,
                 spatial=tuple(spatial), pe=pe)
    layer.validate()
    rng = np.random.default_rng(seed)
    return layer, random_values(rng, idt, (frames,) + tuple(layer.in_shape))


def make_gpool(c, ifm, mode, idt, pe, *, odt=None, frames=2, seed=0, name="gpool"):
    idt = DType(idt)
    odt = DType(odt) if odt else pool_dtype(mode, idt, int(np.prod(ifm)))
    layer = GlobalPool(name, channels=c, ifm=tuple(ifm), mode=mode, in_dt=idt, out_dt=odt, pe=pe)
    layer.validate()
    rng = np.random.default_rng(seed)
    return layer, random_values(rng, idt, (frames,) + tuple(layer.in_shape))


# (C, K, mode, idt, pe, odt, spatial)
POOL_CASES = [
    (4, 4, "max", "UINT3", 2, None, (2, 2)),        # 2×2 max-pool
    (4, 9, "max", "INT4", 4, None, (3,)),           # 3×3, PE full, signed
    (3, 9, "max", "INT3", 1, "INT8", (2,)),         # max into a wider type
    (4, 4, "max", "BIPOLAR", 2, None, (3,)),        # binary max
    (4, 1, "max", "UINT2", 2, None, (2,)),          # K = 1
    (4, 4, "sum", "UINT2", 2, None, (2, 2)),        # sum (average numerator)
    (6, 9, "sum", "INT3", 3, None, (2,)),
    (2, 6, "sum", "BIPOLAR", 1, None, (3,)),        # sum of ±1
    (2, 4, "sum", "INT4", 2, "INT16", ()),          # sum into a wider type
    (4, 1, "sum", "INT8", 4, None, (2,)),
]


def _pool_id(c):
    C, K, mode, idt, pe, odt, sp = c
    return f"{mode}-{idt}-C{C}-K{K}-pe{pe}-{odt or 'auto'}-sp{'x'.join(map(str, sp))}"


@pytest.mark.parametrize("case", POOL_CASES, ids=[_pool_id(c) for c in POOL_CASES])
def test_pool_words(case):
    C, K, mode, idt, pe, odt, sp = case
    layer, x = make_pool(C, K, mode, idt, pe, odt=odt, spatial=sp, frames=3,
                         seed=zlib.crc32(_pool_id(case).encode()))
    simulate_layer(layer, x, PoolComponent)


# (C, ifm, mode, idt, pe, odt)
GPOOL_CASES = [
    (4, (3, 3), "sum", "UINT2", 2, None),           # G = 2 (memory)
    (4, (2, 3), "max", "INT3", 4, None),            # G = 1 (register)
    (6, (1, 1), "sum", "INT4", 2, None),            # one pixel
    (6, (4, 5), "max", "UINT4", 1, None),           # G = 6, PE 1
    (3, (2, 2), "sum", "BIPOLAR", 3, "INT8"),
    (8, (3, 2), "max", "BIPOLAR", 2, None),
    (5, (5, 3), "sum", "INT8", 5, None),
    (4, (2, 2), "max", "UINT8", 2, "UINT16"),
]


def _gpool_id(c):
    C, ifm, mode, idt, pe, odt = c
    return f"{mode}-{idt}-C{C}-{ifm[0]}x{ifm[1]}-pe{pe}-{odt or 'auto'}"


@pytest.mark.parametrize("case", GPOOL_CASES, ids=[_gpool_id(c) for c in GPOOL_CASES])
def test_gpool_words(case):
    C, ifm, mode, idt, pe, odt = case
    layer, x = make_gpool(C, ifm, mode, idt, pe, odt=odt, frames=3,
                          seed=zlib.crc32(_gpool_id(case).encode()))
    simulate_layer(layer, x, GlobalPoolComponent)


@pytest.mark.parametrize("gaps,backpressure", [(0.0, 0.7), (0.7, 0.0), (0.5, 0.5)])
def test_pool_handshake_stress(gaps, backpressure):
    layer, x = make_pool(4, 4, "max", "INT4", 2, spatial=(3,), frames=3, seed=4)
    simulate_layer(layer, x, PoolComponent, gaps=gaps, backpressure=backpressure)
    for pe in (1, 2, 4):       # G = 4 words of memory and G = 2, G = 1 register
        layer, x = make_gpool(4, (2, 3), "sum", "INT3", pe, frames=3, seed=5)
        simulate_layer(layer, x, GlobalPoolComponent, gaps=gaps, backpressure=backpressure)


@pytest.mark.parametrize("c,k,pe,mode", [(4, 4, 2, "max"), (4, 9, 4, "sum"), (3, 1, 1, "max")])
def test_pool_throughput(c, k, pe, mode):
    layer, x = make_pool(c, k, mode, "UINT3", pe, spatial=(2, 2), frames=4, seed=6)
    res = simulate_layer(layer, x, PoolComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 3
    assert list(np.diff(res.in_cycles)) == [1] * (len(res.in_cycles) - 1)
    assert res.out_cycles[0] - res.in_cycles[k - 1] == layer.latency() == 1


@pytest.mark.parametrize("c,ifm,pe", [(4, (3, 3), 2), (4, (2, 2), 4), (6, (1, 1), 1), (8, (5, 4), 2)])
def test_gpool_throughput(c, ifm, pe):
    """H·W·C/PE cycles per frame, no overhead: input back to back across frames while the
    last pixel's words turn into the output."""
    layer, x = make_gpool(c, ifm, "max", "INT4", pe, frames=4, seed=7)
    res = simulate_layer(layer, x, GlobalPoolComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 3
    assert list(np.diff(res.in_cycles)) == [1] * (len(res.in_cycles) - 1)
    first_last_pixel = layer.in_words - layer.out_words
    assert res.out_cycles[0] - res.in_cycles[first_last_pixel] == layer.latency() == 2


def test_pool_large_elaboration_fast():
    t0 = time.perf_counter()
    layer, _ = make_gpool(512, (7, 7), "sum", "UINT4", 4, frames=1)
    Fragment.get(GlobalPoolComponent(layer), None)
    layer, _ = make_pool(256, 9, "max", "UINT4", 32, spatial=(28, 28), frames=1)
    Fragment.get(PoolComponent(layer), None)
    assert time.perf_counter() - t0 < 10


def test_pool_rejects_wrong_layer():
    fifo = FIFO("f", shape=(4,), dt=DType("UINT2"), lanes=1, depth=2)
    with pytest.raises(TypeError, match="layer must be a Pool"):
        PoolComponent(fifo)
    with pytest.raises(TypeError, match="layer must be a GlobalPool"):
        GlobalPoolComponent(fifo)
    layer, _ = make_pool(4, 4, "sum", "UINT2", 2, spatial=(2,))
    layer.out_dt = DType("UINT3")
    with pytest.raises(HwgenError, match="cannot hold sums"):
        PoolComponent(layer)


def _random_pool(k, sizes):
    r = random.Random(k)
    c = r.choice(sizes)
    pe = r.choice([d for d in range(1, c + 1) if c % d == 0])
    mode = r.choice(["max", "sum"])
    idt = r.choice(["BIPOLAR", "UINT1", "UINT2", "INT3", "INT8"])
    if k % 2:
        layer, x = make_pool(c, r.choice([1, 2, 4, 9]), mode, idt, pe,
                             spatial=r.choice([(), (2,), (2, 2)]), seed=400 + k)
        simulate_layer(layer, x, PoolComponent)
    else:
        layer, x = make_gpool(c, (r.randint(1, 4), r.randint(1, 4)), mode, idt, pe, seed=400 + k)
        simulate_layer(layer, x, GlobalPoolComponent)


@pytest.mark.parametrize("k", range(12))
def test_pool_random_sweep(k):
    _random_pool(k, [2, 3, 4, 6])


@pytest.mark.slow
@pytest.mark.parametrize("k", range(150))
def test_pool_random_sweep_large(k):
    _random_pool(10_000 + k, [2, 3, 4, 6, 8, 12, 16])


# -- SlidingWindow(depthwise) → Pool → GlobalPool -------------------------------------------------

def pool_graph(seed=0, frames=3, *, ifm=(6, 7), c=4, pe=2, kernel=(3, 3), stride=(2, 2),
               pad=(1, 1, 1, 1), mode="max"):
    rng = np.random.default_rng(seed)
    i4 = DType("INT4")
    swg = SlidingWindow("pool0.swg", ifm=ifm, channels=c, kernel=kernel, stride=stride, pad=pad,
                        pad_value=-8, dt=i4, simd=pe, depthwise=True)
    k = kernel[0] * kernel[1]
    fifo = FIFO("pool0.fifo", shape=swg.out_shape, dt=i4, lanes=pe, depth=2)
    pool = Pool("pool0", channels=c, kernel_elems=k, mode=mode, in_dt=i4,
                out_dt=pool_dtype(mode, i4, k), spatial=tuple(swg.ofm), pe=pe)
    gpool = GlobalPool("gap", channels=c, ifm=tuple(swg.ofm), mode="sum", in_dt=pool.odt,
                       out_dt=pool_dtype("sum", pool.odt, int(np.prod(swg.ofm))), pe=pe)
    graph = DataflowGraph(layers=[swg, fifo, pool, gpool], name="pool")
    graph.validate()
    x = random_values(rng, i4, (frames,) + tuple(swg.in_shape))
    return graph, x


def test_top_swg_pool():
    graph, x = pool_graph(seed=1)
    simulate_top(graph, x)
    graph, x = pool_graph(seed=2, mode="sum", kernel=(2, 3), stride=(1, 2), pad=(0, 1, 1, 0))
    simulate_top(graph, x, gaps=0.5, backpressure=0.5)


def test_top_swg_pool_throughput():
    """2×2 stride-2 max-pool windows then a global sum: the window generator (in-bound, out ==
    in here) sets the pace, cycles() per frame."""
    graph, x = pool_graph(seed=3, frames=4, ifm=(6, 6), kernel=(2, 2), stride=(2, 2), pad=(0, 0, 0, 0))
    res = simulate_top(graph, x, gaps=0.0, backpressure=0.0)
    words = graph.layers[-1].out_words
    assert streamsim.frame_intervals(res, words)[-2:] == [graph.cycles()] * 2
