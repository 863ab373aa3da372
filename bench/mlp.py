"""Benchmark: MLP builds — build time, estimated resources, cycles measured vs estimated.

Builds a digits-shaped (64-64-32-10, mixed W4A4/W3A3/W4) and a TFC-shaped
(784-64-64-64-10, W2A2) MLP with random weights (cycles and resources do not
depend on the data) at several throughput targets, verifies each build in RTL
simulation and prints one table.

    python bench/mlp.py [--sim verilator|icarus] [--frames N] [--out build/bench]
"""

import argparse
import os
import sys
import tempfile
import time


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

NETS = {
    "digits 64-64-32-10 mixed": {"in": 64, "in_bits": 4, "in_signed": False, "layers": [
        {"out": 64, "w": 4, "act": "relu", "a": 4, "bn": True, "bias": "float"},
        {"out": 32, "w": 3, "act": "relu", "a": 3, "bn": True, "bias": "float"},
        {"out": 10, "w": 4, "act": None, "bias": "float"}]},
    "TFC 784-64-64-64-10 W2A2": {"in": 784, "in_bits": 2, "in_signed": False, "layers": [
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 10, "w": 2, "act": None}]},
}
TARGETS = (1e5, 1e6, 1e7)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--out", default=None, help="keep builds here (default: a temporary directory)")
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    args = ap.parse_args(argv)

    import hwgen
    from models import export, make_mlp

    root = args.out or tempfile.mkdtemp(prefix="hwgen-bench-")
    rows = []
    for net, spec in NETS.items():
        path = os.path.join(root, net.split()[0] + ".onnx")
        export(make_mlp(spec, seed=0), spec, path)
        for fps in TARGETS:
            out = os.path.join(root, f"{net.split()[0]}-{fps:.0e}")
            t = time.perf_counter()
            b = hwgen.build(path, out, fps=fps, clock_mhz=args.clock_mhz, progress=False)
            t_build = time.perf_counter() - t
            r = hwgen.verify(out, frames=args.frames, sim=args.sim, seed=0, progress=False)
            fold = " ".join(f"{l.pe}/{l.simd}" for l in b.graph.compute_layers)
            res = b.report["resources"]
            rows.append((net, f"{fps:.0e}", fold, f"{b.cycles_per_frame}", f"{r.cycles_per_frame:g}",
                         f"{100 * (r.cycles_per_frame / b.cycles_per_frame - 1):+.1f} %", f"{r.latency_cycles}",
                         f"{res['LUT']:,}", f"{res['FF']:,}", f"{res['BRAM18']}", f"{t_build:.2f}",
                         f"{r.build_seconds:.1f}", f"{r.sim_seconds:.1f}", f"{r.mismatches}"))
            print(f"  {net} @ {fps:.0e} fps: done", file=sys.stderr, flush=True)
    head = ("network", "target fps", "PE/SIMD per layer", "cycles est.", "cycles meas.", "diff", "latency",
            "LUT est.", "FF est.", "BRAM18", "build s", f"{args.sim} compile s", "sim s", "mismatches")
    print(f"\nMLP builds at {args.clock_mhz:g} MHz, {args.frames} frames each, {args.sim}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
