"""The parallel-I/O wrapper of a low-latency design: a whole frame in, a whole frame out, valid only.

For designs whose layers are all fully unrolled constant-weight layers
(:class:`~hwgen.dataflow.cmvau.ConstMVAU`, one vector per word, one word per cycle, no FIFOs between
them), AXI4-Stream serialisation is not needed and its handshake only costs: ``hwgen build --io
parallel`` writes, beside the AXI4-Stream top (which ``hwgen verify`` checks under back-pressure),
this module::

    module <top>_parallel(clk, rst, x, x_valid, y, y_valid);
      input  [XW-1:0] x;      // the whole input frame: lane j at [j·b +: b] (ARCHITECTURE §3)
      output [YW-1:0] y;      // the whole output frame
      // y_valid rises latency() cycles after x_valid (0: the same cycle), one frame per cycle

It instantiates the top with ``m_axis_tready`` tied high: nothing ever stalls, so after flattening
every stall enable is the constant 1 and synthesis removes the handshake logic.
"""

from ..dataflow.graph import INPUT
from ..errors import HwgenError
from ..streams import tdata_bits

__all__ = ["parallel_top", "parallel_info", "check_parallel", "parallel_latency"]


def check_parallel(graph):
    """A one-line :class:`HwgenError` unless ``graph`` is a chain of constant-weight layers of one vector per frame."""
    prev = INPUT
    for l in graph.layers:
        if l.kind != "ConstMVAU":
            raise HwgenError(f"--io parallel needs every layer fully connected with constant weights (ConstMVAU, "
                             f"one vector per frame); layer {l.name} is a {l.kind}")
        if l.pixels != 1:
            raise HwgenError(f"--io parallel needs one vector per frame; layer {l.name} has {l.pixels} pixels "
                             f"(a convolution streams its pixels)")
        if list(graph.input_refs(l)) != [prev]:
            raise HwgenError(f"--io parallel needs a chain of layers; layer {l.name} reads {list(graph.input_refs(l))}")
        prev = l.name


def parallel_latency(graph):
    """Cycles from ``x_valid`` to ``y_valid``: the sum of the layers' latencies (no FIFOs in between)."""
    return sum(l.latency() for l in graph.layers)


def parallel_info(graph, top="hwgen_top"):
    """The manifest's ``parallel`` entry: ``{"top", "latency_cycles", "x_bits", "y_bits"}``."""
    first, last = graph.layers[0], graph.layers[-1]
    return {"top": f"{top}_parallel", "latency_cycles": parallel_latency(graph),
            "x_bits": first.in_lanes * first.idt.bits, "y_bits": last.out_lanes * last.odt.bits}


def parallel_top(graph, top="hwgen_top"):
    """The Verilog text of ``<top>_parallel`` around ``top`` (the module docstring)."""
    check_parallel(graph)
    first, last = graph.layers[0], graph.layers[-1]
    info = parallel_info(graph, top)
    xw, yw, lat = info["x_bits"], info["y_bits"], info["latency_cycles"]
    xt, yt = tdata_bits(first.in_lanes, first.idt), tdata_bits(last.out_lanes, last.odt)
    pad = f"{{{xt - xw}'d0, x}}" if xt > xw else "x"
    return (f"\n// {top}_parallel: the whole frame in and out, valid only; y_valid {lat} cycle(s) after x_valid\n"
            f"module {top}_parallel(clk, rst, x, x_valid, y, y_valid);\n"
            f"  input clk;\n  input rst;\n  input [{xw - 1}:0] x;\n  input x_valid;\n"
            f"  output [{yw - 1}:0] y;\n  output y_valid;\n"
            f"  wire [{yt - 1}:0] y_data;\n  wire x_ready;\n"
            f"  {top} core(.clk(clk), .rst(rst), .s_axis_tdata({pad}), .s_axis_tvalid(x_valid), .s_axis_tready(x_ready),\n"
            f"    .m_axis_tdata(y_data), .m_axis_tvalid(y_valid), .m_axis_tready(1'b1));\n"
            f"  assign y = y_data[{yw - 1}:0];\n"
            f"endmodule\n")
