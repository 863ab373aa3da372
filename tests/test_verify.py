"""cocotb verification of build directories on Verilator and Icarus (hwgen.verify, sim/tb_stream.py).

The build directories here are made by hand: a one-layer DataflowGraph, a
manifest, and a hand-written Verilog ``hwgen_top`` that adds 100 to every
lane with a registered valid/ready handshake and takes one input word every
``K`` cycles.  Variants of the same Verilog corrupt one word or deadlock.  A
last test verifies a real top emitted by ``hwgen.hdl.top.to_verilog``.

Simulator builds are cached per design directory (session fixtures), so each
design is compiled once per simulator.
"""

import json
import os
import shutil

import numpy as np
import pytest

from hwgen import simulators
from hwgen.dataflow import FIFO, MVAU, DataflowGraph, Thresholding
from hwgen.dtypes import dtype
from hwgen.errors import HwgenError, VerifyError
from hwgen.host import apply_head, apply_tail, random_inputs
from hwgen.streams import tdata_bits
from hwgen.verify import VerifyResult, format_table, verify

pytestmark = pytest.mark.sim

SIMS = ["verilator", "icarus"]
# (simulator, testbench engine): the compiled C++ testbench and cocotb on Verilator, cocotb on Icarus
ENGINES = [("verilator", "compiled"), ("verilator", "cocotb"), ("icarus", "cocotb")]

# the hand-written design: C channels, PE lanes per word, one input word per K cycles
C, PE, K, BASE = 80, 20, 3, 100
IN_DT, OUT_DT = "UINT4", "UINT7"            # 80-bit input words, 140-bit output lanes padded to 144
WPF = C // PE                               # 4 words per frame in and out
CPF = WPF * K                               # 12 cycles per frame
LATENCY = (WPF - 1) * K + 1                 # last input word accepted -> output one cycle later

VERILOG = r"""
// Hand-written test design: y = x + {BASE} on every lane, one input word every K cycles.
module hwgen_top (
    input  wire clk,
    input  wire rst,
    input  wire [{IW}-1:0] s_axis_tdata,
    input  wire s_axis_tvalid,
    output wire s_axis_tready,
    output wire [{OW}-1:0] m_axis_tdata,
    output wire m_axis_tvalid,
    input  wire m_axis_tready
);
    localparam K = {K};
    reg [{LW}-1:0] data;
    reg full;
    reg [7:0] busy;
    reg [15:0] count;
    reg toggle;
    wire [{LW}-1:0] next;
    genvar i;
    generate for (i = 0; i < {PE}; i = i + 1) begin : lane
        assign next[i*7 +: 7] = {{3'd0, s_axis_tdata[i*4 +: 4]}} + 7'd{BASE};
    end endgenerate
    assign s_axis_tready = (busy == 8'd0) && (!full || m_axis_tready){STALL};
    assign m_axis_tvalid = full;
    // padding bits set on purpose: the testbench must ignore them
    assign m_axis_tdata = {{{PADV}, data{UNSTABLE}}};
    always @(posedge clk) toggle <= ~toggle;
    always @(posedge clk) begin
        if (rst) begin
            full <= 1'b0;
            busy <= 8'd0;
            count <= 16'd0;
            data <= {{{LW}{{1'b0}}}};
        end else begin
            if (busy != 8'd0) busy <= busy - 8'd1;
            if (m_axis_tvalid && m_axis_tready) full <= 1'b0;
            if (s_axis_tvalid && s_axis_tready) begin
                data <= next{CORRUPT};
                full <= 1'b1;
                busy <= K - 1;
                count <= count + 16'd1;
            end
        end
    end
endmodule
"""


def _head(n):
    return {"input_name": "x", "input_shape": [1, n],
            "quant": {"scale": 1.0, "zero_point": 0.0, "qmin": 0, "qmax": 15, "rounding_mode": "ROUND"},
            "quant_param_shape": [], "ir_shape": [n]}


