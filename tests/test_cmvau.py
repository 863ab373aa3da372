"""ConstMVAU: the constant-weight layer kind, its Verilog in Icarus against the IR reference, and the build choosing it.

The reference of every output word is the MVAU's ``execute`` (``x @ W.T`` and the thresholds in numpy,
:func:`hwgen.dataflow.base.apply_thresholds`), encoded in the output type; the hardware is the
shift-add network, constant comparisons and the stream pipeline (:mod:`hwgen.cmvm.layer`).
"""

import shutil

import numpy as np
import pytest

from hwgen.cmvm.sim import run_layer_icarus
from hwgen.dataflow import MVAU, ConstMVAU
from hwgen.dataflow.cmvau import AUTO_MAX_WEIGHTS, as_const, const_weights, levels_for_clock
from hwgen.dataflow.mvau import accumulator_range
from hwgen.dtypes import dtype
from hwgen.errors import HwgenError
from hwgen.hdl.cmvau import layer_verilog

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not on PATH")


def random_weights(wdt, shape, rng):
    if wdt.name == "BIPOLAR":
        return rng.choice([-1, 1], shape)
    return rng.integers(wdt.min, wdt.max + 1, shape)


def random_inputs(idt, n, mw, rng):
    if idt.name == "BIPOLAR":
        return rng.choice([-1, 1], (n, mw))
    x = rng.integers(idt.min, idt.max + 1, (n, mw))
    x[0], x[1] = idt.min, idt.max                  # the corners
    return x


def random_thresholds(W, idt, k, rng):
    """``k`` ascending thresholds per row over the accumulator range and a little beyond it (constant
    comparisons), with repeats."""
    lo, hi = accumulator_range(W, idt)
    T = np.stack([rng.integers(l - 3, h + 4, k) for l, h in zip(lo, hi)])
    if k > 2:
        T[:, 1] = T[:, 0]                          # a repeated threshold
    return np.sort(T, axis=1)


def make_layer(idt, wdt, odt, k, mh, mw, levels, rng, out_base=0):
    idt, wdt, odt = dtype(idt), dtype(wdt), dtype(odt)
    W = random_weights(wdt, (mh, mw), rng)
    T = None if k is None else random_thresholds(W, idt, k, rng)
    if odt.name == "BIPOLAR":
        out_base = -1
    m = MVAU("fc", mw=mw, mh=mh, in_dt=idt, wdt=wdt, out_dt=odt, weights=W, thresholds=T, out_base=out_base,
             pe=mh, simd=mw, pipeline=levels)
    m.validate()
    return m


# (id, in type, weight type, out type, thresholds per channel or None (the accumulator), MH, MW, levels, out_base)
CASES = [
    ("xnor", "BIPOLAR", "BIPOLAR", "BIPOLAR", 1, 7, 9, 2, 0),
    ("bipolar_in_w4_u2", "BIPOLAR", "INT4", "UINT2", 3, 6, 11, 1, 0),
    ("bipolar_in_raw", "BIPOLAR", "INT4", "INT8", None, 5, 13, 0, 0),
    ("bipolar_in_raw_pipe", "BIPOLAR", "INT3", "INT8", None, 4, 6, 2, 0),
    ("binary_in_raw", "BINARY", "INT3", "INT7", None, 6, 10, 0, 0),
    ("u2_w2_int3", "UINT2", "INT2", "INT3", 7, 5, 8, 3, -4),
    ("int3_w4_raw", "INT3", "INT4", "INT9", None, 9, 7, 2, 0),
    ("u4_w4_u4_comb", "UINT4", "INT4", "UINT4", 15, 8, 16, 0, 0),
    ("u4_w4_u4_pipe1", "UINT4", "INT4", "UINT4", 15, 8, 16, 1, 0),
    ("int8_w8_u8", "INT8", "INT8", "UINT8", 255, 3, 5, 4, 0),
    ("u16_w2_raw", "UINT16", "INT2", "INT20", None, 5, 3, 1, 0),
    ("w1_signed", "UINT3", "INT1", "INT6", None, 4, 5, 1, 0),
]


