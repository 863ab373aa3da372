"""MVAUComponent in the Amaranth simulator, every output word against MVAU.execute."""

import random
import time
import zlib

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwgen.dataflow import MVAU
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import MVAUComponent
from hwgen.hdl.common import pack_rows

import streamsim
from streamsim import random_values, simulate_layer, straddling_thresholds


def make_mvau(mw, mh, idt, wdt, pe, simd, *, odt=None, n_thr=None, out_base=None, spatial=(),
              frames=2, seed=0, name="mvau", pipeline="auto"):
    """An MVAU with random weights and (if ``odt`` is given without ``raw``) thresholds,
    and input frames ``x``; ``odt=None`` means a raw accumulator output of the
    smallest type, ``odt='raw:INTn'`` a raw output of a wider type."""
    rng = np.random.default_rng(seed)
    idt, wdt = DType(idt), DType(wdt)
    W = random_values(rng, wdt, (mh, mw))
    x = random_values(rng, idt, (frames,) + tuple(spatial) + (mw,))
    layer = MVAU(name, mw=mw, mh=mh, in_dt=idt, wdt=wdt, out_dt=None, weights=W,
                 spatial=tuple(spatial), pe=pe, simd=simd, pipeline=pipeline)
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
        layer.thresholds = straddling_thresholds(rng, x @ W.T, lo, hi, n)
        layer.out_base = base
    layer.validate()
    return layer, x


# (mw, mh, idt, wdt, pe, simd, odt, extra)
# odt None: raw accumulator (smallest type); "raw:T": raw in a wider type; else thresholds.
CASES = [
    # binary XNOR-popcount, thresholds to BIPOLAR, partial PE/SIMD
    (12, 10, "BIPOLAR", "BIPOLAR", 5, 4, "BIPOLAR", {}),
    # binary raw, SIMD full, PE 1
    (9, 6, "BIPOLAR", "BIPOLAR", 1, 9, None, {}),
    # PE full, SIMD 1, UINT output
    (10, 5, "UINT2", "INT2", 5, 1, "UINT2", {}),
    # signed output with negative base, multi-pixel
    (6, 3, "INT3", "INT3", 1, 3, "INT4", {"spatial": (3,)}),
    # raw, 2-D spatial
    (12, 6, "UINT4", "INT4", 3, 6, None, {"spatial": (2, 2)}),
    # wide signed × signed, raw
    (6, 5, "INT8", "INT8", 1, 2, None, {}),
    # unsigned weights, 1-bit unsigned input
    (10, 10, "UINT1", "UINT3", 2, 5, "UINT3", {}),
    # INT weights × BIPOLAR input, fewer thresholds than levels, negative base
    (9, 5, "BIPOLAR", "INT2", 5, 3, "INT3", {"out_base": -3, "n_thr": 4}),
    # NF = SF = 1 (PE and SIMD full): one-word ROMs
    (12, 3, "UINT4", "BIPOLAR", 3, 12, "UINT4", {}),
    # INT8 weights × UINT1 input, PE full
    (12, 10, "UINT1", "INT8", 10, 4, "INT2", {"spatial": (2,)}),
    # BIPOLAR weights × INT8 input, raw into a wider signed type (sign extension)
    (6, 6, "INT8", "BIPOLAR", 2, 1, "raw:INT32", {}),
    # UINT accumulator into a wider type (zero extension)
    (6, 3, "UINT2", "UINT2", 3, 2, "raw:INT12", {}),
    # BINARY weights, INT3 input, PE 1 SIMD 1, multi-pixel
    (9, 5, "INT3", "BINARY", 1, 1, "UINT2", {"spatial": (2, 2)}),
    # INT4 weights × INT3 input, SIMD partial
    (10, 6, "INT3", "INT4", 6, 5, "INT8", {"out_base": -100, "n_thr": 20}),
    # no thresholds at all (constant output out_base)
    (6, 5, "UINT2", "INT2", 5, 3, "INT3", {"out_base": -2, "n_thr": 0}),
    # a single threshold per channel
    (10, 3, "INT8", "INT3", 1, 10, "UINT1", {"spatial": (3,), "n_thr": 1, "out_base": 0}),
]


def _case_id(c):
    mw, mh, idt, wdt, pe, simd, odt, extra = c
    s = f"{wdt}x{idt}-{mh}x{mw}-pe{pe}-simd{simd}-{odt or 'raw'}"
    if "spatial" in extra:
        s += "-sp" + "x".join(map(str, extra["spatial"]))
    return s


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_mvau_words(case):
    mw, mh, idt, wdt, pe, simd, odt, extra = case
    extra = dict(extra)
    spatial = extra.pop("spatial", ())
    layer, x = make_mvau(mw, mh, idt, wdt, pe, simd, odt=odt, spatial=spatial, frames=3,
                         seed=zlib.crc32(_case_id(case).encode()), **extra)
    simulate_layer(layer, x, MVAUComponent)


