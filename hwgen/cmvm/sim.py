"""A self-checking Icarus testbench for an emitted CMVM module: vectors and expected outputs in hex files.

:func:`run_icarus` writes the module, a testbench and two ``$readmemh`` files (the packed ``x``
vectors and the packed expected ``y``), simulates with ``iverilog``/``vvp`` and compares every
output bit of every vector. Vectors are applied back to back, one per clock; the output of vector
``i`` is checked ``latency`` cycles later (combinational: at once), so a pipelined module is checked
under a continuous stream.
"""

import re
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


def _write_vectors(work, xs, xw, ys, yw):
    """The packed input words ``xs`` (``xw`` bits) and expected words ``ys`` as ``x.hex``/``y.hex`` in ``work``."""
    (work / "x.hex").write_text("".join(f"{v:0{(xw + 3) // 4}x}\n" for v in xs))
    (work / "y.hex").write_text("".join(f"{v:0{(yw + 3) // 4}x}\n" for v in ys))


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
    _write_vectors(work, xs, xw, ys, yw)
    (work / f"{name}.v").write_text(verilog)
    (work / "tb.v").write_text(testbench(name, xw, yw, len(xs), lat, "x.hex", "y.hex"))
    comp = subprocess.run(["iverilog", "-o", "sim.vvp", "tb.v", f"{name}.v"], cwd=work, capture_output=True, text=True)
    if comp.returncode:
        raise HwgenError(f"cmvm: iverilog failed on {name}.v: {comp.stderr.strip().splitlines()[:1]}")
    run = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=work, capture_output=True, text=True)
    log = run.stdout + run.stderr
    return (run.returncode == 0 and f"PASS {len(xs)}" in log), log


def _scoreboard(n_vec, what, data, fire):
    """The testbench's monitor and scoreboard (every word compared in order, the cycles from each input's
    handshake to its output's) and its closing report line."""
    check = f"""    if ({fire}) begin
      if ({data} !== ys[got]) begin
        errors = errors + 1;
        if (errors <= 5) $display("MISMATCH {what} %0d: got %h want %h", got, {data}, ys[got]);
      end
      if (cyc - t_in[got] < lmin) lmin = cyc - t_in[got];
      if (cyc - t_in[got] > lmax) lmax = cyc - t_in[got];
      got = got + 1;
    end
"""
    report = f"""  if (errors == 0 && got == {n_vec}) $display("PASS %0d LAT %0d %0d CYCLES %0d", got, lmin, lmax, cyc);
  else $display("FAIL %0d errors, %0d of %0d {what}s", errors, got, {n_vec});
  $finish;
end
endmodule
"""
    return check, report


def _header(xw, yw, n_vec, seed, x_hex, y_hex, regs):
    return f"""`timescale 1ns/1ps
module tb;
{regs}
reg [{xw - 1}:0] xs [0:{n_vec - 1}];
reg [{yw - 1}:0] ys [0:{n_vec - 1}];
integer sent = 0, got = 0, errors = 0, cyc = 0, seed = {seed}, lmin = 1000000, lmax = -1;
integer t_in [0:{n_vec - 1}];
always #1 clk = ~clk;
initial begin
  $readmemh("{x_hex}", xs);
  $readmemh("{y_hex}", ys);
  repeat (3) @(posedge clk);
  #0.1 rst = 0;
"""


def stream_testbench(name, xw, yw, n_vec, x_hex, y_hex, *, seed, p_valid, p_ready):
    """A testbench of a stream layer module (:func:`hwgen.cmvm.layer.emit_layer`): a driver offering the
    vectors of ``x_hex`` with random gaps (valid with probability ``p_valid`` per cycle), a sink ready
    with probability ``p_ready``, a scoreboard comparing every output word with ``y_hex`` in order;
    prints ``PASS <n>`` and the cycles from each input's handshake to its output's (``LAT min max``)."""
    pv, pr = int(p_valid * 1000), int(p_ready * 1000)
    regs = f"""reg clk = 0, rst = 1;
reg i_valid = 0, o_ready = 0;
reg [{xw - 1}:0] i_data = 0;
wire i_ready, o_valid;
wire [{yw - 1}:0] o_data;
reg fire_in = 0, fire_out = 0;
{name} dut(.clk(clk), .rst(rst), .i_valid(i_valid), .i_ready(i_ready), .i_data(i_data),
           .o_valid(o_valid), .o_ready(o_ready), .o_data(o_data));"""
    check, report = _scoreboard(n_vec, "word", "o_data", "fire_out")
    return _header(xw, yw, n_vec, seed, x_hex, y_hex, regs) + f"""  while (got < {n_vec} && cyc < {n_vec} * 200 + 100) begin
    // the driver: the next vector offered with probability p_valid when none is pending
    if (!i_valid && sent < {n_vec} && ($unsigned($random(seed)) % 1000) < {pv}) begin
      i_valid = 1; i_data = xs[sent];
    end
    o_ready = ($unsigned($random(seed)) % 1000) < {pr};
    #0.5;                               // combinational paths settled: this cycle's handshakes
    fire_in = i_valid && i_ready;
    fire_out = o_valid && o_ready;
    if (fire_in) begin
      t_in[sent] = cyc; sent = sent + 1;
    end
{check}    @(posedge clk);
    #0.1;
    if (fire_in) i_valid = 0;
    cyc = cyc + 1;
  end
{report}"""


