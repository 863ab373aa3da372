"""A self-checking Icarus testbench for an emitted CMVM module: vectors and expected outputs in hex files.

:func:`run_icarus` writes the module, a testbench and two ``$readmemh`` files (the packed ``x``
vectors and the packed expected ``y``), simulates with ``iverilog``/``vvp`` and compares every
output bit of every vector. Vectors are applied back to back, one per clock; the output of vector
``i`` is checked ``latency`` cycles later (combinational: at once), so a pipelined module is checked
under a continuous stream.
"""

import subprocess
from pathlib import Path

import numpy as np

from ..errors import HwgenError
from .verilog import input_layout, output_layout


def pack(values, layout):
    """Each row of ``values`` packed into one integer along ``layout`` (``[(offset, width, signed)]``), two's complement."""
    words = []
    for row in np.asarray(values, dtype=object).reshape(len(values), -1):
        w = 0
        for v, (off, bits, _) in zip(row, layout):
            w |= (int(v) % (1 << bits)) << off
        words.append(w)
    return words


def testbench(name, xw, yw, n_vec, lat, x_hex, y_hex):
    """The testbench text: prints ``PASS <n>`` when every output of every vector matched, else ``FAIL``."""
    clk = ".clk(clk), " if lat else ""
    return f"""`timescale 1ns/1ps
module tb;
reg clk = 0;
reg [{xw - 1}:0] x = 0;
wire [{yw - 1}:0] y;
reg [{xw - 1}:0] xs [0:{n_vec - 1}];
reg [{yw - 1}:0] ys [0:{n_vec - 1}];
integer c, errors;
{name} dut({clk}.x(x), .y(y));
initial begin
  $readmemh("{x_hex}", xs);
  $readmemh("{y_hex}", ys);
  errors = 0;
  for (c = 0; c < {n_vec + lat}; c = c + 1) begin
    x = xs[c % {n_vec}];
    #1;
    if (c >= {lat} && y !== ys[c - {lat}]) begin
      errors = errors + 1;
      if (errors <= 5) $display("MISMATCH vector %0d: got %h want %h", c - {lat}, y, ys[c - {lat}]);
    end
    clk = 1; #1; clk = 0; #1;
  end
  if (errors == 0) $display("PASS %0d", {n_vec});
  else $display("FAIL %0d of %0d vectors", errors, {n_vec});
  $finish;
end
endmodule
"""


def run_icarus(graph, verilog, name, x, y_expected, workdir, *, lat=0, out_bits=None):
    """Simulate ``verilog`` (module ``name`` of ``graph``) on ``x``; ``(passed, log)`` against ``y_expected``."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    ins, outs = input_layout(graph), output_layout(graph, out_bits)
    xw, yw = sum(b for _, b, _ in ins), sum(w for _, w, _ in outs)
    xs, ys = pack(x, ins), pack(y_expected, outs)
    (work / "x.hex").write_text("".join(f"{v:0{(xw + 3) // 4}x}\n" for v in xs))
    (work / "y.hex").write_text("".join(f"{v:0{(yw + 3) // 4}x}\n" for v in ys))
    (work / f"{name}.v").write_text(verilog)
    (work / "tb.v").write_text(testbench(name, xw, yw, len(xs), lat, "x.hex", "y.hex"))
    comp = subprocess.run(["iverilog", "-o", "sim.vvp", "tb.v", f"{name}.v"], cwd=work, capture_output=True, text=True)
    if comp.returncode:
        raise HwgenError(f"cmvm: iverilog failed on {name}.v: {comp.stderr.strip().splitlines()[:1]}")
    run = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=work, capture_output=True, text=True)
    log = run.stdout + run.stderr
    return (run.returncode == 0 and f"PASS {len(xs)}" in log), log
