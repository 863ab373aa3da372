"""The hwgen demo: a mixed-precision MLP on scikit-learn digits, end to end.

Trains (seeded, seconds) a 64→64→32→10 MLP in float and then with Brevitas
quantisation-aware training at different bit widths per layer, exports QONNX,
builds the accelerator, verifies it on Verilator over the whole held-out set
and prints float / Brevitas / hardware accuracy, mismatches, cycles per frame
measured vs estimated, throughput and the per-layer resource estimates.

    python examples/digits_mlp.py [--out build/digits_mlp] [--sim verilator|icarus]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits import accuracy, load_digits_split, seed_everything, train  # noqa: E402

# (weight bits, activation bits) per layer: mixed on purpose
CONFIG = {"in_bits": 4, "layers": [(64, 4, 4), (32, 3, 3), (10, 4, None)]}


def float_mlp():
    import torch.nn as nn
    return nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Linear(32, 10))


def quant_mlp(config=CONFIG, float_model=None):
    """Brevitas MLP with per-layer weight/activation bits; copies float weights when given."""
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import Uint8ActPerTensorFloat

    mods = [qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=config["in_bits"], return_quant_tensor=True)]
    fan_in = 64
    for out_f, wb, ab in config["layers"]:
        mods.append(qnn.QuantLinear(fan_in, out_f, bias=True, weight_bit_width=wb))
        if ab is not None:
            mods += [nn.BatchNorm1d(out_f), qnn.QuantReLU(bit_width=ab, return_quant_tensor=True)]
        fan_in = out_f
    model = nn.Sequential(*mods)
    if float_model is not None:
        fl = [m for m in float_model if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
        ql = [m for m in model if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
        for f, q in zip(fl, ql):
            q.load_state_dict(f.state_dict(), strict=False)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/digits_mlp")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--fps", type=float, default=1e6)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    import hwgen

    t_all = time.perf_counter()
    seed_everything(args.seed)
    xtr, ytr, xte, yte = load_digits_split(args.seed)
    print(f"digits: {len(xtr)} training and {len(xte)} held-out images (8×8, seed {args.seed})")

    def bar(tag):
        def p(ep, n, loss):
            if ep == n or ep % 10 == 0:
                print(f"  {tag}: epoch {ep}/{n} loss {loss:.3f}", flush=True)
        return p

    t = time.perf_counter()
    fmodel = train(float_mlp(), xtr, ytr, epochs=40, seed=args.seed, progress=bar("float"))
    with torch.no_grad():
        acc_float = accuracy(fmodel(torch.from_numpy(xte)).numpy(), yte)
    qmodel = train(quant_mlp(CONFIG, fmodel), xtr, ytr, epochs=40, lr=5e-3, seed=args.seed, progress=bar("QAT"))
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

    b = hwgen.build(onnx_path, args.out, fps=args.fps, clock_mhz=args.clock_mhz, name="digits_mlp")
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


if __name__ == "__main__":
    sys.exit(main())