def test_mvau_thresholds_outside_range():
    """All thresholds below acc_min (count = N) on some channels, above acc_max on others."""
    layer, x = make_mvau(6, 4, "INT3", "INT2", 2, 3, odt="UINT2", seed=7, frames=2)
    lo, hi = layer.acc_range
    T = layer.thresholds.copy()
    T[0] = lo
    T[1] = hi + 1
    T[2] = [lo, lo, hi + 1]
    layer.thresholds = T
    y = layer.execute(x)
    assert (y[..., 0] == 3).all() and (y[..., 1] == 0).all() and (y[..., 2] == 2).all()
    simulate_layer(layer, x, MVAUComponent)


@pytest.mark.parametrize("gaps,backpressure", [(0.0, 0.6), (0.6, 0.0), (0.5, 0.5)])
def test_mvau_handshake_stress(gaps, backpressure):
    layer, x = make_mvau(6, 6, "UINT2", "INT3", 3, 2, odt="INT2", spatial=(2,), frames=3, seed=11)
    simulate_layer(layer, x, MVAUComponent, gaps=gaps, backpressure=backpressure)


@pytest.mark.parametrize("pe,simd,spatial", [(1, 1, ()), (2, 3, (3,)), (6, 6, (2, 2)), (3, 1, ())])
def test_mvau_throughput(pe, simd, spatial):
    """No gaps, no back-pressure: frames are exactly layer.cycles() apart, words back to back."""
    layer, x = make_mvau(6, 6, "INT3", "INT2", pe, simd, odt="UINT2", spatial=spatial, frames=4, seed=3)
    res = simulate_layer(layer, x, MVAUComponent, gaps=0.0, backpressure=0.0)
    intervals = streamsim.frame_intervals(res, layer.out_words)
    assert intervals == [layer.cycles()] * 3, (intervals, layer.cycles())
    # input accepted with no bubble between pixels or frames
    nf = layer.mh // layer.pe
    steps = np.diff(res.in_cycles)
    sf = layer.mw // layer.simd
    expected_steps = [1 + (sf * (nf - 1) if (k + 1) % sf == 0 else 0) for k in range(len(steps))]
    assert list(steps) == expected_steps
    # latency: first output LATENCY cycles after the SF-th input handshake
    assert res.out_cycles[0] - res.in_cycles[sf - 1] == res.dut.LATENCY


# -- pipelining: every setting against execute(), with back-pressure; throughput and latency --------

