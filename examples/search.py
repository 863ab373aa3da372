"""hwgen search on the digits MLP: mixed-precision bit allocation, proven in RTL.

Trains the 64→64→32→10 MLP in float, measures each layer's sensitivity to its weight and
activation bits, prices every bit-width choice in LUTs at 1,000,000 frames/s, sweeps the
allocation frontier, and for each frontier configuration and the uniform baselines W2A2,
W3A3, W4A4, W8A8: quantisation-aware training from the float weights, build, verification
on Verilator over the whole held-out set and yosys synthesis.  Writes OUT/search.md,
OUT/search.json, OUT/frontier.png, and per configuration a Brevitas checkpoint, a QONNX
file and a build.

    python examples/search.py [--out build/search] [--points 3] [--epochs 40] [--sim verilator|icarus] [--no-synth]
"""

import argparse
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/search")
    ap.add_argument("--points", type=int, default=3, help="frontier loss levels (default 3; + one calibrated point)")
    ap.add_argument("--epochs", type=int, default=40, help="epochs of float training and of each QAT (default 40)")
    ap.add_argument("--restarts", type=int, default=3, help="QAT runs per configuration, best on validation kept (default 3)")
    ap.add_argument("--test-fraction", type=float, default=0.5, help="share of the digits held out for testing (default 0.5)")
    ap.add_argument("--fps", type=float, default=1e6)
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--no-synth", action="store_true", help="skip yosys (plot estimated LUTs)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import hwgen
    from hwgen.mixed.models import float_mlp
    from hwgen.mixed.train import load_digits_split, seed_everything

    seed_everything(args.seed)      # the float model's initial weights
    data = load_digits_split(args.seed, test_fraction=args.test_fraction)
    res = hwgen.search(float_mlp(), data, out=args.out, fps=args.fps, n_points=args.points, epochs_float=args.epochs,
                       epochs_qat=args.epochs, qat_restarts=args.restarts, seed=args.seed, sim=args.sim,
                       synth=not args.no_synth)
    print()
    print("\n".join([res.table(), ""] + res.summary() + ["", res.timing_table()]))
    print(f"\nwritten: {', '.join(res.files.values())}")
    ok = all(r.mismatches == 0 and r.hardware_accuracy == r.brevitas_accuracy for r in res.rows)
    print("\nSEARCH PASSED" if ok else "\nSEARCH FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
