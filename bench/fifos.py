"""Benchmark: FIFO sizing from the word-level schedule — depths, memory, sizing time, and the proof in RTL.

For each network: the FIFOs the build inserted (count, words, bits, estimated LUT/BRAM18),
the time the sizing took (one pass of :mod:`hwgen.dataflow.schedule` over a few frames),
the largest FIFO, and — with ``--verify`` — the RTL simulation with random input gaps and
output back-pressure (no deadlock, every word exact) and the back-to-back interval measured
against the estimate (no throughput lost to a FIFO too shallow).

    python bench/fifos.py [--nets digits_mlp digits_cnn tfc res_cnn cnv_w1a1] [--verify] [--frames N] [--out DIR]

FINN sizes FIFOs by RTL simulation of the whole design ("can take days", PEERS.md); FINN's
analytic alternative derives per-layer characteristic functions in HLS/RTL simulation too.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

MLPS = {
    "digits_mlp": ({"in": 64, "in_bits": 4, "in_signed": False, "layers": [
        {"out": 64, "w": 4, "act": "relu", "a": 4, "bn": True, "bias": "float"},
        {"out": 32, "w": 3, "act": "relu", "a": 3, "bn": True, "bias": "float"},
        {"out": 10, "w": 4, "act": None, "bias": "float"}]}, 1e6),
    "tfc": ({"in": 784, "in_bits": 2, "in_signed": False, "layers": [
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 10, "w": 2, "act": None}]}, 1e5),
}
NETS = ("digits_mlp", "digits_cnn", "tfc", "res_cnn", "cnv_w1a1")


def export(net, path):
    """Export network ``net`` (random weights) to ``path``; returns the build keyword arguments."""
    if net in MLPS:
        from models import export as export_mlp, make_mlp
        spec, fps = MLPS[net]
        export_mlp(make_mlp(spec, seed=0), spec, path)
        return {"fps": fps}
    if net == "digits_cnn":
        import torch
        import hwgen
        from digits_cnn import quant_cnn
        hwgen.export_brevitas(quant_cnn().eval(), torch.rand(1, 1, 8, 8), path)
        return {"fps": 1.5e5}
    if net == "res_cnn":
        from models import export_branchy
        export_branchy("res_cnn", path, seed=0)
        return {"fps": 5e4}
    if net.startswith("cnv_"):
        import cnv
        variant = net.split("_", 1)[1]
        cnv.export_cnv(variant, path)
        return {"folding": cnv.FOLDINGS[variant]}
    raise SystemExit(f"unknown network {net!r}; choose from {', '.join(NETS)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--verify", action="store_true", help="simulate each build (Verilator) with back-pressure")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--out", default=None, help="keep builds here (default: a temporary directory)")
    args = ap.parse_args(argv)

    import hwgen
    from hwgen.dataflow import DataflowGraph

    root = args.out or tempfile.mkdtemp(prefix="hwgen-bench-fifos-")
    rows = []
    for net in args.nets:
        path = os.path.join(root, f"{net}.onnx")
        kw = export(net, path)
        t = time.perf_counter()
        b = hwgen.build(path, os.path.join(root, net), progress=False, **kw)
        t_build = time.perf_counter() - t
        fi = b.report["fifos"]
        graph = DataflowGraph.load(b.out_dir)
        fifos = [l for l in graph.layers if l.kind == "FIFO"]
        big = max(fifos, key=lambda l: l.depth * l.lanes * l.dt.bits)
        row = [net, f"{b.cycles_per_frame:,}", str(fi["count"]), f"{fi['words']:,}", f"{fi['bits']:,}",
               f"{fi['LUT']:,}", str(fi["BRAM18"]), f"{big.name}: {big.depth}×{big.lanes * big.dt.bits} b",
               f"{b.graph.fifo_sizing['seconds']:.3f}", f"{t_build:.1f}"]
        if args.verify:
            r = hwgen.verify(b.out_dir, frames=args.frames, seed=0, progress=False)
            diff = 100 * (r.cycles_per_frame / b.cycles_per_frame - 1) if r.cycles_per_frame else float("nan")
            row += [f"{r.cycles_per_frame:g}", f"{diff:+.2f} %", f"{r.latency_cycles:,}", str(r.mismatches),
                    "ok" if r.ok else "FAIL"]
        rows.append(row)
        print(f"  {net}: done", file=sys.stderr, flush=True)
    head = ["network", "cycles/frame est.", "FIFOs", "words", "bits", "LUT est.", "BRAM18 est.", "largest",
            "sizing s", "build s"]
    if args.verify:
        head += ["cycles/frame meas.", "diff", "latency", "mismatches", "back-pressure run"]
    print("\nFIFO sizing from the word-level schedule\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