# (mw, mh, idt, wdt, pe, simd, odt)
PIPE_CASES = [
    (12, 10, "BIPOLAR", "BIPOLAR", 5, 12, "BIPOLAR"),     # XNOR-popcount, SIMD 12 (4 tree levels)
    (10, 6, "UINT2", "INT2", 3, 5, "UINT2"),               # 2 bits, SIMD 5
    (21, 6, "UINT4", "INT4", 2, 7, "INT4"),                # 4 bits, SIMD 7, signed out
    (9, 3, "INT8", "INT8", 3, 9, None),                     # 8 bits, raw accumulator
    (6, 5, "INT3", "BIPOLAR", 5, 6, "raw:INT12"),          # BIPOLAR weights, raw into a wider type
    (10, 4, "UINT1", "INT3", 1, 10, "UINT1"),              # 1 threshold
]
PIPELINES = ["none", 1, 2, 3]


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("case", PIPE_CASES, ids=[f"{c[3]}x{c[2]}-simd{c[5]}-{c[6] or 'raw'}" for c in PIPE_CASES])
def test_mvau_pipeline(case, pipeline):
    mw, mh, idt, wdt, pe, simd, odt = case
    layer, x = make_mvau(mw, mh, idt, wdt, pe, simd, odt=odt, spatial=(2,), frames=3, pipeline=pipeline,
                         seed=zlib.crc32(repr(case).encode()))
    simulate_layer(layer, x, MVAUComponent, gaps=0.3, backpressure=0.5)
    res = simulate_layer(layer, x, MVAUComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 2
    sf = layer.mw // layer.simd
    assert res.out_cycles[0] - res.in_cycles[sf - 1] == res.dut.LATENCY
    if pipeline == "none":
        assert res.dut.LATENCY == layer.latency() == 3


def test_mvau_pipeline_stages():
    """Tree cuts: no stage holds more than k adder levels (the accumulator counting as one)."""
    from hwgen.dataflow.pipeline import tree_split_points
    assert tree_split_points(32, 0) == set()
    assert tree_split_points(32, 2) == {2, 4}           # 5 levels + acc: prod | 1-2 | 3-4 | 5+acc
    assert tree_split_points(32, 3) == {3}
    assert tree_split_points(5, 1) == {1, 2, 3}
    assert tree_split_points(1, 2) == set()
    layer, _ = make_mvau(64, 4, "UINT4", "INT4", 1, 64, odt="UINT4", pipeline=2)
    comp = MVAUComponent(layer)
    assert comp.tree_splits() == {1, 3, 5} and comp.LATENCY == 3 + 2 + 3 + 1
    Fragment.get(comp, None)
    layer.pipeline = "bad"
    with pytest.raises(HwgenError, match="pipeline must be"):
        MVAUComponent(layer)


def test_mvau_pipeline_roundtrip():
    """The pipeline option round-trips through model.json; a missing one reads as "auto"."""
    layer, _ = make_mvau(6, 4, "UINT2", "INT3", 2, 3, odt="UINT2", pipeline=3)
    attrs, arrays = layer.to_json()
    assert attrs["pipeline"] == 3
    assert MVAU.from_json(attrs, arrays).pipeline == 3
    del attrs["pipeline"]
    old = MVAU.from_json(attrs, arrays)
    from hwgen.dataflow.pipeline import DEFAULT_PIPELINE, pipeline_levels
    assert pipeline_levels(old) == DEFAULT_PIPELINE


def test_mvau_rom_layout():
    layer, _ = make_mvau(6, 4, "UINT2", "INT3", 2, 3, odt="UINT2", seed=1)
    comp = MVAUComponent(layer)
    rom = comp.weight_rom()
    assert len(rom) == (4 // 2) * (6 // 3)
    W = layer.wdt.encode(layer.weights)
    nf, sf = 1, 1
    word = rom[nf * 2 + sf]
    for p in range(2):
        for s in range(3):
            assert (word >> ((p * 3 + s) * 3)) & 7 == W[nf * 2 + p, sf * 3 + s]
    assert pack_rows(np.array([[1, 2], [3, 0]]), 4) == [0x21, 0x03]
    Fragment.get(comp, None)


def test_mvau_large_elaboration_fast():
    """ROMs of large layers are built with numpy: elaboration stays fast."""
    rng = np.random.default_rng(0)
    layer = MVAU("big", mw=512, mh=512, in_dt=DType("BIPOLAR"), wdt=DType("BIPOLAR"),
                 out_dt=DType("BIPOLAR"), weights=rng.choice([-1, 1], size=(512, 512)),
                 thresholds=np.zeros((512, 1), dtype=np.int64), out_base=-1, pe=16, simd=32)
    t0 = time.perf_counter()
    Fragment.get(MVAUComponent(layer), None)
    big2 = MVAU("big2", mw=2304, mh=256, in_dt=DType("UINT4"), wdt=DType("INT4"), out_dt=None,
                weights=rng.integers(-8, 8, size=(256, 2304)), pe=8, simd=16)
    big2.out_dt = big2.acc_dt
    Fragment.get(MVAUComponent(big2), None)
    assert time.perf_counter() - t0 < 20


def test_mvau_rejects_wrong_layer():
    from hwgen.dataflow import FIFO
    with pytest.raises(TypeError, match="layer must be an MVAU"):
        MVAUComponent(FIFO("f", shape=(4,), dt=DType("UINT2"), lanes=1, depth=2))
    layer, _ = make_mvau(6, 4, "UINT2", "INT3", 2, 3, odt="UINT2", seed=1)
    layer.pe = 3
    with pytest.raises(HwgenError, match="PE=3 must divide MH=4"):
        MVAUComponent(layer)


# -- randomised sweeps over the type × size × folding grid -----------------------------

W_TYPES = ["BIPOLAR", "BINARY", "INT2", "INT3", "INT4", "INT8", "UINT2"]
I_TYPES = ["BIPOLAR", "UINT1", "UINT2", "INT3", "UINT4", "INT8"]
O_CHOICES = [None, "raw:INT24", "BIPOLAR", "UINT1", "UINT2", "INT2", "INT4", "UINT4"]


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_case(k, sizes_w=(6, 9, 10, 12), sizes_h=(3, 5, 6, 10)):
    r = random.Random(k)
    mw, mh = r.choice(sizes_w), r.choice(sizes_h)
    return dict(mw=mw, mh=mh, idt=r.choice(I_TYPES), wdt=r.choice(W_TYPES),
                pe=r.choice(_divisors(mh)), simd=r.choice(_divisors(mw)), odt=r.choice(O_CHOICES),
                spatial=r.choice([(), (2,), (3,), (2, 2)]), pipeline=r.choice(["auto", "none", 1, 2, 3]))


@pytest.mark.parametrize("k", range(40))
def test_mvau_random_sweep(k):
    case = random_case(k)
    layer, x = make_mvau(**case, frames=2, seed=1000 + k)
    simulate_layer(layer, x, MVAUComponent)


@pytest.mark.slow
@pytest.mark.parametrize("k", range(300))
def test_mvau_random_sweep_large(k):
    case = random_case(10_000 + k, sizes_w=(6, 9, 10, 12, 24, 36, 64), sizes_h=(3, 5, 6, 10, 16, 30))
    layer, x = make_mvau(**case, frames=3, seed=2000 + k)
    simulate_layer(layer, x, MVAUComponent)
