"""Emitted Verilog in a 4-state simulator: no X/Z may reach a valid output word.

Graphs: width converters, FIFOs, MVAU/Thresholding chains, the window
kinds (SlidingWindow → MVAU, SlidingWindow(depthwise) → VVAU,
SlidingWindow(depthwise) → Pool → GlobalPool), and DAGs (a residual block
with Duplicate/AddStreams ending in a LabelSelect; a three-way fork joined by
a Concat).

Verilator (2-state) evaluates every combinational process at start-up; Icarus
with SystemVerilog semantics (``-g2012``, as the cocotb runner uses) runs an
``always @*`` process only once one of its inputs changes (a declaration
initialiser such as Yosys's ``dump_module`` trigger register is no event).
Amaranth emits a comb assignment made under ``If``/``Switch`` as such a
process; the WidthConverter's output mux was one, so its first output word
stayed X whenever the first bank was written with all-zero words (no input of
the process changed), and the X ran down the chain into frame 0's outputs.
"""

import re
import shutil
import subprocess

import numpy as np
import pytest

from hwgen.dataflow import FIFO, MVAU, DataflowGraph, Thresholding, WidthConverter
from hwgen.dtypes import DType
from hwgen.hdl import to_verilog
from hwgen.streams import pack, tdata_bits

from streamsim import random_values, straddling_thresholds


def _positive_thresholds(rng, mh, n, hi):
    """Ascending thresholds in ``[1, hi + 1]``: an all-zero input maps to output code 0."""
    return np.sort(rng.integers(1, hi + 2, size=(mh, n)), axis=1).astype(np.int64)


def dwc_graph(lanes_in, lanes_out):
    u2 = DType("UINT2")
    dwc = WidthConverter("dwc", shape=(2, 12), dt=u2, lanes_in=lanes_in, lanes_out=lanes_out)
    graph = DataflowGraph(layers=[dwc], name="dwc")
    graph.validate()
    return graph


def chain_graph(seed=0):
    """The failing build's shape: MVAU(pe=1, simd=5) → DWC 1→3 → FIFO → MVAU(simd=3)
    → FIFO → MVAU (simd=1, raw accumulator); all-zero inputs give all-zero words
    into the width converter."""
    rng = np.random.default_rng(seed)
    u2, i2, i4, i5 = DType("UINT2"), DType("INT2"), DType("INT4"), DType("INT5")
    W0 = random_values(rng, i2, (6, 5))
    fc0 = MVAU("fc0", mw=5, mh=6, in_dt=u2, wdt=i2, out_dt=u2, weights=W0, pe=1, simd=5)
    fc0.thresholds = _positive_thresholds(rng, 6, 3, fc0.acc_range[1])
    dwc = WidthConverter("dwc0", shape=(6,), dt=u2, lanes_in=1, lanes_out=3)
    fifo0 = FIFO("fifo0", shape=(6,), dt=u2, lanes=3, depth=4)
    W1 = random_values(rng, i4, (4, 6))
    fc1 = MVAU("fc1", mw=6, mh=4, in_dt=u2, wdt=i4, out_dt=u2, weights=W1, pe=1, simd=3)
    lo, hi = fc1.acc_range
    x = random_values(rng, u2, (8, 6))
    fc1.thresholds = straddling_thresholds(rng, x @ W1.T, lo, hi, 3)
    fifo1 = FIFO("fifo1", shape=(4,), dt=u2, lanes=1, depth=2)
    W2 = random_values(rng, i5, (3, 4))
    fc2 = MVAU("fc2", mw=4, mh=3, in_dt=u2, wdt=i5, out_dt=None, weights=W2, pe=1, simd=1)
    fc2.out_dt = fc2.acc_dt
    graph = DataflowGraph(layers=[fc0, dwc, fifo0, fc1, fifo1, fc2], name="chain")
    graph.validate()
    return graph


def thresholding_graph(seed=0):
    rng = np.random.default_rng(seed)
    thr = Thresholding("thr", channels=6, in_dt=DType("INT4"), out_dt=DType("UINT2"),
                       thresholds=np.sort(rng.integers(-8, 9, size=(6, 3)), axis=1).astype(np.int64),
                       spatial=(2,), pe=3)
    dwc = WidthConverter("dwc", shape=(2, 6), dt=DType("UINT2"), lanes_in=3, lanes_out=2)
    graph = DataflowGraph(layers=[thr, dwc], name="thr")
    graph.validate()
    return graph


def fifo_graph():
    u3 = DType("UINT3")
    fifos = [FIFO(f"fifo{d}", shape=(2, 4), dt=u3, lanes=2, depth=d) for d in (1, 2, 5)]
    graph = DataflowGraph(layers=fifos, name="fifos")
    graph.validate()
    return graph


def swg_mvau_graph():
    from test_hdl_swg import conv_graph
    return conv_graph(seed=3, frames=1)[0]


def swg_vvau_graph():
    from test_hdl_vvau import dwconv_graph
    return dwconv_graph(seed=3, frames=1, stride=(2, 1), pad=(1, 0, 2, 1))[0]


def swg_pool_graph():
    from test_hdl_pool import pool_graph
    return pool_graph(seed=3, frames=1)[0]


def residual_graph():
    from test_hdl_top import residual_graph
    return residual_graph(seed=3, frames=1)[0]