def parallel_testbench(top, xw, yw, n_vec, x_hex, y_hex, *, seed, p_valid):
    """A testbench of a parallel-I/O top (:mod:`hwgen.hdl.parallel`): a frame offered with probability
    ``p_valid`` per cycle (no back-pressure), every output frame compared in order; prints ``PASS <n>`` and
    the cycles from each frame's ``x_valid`` to its ``y_valid`` (``LAT min max``)."""
    pv = int(p_valid * 1000)
    regs = f"""reg clk = 0, rst = 1, x_valid = 0;
reg [{xw - 1}:0] x = 0;
wire y_valid;
wire [{yw - 1}:0] y;
{top} dut(.clk(clk), .rst(rst), .x(x), .x_valid(x_valid), .y(y), .y_valid(y_valid));"""
    check, report = _scoreboard(n_vec, "frame", "y", "y_valid")
    return _header(xw, yw, n_vec, seed, x_hex, y_hex, regs) + f"""  while (got < {n_vec} && cyc < {n_vec} * 100 + 100) begin
    x_valid = sent < {n_vec} && ($unsigned($random(seed)) % 1000) < {pv};
    if (x_valid) x = xs[sent];
    #0.5;
    if (x_valid) begin
      t_in[sent] = cyc; sent = sent + 1;
    end
{check}    @(posedge clk);
    #0.1;
    cyc = cyc + 1;
  end
{report}"""


def _simulate(work, sources, x_codes, in_bits, y_codes, out_bits, make_tb, what):
    """Write the vectors and the testbench ``make_tb(xw, yw, n)`` into ``work``, run Icarus on it and
    ``sources``; ``(passed, (lat_min, lat_max, cycles), log)``."""
    xin, yout = np.asarray(x_codes, dtype=object), np.asarray(y_codes, dtype=object)
    xw, yw = xin.shape[1] * in_bits, yout.shape[1] * out_bits
    xs = pack(xin, [(j * in_bits, in_bits, False) for j in range(xin.shape[1])])
    ys = pack(yout, [(j * out_bits, out_bits, False) for j in range(yout.shape[1])])
    _write_vectors(work, xs, xw, ys, yw)
    (work / "tb.v").write_text(make_tb(xw, yw, len(xs)))
    comp = subprocess.run(["iverilog", "-g2005", "-o", "sim.vvp", "tb.v", *map(str, sources)], cwd=work,
                          capture_output=True, text=True)
    if comp.returncode:
        raise HwgenError(f"iverilog failed on {what}: {comp.stderr.strip().splitlines()[:3]}")
    run = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=work, capture_output=True, text=True)
    log = run.stdout + run.stderr
    m = re.search(r"PASS (\d+) LAT (-?\d+) (-?\d+) CYCLES (\d+)", log)
    if not m or int(m.group(1)) != len(xs):
        return False, None, log
    return True, (int(m.group(2)), int(m.group(3)), int(m.group(4))), log


def run_layer_icarus(verilog, name, in_codes, in_bits, out_codes, out_bits, workdir, *, seed=1, p_valid=1.0, p_ready=1.0):
    """Simulate the stream layer ``name`` (``verilog``) on input words of ``in_codes`` lanes (rows of
    ``in_bits``-bit codes); ``(passed, (lat_min, lat_max, cycles), log)`` against ``out_codes``."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.v").write_text(verilog)
    return _simulate(work, [f"{name}.v"], in_codes, in_bits, out_codes, out_bits,
                     lambda xw, yw, n: stream_testbench(name, xw, yw, n, "x.hex", "y.hex", seed=seed, p_valid=p_valid,
                                                        p_ready=p_ready), f"{name}.v")


def run_parallel_icarus(verilog_files, top, x_codes, in_bits, y_codes, out_bits, workdir, *, seed=1, p_valid=1.0):
    """Simulate the parallel top ``top`` (from ``verilog_files``) on frames of lane codes; ``(passed, (lat_min,
    lat_max, cycles), log)`` against ``y_codes``."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    return _simulate(work, verilog_files, x_codes, in_bits, y_codes, out_bits,
                     lambda xw, yw, n: parallel_testbench(top, xw, yw, n, "x.hex", "y.hex", seed=seed, p_valid=p_valid),
                     top)
