"""The stitched Top: a small graph through the AXI4-Stream ports, Verilog emission."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from amaranth.back import verilog

from hwgen.dataflow import FIFO, MVAU, DataflowGraph, Thresholding, WidthConverter
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


def test_top_reset_mid_frame():
    """A synchronous reset in the middle of a frame leaves the top ready for a clean frame."""
    from amaranth.hdl import ClockDomain, Module
    from amaranth.sim import Simulator

    graph, x = small_graph(seed=6, frames=2)
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
        for _ in range(500):
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
    assert '(* rom_style = "distributed" *)' in text
    assert '(* rom_style = "block" *)' in text