@needs_icarus
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("traffic", ["stalls", "full"])
def test_layer_in_icarus(case, traffic, tmp_path):
    """Every output word of 60 vectors under random gaps and back-pressure ("stalls") or a continuous stream
    ("full": each output exactly latency() cycles after its input, one word per cycle)."""
    cid, idt, wdt, odt, k, mh, mw, levels, base = case
    seed = 17 + CASES.index(case)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    m = make_layer(idt, wdt, odt, k, mh, mw, levels, rng, base)
    c = as_const(m)
    assert type(c) is ConstMVAU and c.levels == levels
    x = random_inputs(c.idt, 60, mw, rng)
    y = m.execute(x)                                  # the reference: numpy
    text, latency = layer_verilog(c, "cmvau")
    assert latency == c.latency()
    ok, lat, log = run_layer_icarus(text, "cmvau", c.idt.encode(x), c.idt.bits,
                                    c.odt.encode(y), c.odt.bits, tmp_path, seed=seed,
                                    **({"p_valid": 0.6, "p_ready": 0.55} if traffic == "stalls" else {}))
    assert ok, log
    if traffic == "full":
        assert lat[0] == lat[1] == c.latency(), (lat, c.latency())
        assert lat[2] <= 60 + c.latency() + 2                # one word per cycle
    if levels == 0:
        assert c.latency() == 0