def _side(shape, dt, lanes):
    dt = dtype(dt)
    return {"shape": list(shape), "dtype": dt.name, "lanes": lanes, "lane_bits": dt.bits,
            "tdata_bits": tdata_bits(lanes, dt), "words_per_frame": int(np.prod(shape)) // lanes}


def _write_build(out, graph, verilog, cycles_per_frame):
    os.makedirs(os.path.join(out, "rtl"), exist_ok=True)
    graph.validate()
    graph.save(out)
    with open(os.path.join(out, "rtl", "hwgen_top.v"), "w") as f:
        f.write(verilog)
    first, last = graph.layers[0], graph.layers[-1]
    manifest = {"format": "hwgen-build/1", "top": "hwgen_top", "verilog": ["rtl/hwgen_top.v"], "clock_mhz": 100.0,
                "input": _side(first.in_shape, first.idt, first.in_lanes),
                "output": _side(last.out_shape, last.odt, last.out_lanes),
                "cycles_per_frame": cycles_per_frame, "fps": 100e6 / cycles_per_frame,
                "head": graph.head, "tail": graph.tail}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return out


def make_plus100_build(out, variant="good"):
    """A Thresholding graph (identity thresholds from 100 = x + 100) and its hand-written Verilog."""
    layer = Thresholding(name="thr", channels=C, in_dt=dtype(IN_DT), out_dt=dtype(OUT_DT),
                         thresholds=np.tile(np.arange(1, 16), (C, 1)), out_base=BASE, pe=PE)
    graph = DataflowGraph([layer], head=_head(C), tail={"ops": [{"op": "mul", "value": 0.5}], "output_shape": [1, C]},
                          name=f"plus100_{variant}")
    iw, ow, lw = tdata_bits(PE, IN_DT), tdata_bits(PE, OUT_DT), PE * dtype(OUT_DT).bits
    verilog = VERILOG.format(
        IW=iw, OW=ow, LW=lw, K=K, PE=PE, BASE=BASE, PADV=f"{ow - lw}'b" + "10" * ((ow - lw) // 2),
        STALL=" && (count < 16'd6)" if variant == "deadlock" else "",      # stops taking input after 6 words
        CORRUPT=" ^ (count == 16'd5)" if variant == "bad" else "",         # flips lane 0's LSB of word 5
        UNSTABLE=" ^ (!m_axis_tready && toggle)" if variant == "unstable" else "")  # data changes while stalled
    return _write_build(out, graph, verilog, CPF)


def need(sim):
    if not simulators.available(sim):
        pytest.skip(f"simulator {sim} not available (run `make setup`)")


@pytest.fixture(scope="session")
def designs(tmp_path_factory):
    root = tmp_path_factory.mktemp("builds")
    return {v: make_plus100_build(str(root / v), v) for v in ("good", "bad", "deadlock", "unstable")}


@pytest.fixture(scope="session", params=ENGINES, ids=["-".join(e) for e in ENGINES])
def sim(request):
    """verify()'s keyword arguments choosing simulator and engine."""
    need(request.param[0])
    return {"sim": request.param[0], "engine": request.param[1]}


@pytest.fixture(scope="session")
def good(designs, sim):
    return verify(designs["good"], frames=256, **sim, seed=3, progress=False)


# ---------------------------------------------------------------------------
def test_good_design_is_bit_exact(good, designs):
    assert isinstance(good, VerifyResult)
    assert good.ok, good.table()
    assert good.mismatches == 0 and good.protocol_errors == 0
    assert good.frames == 256 and good.seed == 3
    graph = DataflowGraph.load(designs["good"])
    x = random_inputs(graph.head, 256, np.random.default_rng(3))       # what verify draws for seed 3
    np.testing.assert_array_equal(good.expected_int, graph.execute(apply_head(graph.head, x)))
    np.testing.assert_array_equal(good.outputs_int, good.expected_int)
    np.testing.assert_allclose(good.outputs, apply_tail(graph.tail, good.expected_int))
    assert good.outputs_int.min() >= BASE and good.outputs_int.max() <= BASE + 15


def test_measured_interval_and_latency(good):
    assert good.estimated_cycles_per_frame == CPF
    assert good.cycles_per_frame == CPF
    assert good.latency_cycles == LATENCY


def test_result_table(good):
    t = good.table()
    lines = t.splitlines()
    assert lines[0].split()[:4] == ["simulator", "engine", "frames", "mismatches"]
    assert lines[2].split()[:2] == [good.simulator, good.engine] and "PASS" in lines[2] and str(CPF) in lines[2]
    assert format_table([good, good]).count("PASS") == 2


def test_cached_build_is_reused(good, designs, sim):
    stamp = os.path.join(designs["good"], "sim", *(("verilator-compiled", "hwgen-compiled-build.json")
                                                   if sim["engine"] == "compiled" else (sim["sim"], "hwgen-sim-build.json")))
    assert os.path.isfile(stamp)
    r = verify(designs["good"], frames=3, **sim, seed=1, progress=False)
    assert r.build_seconds == 0.0 and r.ok and r.frames == 3


def test_wrong_design_reports_mismatches(designs, sim):
    r = verify(designs["bad"], frames=16, **sim, seed=0, progress=False)
    assert not r.ok
    assert r.mismatches == 1               # only the 6th word ever accepted is corrupted
    m = r.first_mismatches[0]
    assert (m["phase"], m["frame"], m["word"]) == ("throughput", 1, 1)
    assert m["lanes"] == [[0, m["lanes"][0][1], m["lanes"][0][2]]] and abs(m["lanes"][0][1] - m["lanes"][0][2]) == 1
    assert "FAIL" in r.table() and "frame 1 word 1" in r.table()
    assert (r.outputs_int != r.expected_int).sum() == 0   # the stress phase (reported outputs) is clean


def test_deadlock_ends_with_clear_error(designs, sim):
    with pytest.raises(VerifyError) as e:
        verify(designs["deadlock"], frames=8, **sim, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert "deadlock" in msg and "throughput phase" in msg and "received 6 of 32 words" in msg


def test_stress_without_backpressure_and_many_frames(designs, sim):
    r = verify(designs["good"], frames=1000, **sim, seed=11, progress=False,
               valid_gap_prob=0.0, ready_stall_prob=0.0)
    assert r.ok and r.cycles_per_frame == CPF


# ---------------------------------------------------------------------------
def test_inputs_as_array_and_npy(designs, sim, tmp_path):
    x = np.arange(3 * C).reshape(3, C) % 16
    r = verify(designs["good"], inputs=x, **sim, progress=False)
    assert r.ok and r.frames == 3
    np.testing.assert_array_equal(r.outputs_int, x + BASE)
    np.testing.assert_allclose(r.outputs, (x + BASE) * 0.5)
    p = tmp_path / "x.npy"
    np.save(p, x[0].astype(np.float32))              # one sample without the batch axis
    r1 = verify(designs["good"], inputs=str(p), progress=False, **sim)
    assert r1.frames == 1 and r1.cycles_per_frame is None and r1.latency_cycles == LATENCY
    np.testing.assert_array_equal(r1.outputs_int[0], x[0] + BASE)


@pytest.mark.parametrize("kwargs, match", [
    ({"inputs": np.zeros((2, C + 1))}, r"inputs: shape \(2, 81\) must be \(N, 80\)"),
    ({"inputs": "x.txt"}, r"must be a \.npy file"),
    ({"frames": 0}, r"frames must be a positive integer"),
    ({"sim": "modelsim"}, r"simulator must be one of verilator, icarus, not 'modelsim'"),
    ({"ready_stall_prob": 1.0}, r"ready_stall_prob must be a number in \[0, 1\)"),
])
def test_bad_arguments(designs, kwargs, match):
    with pytest.raises(VerifyError, match=match) as e:
        verify(designs["good"], progress=False, **kwargs)
    assert "\n" not in str(e.value)


def test_bad_build_directory(tmp_path):
    with pytest.raises(VerifyError, match="not found") as e:
        verify(tmp_path / "nope", progress=False)
    assert isinstance(e.value, HwgenError) and "\n" not in str(e.value)
    with pytest.raises(VerifyError, match="no manifest.json"):
        verify(tmp_path, progress=False)


def test_missing_simulator_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(simulators.shutil, "which", lambda name: None)
    monkeypatch.setattr(simulators, "verilator_root", lambda: None)
    simulators._prepare_icarus.cache_clear()
    simulators._prepare_verilator.cache_clear()
    try:
        for name in SIMS:
            with pytest.raises(VerifyError, match="make setup") as e:
                simulators.prepare(name)
            assert name in str(e.value) and "\n" not in str(e.value)
    finally:
        simulators._prepare_icarus.cache_clear()
        simulators._prepare_verilator.cache_clear()


def test_output_changing_while_stalled_is_caught(designs, sim):
    r = verify(designs["unstable"], frames=16, progress=False, **sim)
    assert r.mismatches == 0 and r.protocol_errors > 0 and not r.ok
    assert "handshake violation" in r.table()


@pytest.mark.parametrize("engine", [("icarus", "cocotb"), ("verilator", "compiled")], ids=["icarus", "compiled"])
def test_changed_verilog_is_rebuilt(designs, tmp_path, engine):
    need(engine[0])
    kw = {"sim": engine[0], "engine": engine[1]}
    out = str(tmp_path / "b")
    shutil.copytree(designs["good"], out, ignore=shutil.ignore_patterns("sim"))
    r = verify(out, frames=8, progress=False, **kw)
    assert r.ok
    shutil.copy(os.path.join(designs["bad"], "rtl", "hwgen_top.v"), os.path.join(out, "rtl", "hwgen_top.v"))
    r = verify(out, frames=8, progress=False, **kw)
    assert not r.ok and r.mismatches == 1 and r.build_seconds > 0


@pytest.mark.parametrize("variant", ["good", "bad", "unstable"])
def test_compiled_and_cocotb_testbenches_agree_cycle_for_cycle(designs, variant):
    """Same seeded gaps and stalls, same cycle stamps: the two engines' results are equal."""
    need("verilator")
    kw = dict(frames=40, sim="verilator", seed=9, progress=False)
    a, b = (verify(designs[variant], engine=e, **kw) for e in ("compiled", "cocotb"))
    assert (a.engine, b.engine) == ("compiled", "cocotb")
    for key in ("ok", "mismatches", "protocol_errors", "cycles_per_frame", "latency_cycles", "cycles"):
        assert getattr(a, key) == getattr(b, key), key
    assert a.first_mismatches == b.first_mismatches
    np.testing.assert_array_equal(a.outputs_int, b.outputs_int)
    assert a.cycles > 40 * CPF * 2


def test_compiled_and_cocotb_report_the_same_deadlock(designs):
    need("verilator")
    msgs = []
    for engine in ("compiled", "cocotb"):
        with pytest.raises(VerifyError) as e:
            verify(designs["deadlock"], frames=8, engine=engine, progress=False)
        msgs.append(str(e.value).split("; log: ")[0])
    assert msgs[0] == msgs[1]


@pytest.mark.parametrize("kwargs, msg", [
    ({"engine": "fast"}, "engine must be one of auto, compiled, cocotb, not 'fast'"),
    ({"engine": "compiled", "sim": "icarus"}, "engine compiled runs on verilator only, not icarus; accepted on icarus: cocotb"),
])
def test_bad_engine(designs, kwargs, msg):
    need(kwargs.get("sim", "verilator"))
    with pytest.raises(VerifyError) as e:
        verify(designs["good"], frames=2, progress=False, **kwargs)
    assert str(e.value) == msg


# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mvau_build(tmp_path_factory):
    """A real top from hwgen.hdl.top.to_verilog: MVAU (thresholds) -> FIFO -> MVAU (accumulators)."""
    try:
        from hwgen.hdl.top import to_verilog
    except ImportError as e:
        pytest.skip(f"hwgen.hdl.top.to_verilog not importable: {e}")
    rng = np.random.default_rng(1)
    fc1 = MVAU(name="fc1", mw=16, mh=8, in_dt=dtype("UINT4"), wdt=dtype("INT3"), out_dt=dtype("UINT4"),
               weights=rng.integers(-4, 4, size=(8, 16)), pe=2, simd=4)
    lo, hi = fc1.acc_range
    fc1.thresholds = np.sort(rng.integers(lo, hi + 1, size=(8, 15)), axis=1)
    fc2 = MVAU(name="fc2", mw=8, mh=4, in_dt=dtype("UINT4"), wdt=dtype("INT3"), out_dt=dtype("INT12"),
               weights=rng.integers(-4, 4, size=(4, 8)), pe=2, simd=2)
    fifo = FIFO(name="fifo1", shape=(8,), dt=dtype("UINT4"), lanes=2, depth=2)
    head = _head(16)
    head["quant"]["scale"] = 0.5
    graph = DataflowGraph([fc1, fifo, fc2], head=head,
                          tail={"ops": [{"op": "mul", "value": 0.25}, {"op": "add", "value": [1.0, 2.0, 3.0, 4.0]}],
                                "output_shape": [1, 4]}, name="mlp")
    out = str(tmp_path_factory.mktemp("mvau") / "build")
    return _write_build(out, graph, to_verilog(graph), graph.cycles())


def test_emitted_top_is_bit_exact(mvau_build, sim):
    r = verify(mvau_build, frames=200, **sim, seed=5, progress=False)
    assert r.ok, r.table()
    assert r.estimated_cycles_per_frame == 16
    assert r.cycles_per_frame == 16, r.table()
    graph = DataflowGraph.load(mvau_build)
    x = np.random.default_rng(5).random((1, 16))      # the IR reference and the host tail agree with the RTL
    assert graph.execute(apply_head(graph.head, x)).shape == (1, 4)
    np.testing.assert_allclose(r.outputs, apply_tail(graph.tail, r.expected_int))


def test_testbench_helpers():
    """The interval/latency arithmetic and the gap generator, without a simulator."""
    import random
    import sys
    from hwgen.verify import testbench_dir
    sys.path.insert(0, str(testbench_dir()))
    try:
        import tb_stream
    finally:
        sys.path.remove(str(testbench_dir()))
    assert tb_stream.throughput([10, 22, 34, 46, 58], 0) == (12.0, 10)
    assert tb_stream.throughput([10, 22, 40, 46], 1) == (12.0, 9)       # mean over the second half
    assert tb_stream.throughput([10], 2) == (None, 8)
    b = tb_stream.Bursts(0.3, 16, random.Random(1))
    off = [b.off() for _ in range(20000)]
    assert 0.4 < sum(off) / len(off) < 0.7
    b1, b2 = (tb_stream.Bursts(0.3, 16, random.Random(7)) for _ in range(2))
    assert [b1.off() for _ in range(500)] == [b2.off() for _ in range(500)]     # seeded: reproducible
    assert not any(tb_stream.Bursts(0.0, 16, random.Random(1)).off() for _ in range(100))


# ---------------------------------------------------------------------------
def _broken(src, dst, edit):
    """A copy of build ``src`` in ``dst`` whose Verilog ``edit`` changed (it must change it)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("sim"))
    path = os.path.join(dst, "rtl", "hwgen_top.v")
    with open(path) as f:
        text = f.read()
    new = edit(text)
    assert new != text
    with open(path, "w") as f:
        f.write(new)
    return dst


def _flip_top_bit(memory, index):
    """An edit flipping the most significant bit of word ``index`` of the first ROM ``memory``."""
    import re

    def edit(text):
        pat = re.compile(rf"(\b{memory}\[{index}\] = (\d+)'h)([0-9a-f]+);")
        m = pat.search(text)
        width, value = int(m.group(2)), int(m.group(3), 16) ^ (1 << (int(m.group(2)) - 1))
        return text[:m.start()] + f"{m.group(1)}{value:0{-(-width // 4)}x};" + text[m.end():]
    return edit


BROKEN = {
    "weight": _flip_top_bit("weights", 3),            # one weight's sign bit in fc1's ROM
    "threshold": _flip_top_bit("thresholds", 1),      # one threshold's sign bit
    # the accelerator's output stage ignores back-pressure: words are lost while m_axis_tready is low
    "handshake": lambda text: text.replace(".o__ready(m_axis_tready)", ".o__ready(1'b1)", 1),
}


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_broken_verilog_fails_alike_on_both_engines(mvau_build, tmp_path, fault):
    """A flipped weight, a flipped threshold, a broken handshake in emitted Verilog: the compiled and
    the cocotb testbench both fail, at the same first mismatch (same phase, frame, word, cycle, value)."""
    need("verilator")
    out = _broken(mvau_build, str(tmp_path / fault), BROKEN[fault])
    seen = []
    for engine in ("compiled", "cocotb"):
        try:
            r = verify(out, frames=64, seed=2, engine=engine, progress=False)
        except VerifyError as e:              # lost words end in a deadlock; the message names the first mismatch
            seen.append(str(e).split("; log: ")[0])
        else:
            assert not r.ok and r.mismatches > 0, r.table()
            seen.append((r.mismatches, r.first_mismatches[0], r.protocol_errors))
    assert seen[0] == seen[1]
    if fault == "handshake":
        assert "before that" in seen[0] and "stress phase" in seen[0]
    else:
        assert seen[0][1]["phase"] == "throughput"


def test_compiled_testbench_is_shared_across_build_folders(designs, tmp_path, monkeypatch):
    """The user cache keys compiled models by the Verilog's hash: a second folder with the same Verilog
    copies the binary; changed Verilog compiles anew; HWGEN_CACHE=off keeps nothing outside the build."""
    need("verilator")
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    logs = []
    for name, variant in (("a", "good"), ("b", "good"), ("c", "bad")):
        out = str(tmp_path / name)
        shutil.copytree(designs[variant], out, ignore=shutil.ignore_patterns("sim"))
        r = verify(out, frames=4, engine="compiled", progress=False)
        assert r.ok == (variant == "good")
        with open(os.path.join(out, "sim", "verilator-compiled", "build.log")) as f:
            logs.append(f.read())
    assert "$ " in logs[0] and logs[1].startswith("copied from the cache entry") and "$ " in logs[2]
    assert len(os.listdir(tmp_path / "cache" / "models")) == 2
    monkeypatch.setenv("HWGEN_CACHE", "off")
    out = str(tmp_path / "d")
    shutil.copytree(designs["good"], out, ignore=shutil.ignore_patterns("sim"))
    assert verify(out, frames=4, engine="compiled", progress=False).ok
    assert len(os.listdir(tmp_path / "cache" / "models")) == 2


def test_compiled_runs_split_over_processes(designs):
    """jobs=N: contiguous runs of frames, each from reset; outputs and mismatches in global frame numbers."""
    need("verilator")
    one = verify(designs["good"], frames=50, seed=4, engine="compiled", progress=False)
    three = verify(designs["good"], frames=50, seed=4, engine="compiled", progress=False, jobs=3)
    assert three.ok and three.cycles_per_frame == CPF and three.latency_cycles == LATENCY
    np.testing.assert_array_equal(three.outputs_int, one.outputs_int)
    bad = verify(designs["bad"], frames=20, engine="compiled", progress=False, jobs=2)
    assert bad.mismatches == 2                    # each run corrupts the 6th word it accepts: frame 1 word 1
    assert [(m["phase"], m["frame"], m["word"]) for m in bad.first_mismatches] == [("throughput", 1, 1),
                                                                                  ("throughput", 11, 1)]
    with pytest.raises(VerifyError, match=r"the run of frames from 0: throughput phase: no output word"):
        verify(designs["deadlock"], frames=8, engine="compiled", progress=False, jobs=2)
    with pytest.raises(VerifyError, match="jobs must be a positive integer, not 0"):
        verify(designs["good"], frames=2, engine="compiled", progress=False, jobs=0)


def test_stress_phase_on_the_first_frames(designs):
    """stress_frames=K: every frame back to back, the gaps-and-back-pressure phase on the first K."""
    need("verilator")
    r = verify(designs["good"], frames=30, engine="compiled", progress=False, stress_frames=5, jobs=2)
    assert r.ok and r.frames == 30 and r.cycles_per_frame == CPF
    full = verify(designs["good"], frames=30, engine="compiled", progress=False)
    assert r.cycles < full.cycles
    np.testing.assert_array_equal(r.outputs_int, full.outputs_int)
    bad = verify(designs["bad"], frames=30, engine="compiled", progress=False, stress_frames=4)
    assert [(m["phase"], m["frame"], m["word"]) for m in bad.first_mismatches] == [("throughput", 1, 1), ("stress", 1, 1)]
    with pytest.raises(VerifyError, match="stress_frames is an option of the compiled engine, not of cocotb"):
        verify(designs["good"], frames=2, engine="cocotb", progress=False, stress_frames=1)