def concat_graph():
    from test_hdl_top import concat_graph
    return concat_graph(seed=3, frames=1)[0]


GRAPHS = {
    "dag_residual": residual_graph,
    "dag_concat": concat_graph,
    "swg_mvau": swg_mvau_graph,
    "swg_vvau": swg_vvau_graph,
    "swg_pool_gpool": swg_pool_graph,
    "dwc1to3": lambda: dwc_graph(1, 3),
    "dwc3to1": lambda: dwc_graph(3, 1),
    "dwc3to2": lambda: dwc_graph(3, 2),
    "dwc2to3": lambda: dwc_graph(2, 3),
    "dwc4to6": lambda: dwc_graph(4, 6),
    "chain": chain_graph,
    "thresholding": thresholding_graph,
    "fifos": fifo_graph,
}


def _always_comb_blocks(text):
    """Bodies of the ``always @*`` processes of emitted Verilog (up to the closing ``end``)."""
    return re.findall(r"always @\* begin\n(.*?)\n  end\n", text, re.S)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_no_comb_process_without_reset(name):
    """Every ``always @*`` block of the emitted Verilog is a register's next-state logic
    (it reads ``rst``, so the reset re-evaluates it); a comb output computed in an
    ``always @*`` that does not read ``rst`` is not evaluated at time 0 in Icarus."""
    text = to_verilog(GRAPHS[name]())
    blocks = _always_comb_blocks(text)
    assert blocks, "expected some next-state processes"
    bad = [b for b in blocks if not re.search(r"\brst\b", b)]
    assert not bad, "combinational always @* block(s) not evaluated at time 0 in 4-state simulation:\n" + \
        "\n----\n".join(bad[:3])


# -- Icarus ------------------------------------------------------------------------

TB = """\
`timescale 1ns/1ps
module tb;
  reg clk, rst, s_tvalid, m_tready;
  reg [{iw}:0] s_tdata;
  wire s_tready, m_tvalid;
  wire [{ow}:0] m_tdata;
  reg [{iw}:0] words [0:{last}];
  integer i, cycle, got;
  hwgen_top dut(.clk(clk), .rst(rst), .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid),
                .s_axis_tready(s_tready), .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid),
                .m_axis_tready(m_tready));
  always #5 clk = ~clk;
  initial begin
{init}
    clk = 0; rst = 1; s_tvalid = 0; s_tdata = 0; m_tready = 0; i = 0; cycle = 0; got = 0;
  end
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle == 4) begin
      rst <= 0;
    end else if (cycle > 4) begin
      if (s_tvalid && s_tready) i = i + 1;
      s_tvalid <= i < {n_in};
      s_tdata <= i < {n_in} ? words[i] : 0;
      m_tready <= 1;
      if (m_tvalid && m_tready) begin
        $display("OUT %b", m_tdata);
        got = got + 1;
        if (got == {n_out}) $finish;
      end
    end
    if (cycle > {max_cycles}) begin
      $display("TIMEOUT");
      $finish;
    end
  end
endmodule
"""


def run_icarus(graph, x, tmp_path):
    """Output words (binary strings, may hold x/z) of the emitted top under Icarus -g2012."""
    first, last = graph.layers[0], graph.layers[-1]
    in_words = [w for f in pack(x, first.idt, first.in_lanes) for w in f]
    expected = [w for f in pack(graph.execute(x), last.odt, last.out_lanes) for w in f]
    n_out = len(expected)
    iw, ow = tdata_bits(first.in_lanes, first.idt), tdata_bits(last.out_lanes, last.odt)
    init = "\n".join(f"    words[{k}] = {iw}'h{w:x};" for k, w in enumerate(in_words))
    tb = TB.format(iw=iw - 1, ow=ow - 1, last=len(in_words) - 1, init=init, n_in=len(in_words),
                   n_out=n_out, max_cycles=50 * (len(in_words) + n_out) + 200)
    (tmp_path / "top.v").write_text(to_verilog(graph))
    (tmp_path / "tb.v").write_text(tb)
    comp = subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.v", "top.v"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert comp.returncode == 0, comp.stderr[-2000:]
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout
    assert "TIMEOUT" not in out, out[-2000:]
    got = [line.split()[1] for line in out.splitlines() if line.startswith("OUT ")]
    return got, expected


@pytest.mark.sim
@pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("vvp") is None,
                    reason="Icarus Verilog (iverilog, vvp) not installed")
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_icarus_no_x_on_valid_words(name, tmp_path):
    """Two all-zero frames (the inputs that left the first bank unchanged) then random
    frames: every valid m_axis_tdata word is fully 0/1 and equals the reference."""
    graph = GRAPHS[name]()
    first = graph.layers[0]
    rng = np.random.default_rng(7)
    shape = tuple(first.in_shape)
    x = np.concatenate([np.zeros((2,) + shape, dtype=np.int64),
                        random_values(rng, first.idt, (3,) + shape)])
    got, expected = run_icarus(graph, x, tmp_path)
    assert len(got) == len(expected)
    bad = [(k, w) for k, w in enumerate(got) if re.search(r"[xXzZ]", w)]
    assert not bad, f"X/Z in valid output words (index, bits): {bad[:5]}"
    assert [int(w, 2) for w in got] == expected