def test_levels_and_latency():
    rng = np.random.default_rng(3)
    m = make_layer("UINT4", "INT4", "UINT4", 15, 16, 32, 0, rng)
    depth = as_const(m).graph.max_depth
    for k in (1, 2, 3, depth, depth + 5):
        m.pipeline = k
        c = as_const(m)
        # the network's stages, then the thresholds' own stage
        assert c.latency() == -(-depth // k) + 1, (k, depth)
        assert c.cycles() == 1
    m.pipeline = "none"
    assert as_const(m).latency() == 0
    m.pipeline = "auto"
    assert as_const(m, levels=4).pipeline == 4
    assert levels_for_clock(100) >= 1 and levels_for_clock(400) == 1
    assert levels_for_clock(50) > levels_for_clock(100) >= levels_for_clock(200)


def test_schedule_is_one_word_per_cycle():
    rng = np.random.default_rng(4)
    c = as_const(make_layer("UINT2", "INT3", "UINT2", 3, 5, 6, 2, rng))
    arrivals = np.array([0, 0, 0, 5, 5, 9], dtype=float)
    (reads,), (outs,) = c.schedule([arrivals], 6)
    assert list(reads) == [0, 1, 2, 5, 6, 9]
    assert list(outs) == [r + c.latency() for r in reads]


def test_choice_and_pinning():
    rng = np.random.default_rng(5)
    m = make_layer("UINT4", "INT4", "UINT4", 15, 8, 16, "auto", rng)
    assert const_weights(m)                            # fully unrolled, small: constant weights
    m.impl = "rom"
    assert not const_weights(m)
    m.impl = "auto"
    m.set_folding(pe=4, simd=16)
    assert not const_weights(m)
    m.impl = "const"
    assert const_weights(m)
    big = MVAU("big", mw=AUTO_MAX_WEIGHTS // 64 + 1, mh=64, in_dt=dtype("UINT2"), wdt=dtype("INT2"), out_dt=dtype("INT16"),
               weights=np.ones((64, AUTO_MAX_WEIGHTS // 64 + 1), dtype=np.int64), pe=64, simd=AUTO_MAX_WEIGHTS // 64 + 1)
    assert not const_weights(big)                      # over the automatic limit: ROMs unless asked
    big.impl = "const"
    assert const_weights(big)


def test_estimate_prices_what_is_built():
    from hwgen.dataflow.estimate import layer_resources
    rng = np.random.default_rng(6)
    m = make_layer("UINT4", "INT4", "UINT4", 15, 16, 16, 2, rng)
    assert layer_resources(m) == layer_resources(as_const(m))
    m.impl = "rom"
    assert layer_resources(m) != layer_resources(as_const(m))
    assert layer_resources(as_const(m))["DSP"] == 0 and layer_resources(as_const(m))["BRAM18"] == 0


def test_errors_in_full():
    rng = np.random.default_rng(7)
    m = make_layer("UINT4", "INT4", "UINT4", 15, 8, 16, 2, rng)
    m.impl = "fast"
    with pytest.raises(HwgenError) as e:
        m.validate()
    assert str(e.value) == "layer fc: impl must be one of auto, rom, const, not 'fast'"
    m.impl = "auto"
    c = as_const(m)
    c.pe = 4
    with pytest.raises(HwgenError) as e:
        c.validate()
    assert str(e.value) == ("layer fc: a constant-weight layer is fully unrolled: PE must be MH=8 and SIMD MW=16, "
                            "not PE=4, SIMD=16")
    c.pe, c.pipeline = 8, "fast"
    with pytest.raises(HwgenError) as e:
        c.validate()
    assert str(e.value) == "layer fc: pipeline must be 'auto', 'none' or a non-negative integer, not 'fast'"


def test_model_json_round_trip(tmp_path):
    from hwgen.dataflow import DataflowGraph
    rng = np.random.default_rng(8)
    c = as_const(make_layer("UINT4", "INT4", "UINT4", 15, 8, 16, 2, rng))
    g = DataflowGraph([c])
    g.save(tmp_path)
    h = DataflowGraph.load(tmp_path)
    assert type(h.layers[0]) is ConstMVAU and h.layers[0].pipeline == 2 and h.layers[0].impl == "const"
    x = random_inputs(c.idt, 10, 16, rng)
    np.testing.assert_array_equal(h.layers[0].execute(x), c.execute(x))


# -- the build ------------------------------------------------------------------------------------
pytestmark_sim = [pytest.mark.sim, pytest.mark.filterwarnings("ignore")]


def _const_folding(path):
    from hwgen.build import run_until
    _, g = run_until(path, "lower")
    return {l.name: {"impl": "const"} for l in g.layers if l.kind == "MVAU"}


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["w4a4_relu_bn", "bipolar_w_mixed", "bipolar_acts", "w8a8_channel"])
def test_build_const_verify(spec_onnx, tmp_path, name):
    """Every MVAU of a Brevitas MLP pinned to constant weights: built, every word of 50 frames equal to the IR
    reference on Verilator (random gaps and back-pressure), one frame per cycle as estimated."""
    import hwgen
    _, path = spec_onnx(name)
    b = hwgen.build(path, tmp_path / "b", folding=_const_folding(path), progress=False)
    kinds = [l.kind for l in b.graph.compute_layers]
    assert "ConstMVAU" in kinds and "MVAU" not in kinds, kinds
    text = open(b.verilog_path).read()
    assert text.count("__mvm(") >= kinds.count("ConstMVAU")
    r = hwgen.verify(b.out_dir, frames=50, sim="verilator", seed=11, progress=False)
    assert r.ok and r.mismatches == 0
    assert r.cycles_per_frame == pytest.approx(b.cycles_per_frame, rel=0.02)


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore")
def test_build_auto_and_rom(spec_onnx, tmp_path):
    """Fully unrolled by the folding: constant weights by default, ROMs with impl rom; both exact in Icarus."""
    import hwgen
    _, path = spec_onnx("w4a4_relu_bn")
    full = {"fc0": {"pe": 10, "simd": 12}, "fc1": {"pe": 6, "simd": 10}}
    b = hwgen.build(path, tmp_path / "auto", folding=full, progress=False)
    assert [l.kind for l in b.graph.compute_layers] == ["ConstMVAU", "ConstMVAU"]
    doc = {k: dict(v, impl="rom") for k, v in full.items()}
    b2 = hwgen.build(path, tmp_path / "rom", folding=doc, progress=False)
    assert [l.kind for l in b2.graph.compute_layers] == ["MVAU", "MVAU"]
    assert b.report["resources"]["LUT"] < b2.report["resources"]["LUT"]
    for out in (b.out_dir, b2.out_dir):
        r = hwgen.verify(out, frames=30, sim="icarus", seed=12, progress=False)
        assert r.ok and r.mismatches == 0
    # folding.json reproduces the build
    import json
    fold = json.load(open(f"{b.out_dir}/folding.json"))
    assert fold["fc0"]["impl"] == "const" and isinstance(fold["fc0"]["pipeline"], int)
    b3 = hwgen.build(path, tmp_path / "again", folding=fold, progress=False)
    assert open(b3.verilog_path).read() == open(b.verilog_path).read()


@needs_icarus
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("pipeline", ["none", 2])
def test_build_parallel_io(spec_onnx, tmp_path, pipeline):
    """--io parallel: no FIFOs, hwgen_top_parallel takes a frame per cycle; every frame's output equals the IR
    reference exactly latency cycles after its input (0 when combinational)."""
    import hwgen
    from hwgen.cmvm.sim import run_parallel_icarus
    _, path = spec_onnx("w4a4_relu_bn")
    fold = {"fc0": {"pipeline": pipeline}, "fc1": {"pipeline": pipeline}}
    b = hwgen.build(path, tmp_path / "p", folding=fold, io="parallel", progress=False)
    assert [l.kind for l in b.graph.layers] == ["ConstMVAU", "ConstMVAU"]
    par = b.manifest["parallel"]
    assert par["top"] == "hwgen_top_parallel"
    assert par["latency_cycles"] == sum(l.latency() for l in b.graph.layers)
    assert (par["latency_cycles"] == 0) == (pipeline == "none")
    rng = np.random.default_rng(13)
    print("seed 13")
    x = b.graph.layers[0].idt.encode(rng.integers(b.graph.idt.min, b.graph.idt.max + 1, (80,) + tuple(b.graph.in_shape)))
    y = b.graph.odt.encode(_execute(b.graph, b.graph.idt.decode(x)))
    for pv in (1.0, 0.5):
        ok, lat, log = run_parallel_icarus([b.verilog_path], "hwgen_top_parallel", x, b.graph.idt.bits, y, b.graph.odt.bits,
                                           tmp_path / f"sim{pv}", seed=13, p_valid=pv)
        assert ok, log
        assert lat[0] == lat[1] == par["latency_cycles"]


def _execute(graph, x):
    for l in graph.layers:
        x = l.execute(x)
    return x


def test_build_parallel_refused(spec_onnx, tmp_path):
    import hwgen
    _, path = spec_onnx("w4a4_relu_bn")
    with pytest.raises(HwgenError) as e:
        hwgen.build(path, tmp_path / "p", folding={"fc0": {"impl": "rom"}}, io="parallel", progress=False)
    assert str(e.value) == ("--io parallel needs every layer fully connected with constant weights (ConstMVAU, one vector "
                            "per frame); layer fc0 is a MVAU")
    assert not (tmp_path / "p").exists()
    with pytest.raises(HwgenError) as e:
        hwgen.build(path, tmp_path / "p", io="serial", progress=False)
    assert str(e.value) == "io must be one of stream, parallel, not 'serial'"


def test_cuts_take_the_fewest_register_bits():
    """Of the placements with the same number of stages and none over k levels, layer_cuts takes the cheapest."""
    from hwgen.cmvm.layer import layer_cuts
    from hwgen.cmvm.verilog import register_bits
    for seed in range(6):
        c = as_const(make_layer("UINT4", "INT4", "UINT4", 15, 12, 24, 3, np.random.default_rng(seed)))
        g, total = c.graph, c.graph.max_depth
        for k in (2, 3):
            cuts = layer_cuts(g, k, 1)
            assert cuts[-1] == total and len(cuts) == -(-total // k)      # the network's outputs registered
            stages = np.diff([0] + cuts)
            assert stages.max() <= k
            others = [list(range(o, total, k)) + [total] for o in range(1, k + 1)]
            assert register_bits(g, cuts) == min(register_bits(g, o) for o in others if len(o) == len(cuts))
