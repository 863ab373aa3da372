"""The examples' demo driver: train (float, then QAT), export, build, verify and print the figures.

The digits data and the seeded training loop are :mod:`hwgen.mixed.train`'s (re-exported here
for the examples and tests that import them from this module)."""

import numpy as np

from hwgen.mixed.train import accuracy, load_digits_split, seed_everything, train

__all__ = ["load_digits_split", "train", "accuracy", "seed_everything", "run_demo"]


def run_demo(name, float_model, quant_model, input_shape, doc, argv=None, epochs=40, qat_lr=5e-3, fps=1e6):
    """Train (float, then QAT from the float weights), export, build, verify over the
    whole held-out set and print the figures; returns the exit code."""
    import argparse
    import os
    import time

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default=f"build/{name}")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--fps", type=float, default=fps)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    import hwgen

    t_all = time.perf_counter()
    seed_everything(args.seed)
    xtr, ytr, xte, yte = load_digits_split(args.seed)
    xtr, xte = xtr.reshape((-1,) + input_shape), xte.reshape((-1,) + input_shape)
    print(f"digits: {len(xtr)} training and {len(xte)} held-out images (8×8, seed {args.seed})")

    def bar(tag):
        def p(ep, n, loss):
            if ep == n or ep % 10 == 0:
                print(f"  {tag}: epoch {ep}/{n} loss {loss:.3f}", flush=True)
        return p

    t = time.perf_counter()
    fmodel = train(float_model(), xtr, ytr, epochs=epochs, seed=args.seed, progress=bar("float"))
    with torch.no_grad():
        acc_float = accuracy(fmodel(torch.from_numpy(xte)).numpy(), yte)
    qmodel = train(quant_model(fmodel), xtr, ytr, epochs=epochs, lr=qat_lr, seed=args.seed, progress=bar("QAT"))
    with torch.no_grad():
        out = qmodel(torch.from_numpy(xte))
        brevitas_logits = (out.value if hasattr(out, "value") else out).numpy()
    acc_brevitas = accuracy(brevitas_logits, yte)
    t_train = time.perf_counter() - t

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    onnx_path = os.path.abspath(args.out) + ".onnx"
    t = time.perf_counter()
    hwgen.export_brevitas(qmodel, torch.from_numpy(xte[:1]), onnx_path)
    t_export = time.perf_counter() - t

    b = hwgen.build(onnx_path, args.out, fps=args.fps, clock_mhz=args.clock_mhz, name=name)
    r = hwgen.verify(args.out, inputs=xte, sim=args.sim, seed=args.seed)
    acc_hw = accuracy(r.outputs, yte)
    same_class = float((r.outputs.argmax(1) == brevitas_logits.argmax(1)).mean())
    max_dev = float(np.abs(r.outputs - brevitas_logits).max())

    rep = b.report
    print()
    print(open(os.path.join(args.out, "report.md")).read())
    print("| figure | value |\n|---|---|")
    rows = [
        ("float accuracy (held-out)", f"{acc_float:.2%}"),
        ("Brevitas accuracy", f"{acc_brevitas:.2%}"),
        (f"hardware accuracy ({r.simulator} RTL simulation, {r.frames} frames)", f"{acc_hw:.2%}"),
        ("hardware class = Brevitas class", f"{same_class:.2%}"),
        ("largest difference, hardware vs Brevitas logits", f"{max_dev:.2e}"),
        ("mismatching output words (RTL vs IR reference)", f"{r.mismatches}"),
        ("cycles per frame: measured / estimated", f"{r.cycles_per_frame:g} / {r.estimated_cycles_per_frame}"),
        ("latency (first input word → last output word)", f"{r.latency_cycles} cycles"),
        (f"throughput at {args.clock_mhz:g} MHz", f"{args.clock_mhz * 1e6 / r.cycles_per_frame:,.0f} frames/s"),
        ("estimated resources", f"{rep['resources']['LUT']:,} LUT, {rep['resources']['FF']:,} FF, {rep['resources']['BRAM18']} BRAM18, {rep['resources']['DSP']} DSP"),
        ("times: training / export / build / RTL build / RTL sim", f"{t_train:.1f} s / {t_export:.1f} s / {b.seconds:.1f} s / {r.build_seconds:.1f} s / {r.sim_seconds:.1f} s"),
        ("total", f"{time.perf_counter() - t_all:.1f} s"),
    ]
    for k, v in rows:
        print(f"| {k} | {v} |")
    ok = r.ok and r.mismatches == 0 and acc_hw == acc_brevitas and same_class == 1.0
    ok = ok and abs(r.cycles_per_frame - r.estimated_cycles_per_frame) <= 0.02 * r.estimated_cycles_per_frame
    print("\nDEMO PASSED" if ok else "\nDEMO FAILED", flush=True)
    return 0 if ok else 1
