"""Benchmark: TFC- and CNV-shaped networks next to FINN's published figures.

For each network: build time (model -> Verilog), estimated resources, cycles
per frame estimated and measured in RTL simulation, latency, and the FINN
figure for the same topology and folding (ARCHITECTURE peers, PEERS.md).

    python bench/finn_compare.py [--sim verilator|icarus] [--frames 3] [--only cnv_w1a1,...]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

TFC_FOLDING = {"fc0": {"pe": 16, "simd": 49}, "fc1": {"pe": 16, "simd": 16}, "fc2": {"pe": 16, "simd": 16}, "fc3": {"pe": 10, "simd": 16}}

# FINN's own figures (PEERS.md): analytic bottleneck cycles and what was published
FINN = {
    "tfc_w1a1": "TFC-w1a1: ~0.84–0.96 M FPS on Pynq-Z1 at 100 MHz (input-DMA bound)",
    "cnv_w1a1": "bottleneck 32,768 cycles; 3,020.5 FPS measured at 100 MHz (99.0 % of model); latency (pessimistic sum) 249,352",
    "cnv_w2a2": "bottleneck 115,200 cycles",
    "cnv_mixed": "— (no FINN counterpart)",
}


def _tfc(path, variant):
    from models import export, make_mlp
    bits = 1 if variant == "w1a1" else 2
    spec = {"in": 784, "in_bits": bits, "in_signed": bits == 1,
            "layers": [{"out": 64, "w": bits, "act": "bipolar" if bits == 1 else "hardtanh", "a": bits, "bn": True}] * 3
            + [{"out": 10, "w": bits, "act": None}]}
    export(make_mlp(spec, seed=0), spec, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus", "none"])
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--only", default=None, help="comma-separated subset of: tfc_w1a1, cnv_w1a1, cnv_w2a2, cnv_mixed")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import cnv

    import hwgen

    root = args.out or tempfile.mkdtemp(prefix="hwgen-finn-")
    nets = ["tfc_w1a1", "cnv_w1a1", "cnv_w2a2", "cnv_mixed"]
    if args.only:
        nets = [n for n in nets if n in args.only.split(",")]
    rows = []
    for net in nets:
        path = os.path.join(root, net + ".onnx")
        out = os.path.join(root, net)
        if net.startswith("tfc"):
            _tfc(path, net.split("_")[1])
            folding = TFC_FOLDING
        else:
            v = net.split("_")[1]
            cnv.export_cnv(v, path)
            folding = cnv.FOLDINGS[v]
        t = time.perf_counter()
        b = hwgen.build(path, out, folding=folding, progress=True, name=net)
        t_build = time.perf_counter() - t
        res = b.report["resources"]
        meas, lat, comp, simt, mism = "—", "—", "—", "—", "—"
        if args.sim != "none":
            r = hwgen.verify(out, frames=args.frames, sim=args.sim, seed=0)
            meas = f"{r.cycles_per_frame:,.0f} ({100 * (r.cycles_per_frame / b.cycles_per_frame - 1):+.2f} %)"
            lat, comp, simt, mism = f"{r.latency_cycles:,}", f"{r.build_seconds:.0f}", f"{r.sim_seconds:.0f}", str(r.mismatches)
        rows.append((net, f"{t_build:.1f}", f"{b.cycles_per_frame:,}", meas, lat, f"{res['LUT']:,}", f"{res['FF']:,}",
                     str(res["BRAM18"]), comp, simt, mism, FINN[net]))
    head = ("network", "build s", "cycles est.", "cycles meas.", "latency", "LUT est.", "FF est.", "BRAM18 est.",
            f"{args.sim} compile s", "sim s", "mismatches", "FINN")
    print(f"\nFINN-folded networks at 100 MHz, {args.frames} frames, {args.sim}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
