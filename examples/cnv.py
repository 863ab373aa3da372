"""FINN's CNV topology (CIFAR-10 shaped) in Brevitas, with random weights.

Input 3×32×32 at 8 bits; conv 3×3 (no padding) 64, 64, max-pool 2, 128, 128,
max-pool 2, 256, 256; FC 512, 512, 10; BatchNorm after every conv and hidden FC.
Variants: ``w1a1`` (bipolar weights and activations), ``w2a2``, and ``mixed``
(4-bit first and last layers, 2-bit middle, bipolar FCs).  There is no CIFAR
data here: weights are random and BatchNorm statistics are calibrated on
random inputs, which is all that cycles and resources depend on.

    python examples/cnv.py w1a1 [--out build/cnv_w1a1] [--frames 3] [--sim verilator]

builds with FINN's published folding (examples/foldings/cnv_<variant>.json) and
verifies in RTL simulation.
"""

import argparse
import os
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))

# per layer: (weight bits, activation bits); 1 means bipolar
VARIANTS = {
    "w1a1": {"convs": [(1, 1)] * 6, "fcs": [(1, 1), (1, 1)], "last": 1},
    "w2a2": {"convs": [(2, 2)] * 6, "fcs": [(2, 2), (2, 2)], "last": 2},
    "mixed": {"convs": [(4, 4), (2, 2), (2, 2), (2, 2), (2, 2), (2, 3)], "fcs": [(1, 1), (1, 2)], "last": 4},
}
CONV_CHANNELS = [64, 64, 128, 128, 256, 256]
POOL_AFTER = {1, 3}
FOLDINGS = {"w1a1": os.path.join(HERE, "foldings", "cnv_w1a1.json"),
            "w2a2": os.path.join(HERE, "foldings", "cnv_w2a2.json"),
            "mixed": os.path.join(HERE, "foldings", "cnv_w2a2.json")}


def _wq(bits):
    from brevitas.quant import Int8WeightPerTensorFloat, SignedBinaryWeightPerTensorConst
    if bits == 1:
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": bits}


def _act(bits):
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryActPerTensorConst
    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    return qnn.QuantHardTanh(bit_width=bits, max_val=1.0, min_val=-1.0, return_quant_tensor=True)


def make_cnv(variant="w1a1", seed=0):
    """The CNV network as a Brevitas module, BatchNorm calibrated on random inputs."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn

    cfg = VARIANTS[variant]
    torch.manual_seed(seed)
    mods = [qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)]
    cin = 3
    for i, (cout, (wb, ab)) in enumerate(zip(CONV_CHANNELS, cfg["convs"])):
        mods += [qnn.QuantConv2d(cin, cout, 3, bias=False, **_wq(wb)), nn.BatchNorm2d(cout), _act(ab)]
        if i in POOL_AFTER:
            mods.append(nn.MaxPool2d(2))
        cin = cout
    mods.append(nn.Flatten())
    fin = 256
    for wb, ab in cfg["fcs"]:
        mods += [qnn.QuantLinear(fin, 512, bias=False, **_wq(wb)), nn.BatchNorm1d(512), _act(ab)]
        fin = 512
    mods.append(qnn.QuantLinear(fin, 10, bias=False, **_wq(cfg["last"])))
    model = nn.Sequential(*mods)
    model.train()
    with torch.no_grad():                      # calibrate BatchNorm statistics
        for _ in range(4):
            model(torch.rand(32, 3, 32, 32) * 2 - 1)
    return model.eval()


def export_cnv(variant, path, seed=0):
    import torch

    import hwgen
    return hwgen.export_brevitas(make_cnv(variant, seed), torch.rand(1, 3, 32, 32) * 2 - 1, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus", "none"])
    ap.add_argument("--folding", default=None, help="folding JSON (default: FINN's published folding)")
    args = ap.parse_args(argv)

    import hwgen

    out = args.out or os.path.join("build", f"cnv_{args.variant}")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    onnx_path = os.path.abspath(out) + ".onnx"
    t = time.perf_counter()
    export_cnv(args.variant, onnx_path)
    print(f"exported CNV-{args.variant} in {time.perf_counter() - t:.1f} s", flush=True)
    hwgen.build(onnx_path, out, folding=args.folding or FOLDINGS[args.variant], name=f"cnv_{args.variant}")
    print(open(os.path.join(out, "report.md")).read())
    if args.sim == "none":
        return 0
    r = hwgen.verify(out, frames=args.frames, sim=args.sim, seed=0)
    print(r.table())
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
