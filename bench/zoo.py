"""The Brevitas/FINN reference zoo, as its authors ship it, through hwgen: export, build, verify.

Every network is instantiated from ``brevitas_examples`` as installed, **unmodified**:
no pretrained weights can be downloaded here, so each keeps its own initialisation,
with its batch-norm affine parameters randomised (so that every threshold is
non-trivial) and a calibration pass in training mode (batch-norm statistics and the
activation quantisers' statistics).  Each is exported with ``hwgen.export_brevitas``,
checked in the IR against the Brevitas module run in float64, built with no target
(the default: the fastest folding that fits the default device) and, where asked,
verified in RTL simulation against the same float64 module.

    python bench/zoo.py                      # every network, one row each (build only for the big ones)
    python bench/zoo.py tfc_1w1a cnv_1w1a    # some of them
    python bench/zoo.py --verify small       # also RTL-verify the small ones (or: all, none)

Each network runs in its own process so that its peak memory is its own.  The tests
(``tests/test_zoo.py``, marker ``zoo``) use the same functions.
"""

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

IMAGENET_MEAN = (0.485, 0.456, 0.406)
FOLDINGS = os.path.join(os.path.dirname(HERE), "examples", "foldings")
# FINN's published foldings (finn-examples' bnn-pynq configurations), with the cycles per frame FINN reports
FINN_FOLDINGS = {"tfc_1w1a": os.path.join(FOLDINGS, "tfc_w1a1.json"), "cnv_1w1a": os.path.join(FOLDINGS, "cnv_w1a1.json")}
IMAGENET_STD = (0.226, 0.226, 0.226)


def _shipped(package, name):
    """The factory of ``brevitas_examples.<package>.models.<name>``, without pretrained weights."""
    def make():
        import importlib
        return getattr(importlib.import_module(f"brevitas_examples.{package}.models"), name)(pretrained=False)
    return make


def _bnn(name):
    return _shipped("bnn_pynq", name)


def _imagenet(name):
    return _shipped("imagenet_classification", name)


# name: (factory, input shape, input kind, FINN's published cycles per frame or None, small enough to verify often)
NETWORKS = {
    "tfc_1w1a": (_bnn("tfc_1w1a"), (1, 1, 28, 28), "unit", 64, True),
    "tfc_1w2a": (_bnn("tfc_1w2a"), (1, 1, 28, 28), "unit", None, True),
    "tfc_2w2a": (_bnn("tfc_2w2a"), (1, 1, 28, 28), "unit", None, True),
    "sfc_1w1a": (_bnn("sfc_1w1a"), (1, 1, 28, 28), "unit", None, True),
    "sfc_1w2a": (_bnn("sfc_1w2a"), (1, 1, 28, 28), "unit", None, True),
    "sfc_2w2a": (_bnn("sfc_2w2a"), (1, 1, 28, 28), "unit", None, True),
    "lfc_1w1a": (_bnn("lfc_1w1a"), (1, 1, 28, 28), "unit", None, False),
    "lfc_1w2a": (_bnn("lfc_1w2a"), (1, 1, 28, 28), "unit", None, False),
    "cnv_1w1a": (_bnn("cnv_1w1a"), (1, 3, 32, 32), "unit", 32768, False),
    "cnv_1w2a": (_bnn("cnv_1w2a"), (1, 3, 32, 32), "unit", None, False),
    "cnv_2w2a": (_bnn("cnv_2w2a"), (1, 3, 32, 32), "unit", None, False),
    "resnet18_4w4a": (_bnn("resnet18_4w4a"), (1, 3, 32, 32), "unit", None, False),
    "mobilenet_v1_4b": (_imagenet("quant_mobilenet_v1_4b"), (1, 3, 224, 224), "imagenet", None, False),
    "mobilenet_v1_4b_round_avgpool": (_imagenet("quant_mobilenet_v1_4b_round_avgpool"), (1, 3, 224, 224), "imagenet", None, False),
    "proxylessnas_mobile14_4b": (_imagenet("quant_proxylessnas_mobile14_4b"), (1, 3, 224, 224), "imagenet", None, False),
}


def inputs(name, n, seed=0):
    """``n`` float inputs of the kind the network's authors feed it (float64 numpy)."""
    _, shape, kind, _, _ = NETWORKS[name]
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + tuple(shape[1:]))
    if kind == "imagenet":          # a normalised image: (x - mean) / std per channel
        x = (x - np.array(IMAGENET_MEAN).reshape(1, 3, 1, 1)) / np.array(IMAGENET_STD).reshape(1, 3, 1, 1)
    return x


def make(name, seed=0):
    """The network as shipped, batch-norm affine parameters randomised and statistics calibrated (eval mode)."""
    import torch
    factory = NETWORKS[name][0]
    torch.manual_seed(seed)
    model = factory()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) * 1.5 + 0.25
            m.bias.data = torch.randn(n, generator=g) * 0.3
    model.train()
    with torch.no_grad():
        for k in range(4):
            model(torch.from_numpy(inputs(name, 8, seed=1000 + k)).float())
    return model.eval()


def reference(model, x):
    """The Brevitas module run in float64 on ``x``."""
    import torch
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        y = m(torch.from_numpy(np.asarray(x, dtype=np.float64)))
    return np.asarray(getattr(y, "value", y).detach().numpy(), dtype=np.float64)


def mismatches(got, want):
    """Output elements that differ by more than the float32 rounding of the tail's constants.

    The tail (after the last integer layer) applies the file's float32 constants (a TensorNorm's
    mean and deviation, a bias), where the float64 module computes them from the same parameters in
    float64: a relative 1e-7.  One integer off anywhere moves an output by at least one quantisation
    step of the last layer, orders of magnitude more than the 1e-5 allowed here."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64).reshape(np.shape(got))
    return int(np.sum(np.abs(got - want) > 1e-5 * np.maximum(1.0, np.abs(want))))


def export(name, model, path):
    import torch
    import hwgen
    return hwgen.export_brevitas(model, torch.from_numpy(inputs(name, 1)).float(), path, progress=False)


def ir_check(path, model, x, want=None):
    """(IR mismatches against float64 Brevitas — ``want``, the module's outputs on ``x``, when
    already computed — the fewest levels any quantised layer output took, the lowered graph)."""
    from hwgen.frontend import load
    from hwgen.host import apply_head, apply_tail
    from hwgen.lower import lower
    g = lower(load(path))
    vals = g.execute_all(apply_head(g.head, x))
    y = apply_tail(g.tail, vals[(g.layers[-1].name, 0)])
    levels = [len(np.unique(vals[(l.name, 0)])) for l in g.layers
              if getattr(l, "thresholds", None) is not None and (l.name, 0) in vals]
    return mismatches(y, reference(model, x) if want is None else want), (min(levels) if levels else None), g


def run_one(name, out_dir, verify=False, frames=None, sim="verilator", seed=0):
    """One row of the table (a dict); a failure is a row with ``error``."""
    import hwgen
    from hwgen.errors import HwgenError
    row = {"network": name}
    t = time.monotonic()
    try:
        model = make(name, seed)
        row["params"] = int(sum(p.numel() for n, p in model.named_parameters() if "weight" in n and p.dim() > 1))
        path = os.path.join(out_dir, f"{name}.onnx")
        export(name, model, path)
        row["export_s"] = round(time.monotonic() - t, 1)
        n = frames or (8 if NETWORKS[name][4] else 2)
        x = inputs(name, n, seed=seed + 1)
        want = reference(model, x)
        bad, levels, _ = ir_check(path, model, x, want)
        row["ir_mismatches"], row["min_levels"] = bad, levels
        t = time.monotonic()
        b = hwgen.build(path, os.path.join(out_dir, name), progress=False)
        row["build_s"] = round(time.monotonic() - t, 1)
        rep = b.report
        row["cycles_est"] = b.manifest.get("cycles_per_frame")
        row["fps_200MHz"] = round(200e6 / row["cycles_est"]) if row["cycles_est"] else None
        row["resources"] = {k: rep["resources"].get(k) for k in ("LUT", "FF", "BRAM18", "URAM", "DSP") if k in rep["resources"]}
        row["device"] = (rep.get("default_device") or {}).get("device")
        row["finn_cycles"] = NETWORKS[name][3]
        del b
        if name in FINN_FOLDINGS:          # the same network at FINN's own folding: cycles side by side
            f = hwgen.build(path, os.path.join(out_dir, f"{name}_finn"), folding=FINN_FOLDINGS[name], progress=False)
            row["cycles_at_finn_folding"] = f.manifest["cycles_per_frame"]
        if verify:
            r = hwgen.verify(os.path.join(out_dir, name), inputs=x, sim=sim, progress=False)
            row["rtl_mismatches"] = int(r.mismatches) + mismatches(r.outputs, want)
            row["cycles_meas"] = r.cycles_per_frame
            row["latency"] = r.latency_cycles
            row["verify_s"] = round(r.build_seconds + r.sim_seconds, 1)
        row["result"] = "ok" if row["ir_mismatches"] == 0 and not row.get("rtl_mismatches") else "MISMATCH"
    except HwgenError as e:
        row["result"], row["error"] = "refused", str(e)
    except Exception as e:  # noqa: BLE001 - a bench row records any failure and goes on
        row["result"], row["error"] = "traceback", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    row["peak_MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def _fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(rows):
    cols = ["network", "params", "result", "ir_mismatches", "rtl_mismatches", "min_levels", "export_s", "build_s",
            "verify_s", "peak_MB", "cycles_est", "cycles_meas", "latency", "LUT", "FF", "BRAM18", "URAM", "DSP",
            "fps_200MHz", "cycles_at_finn_folding", "finn_cycles"]
    flat = [dict(r, **(r.get("resources") or {})) for r in rows]
    w = {c: max(len(c), *(len(_fmt(r.get(c))) for r in flat)) for c in cols}
    lines = [" | ".join(c.ljust(w[c]) for c in cols), "-|-".join("-" * w[c] for c in cols)]
    lines += [" | ".join(_fmt(r.get(c)).ljust(w[c]) for c in cols) for r in flat]
    for r in rows:
        if r.get("error"):
            lines.append(f"{r['network']}: {r['error']}")
        if r.get("device"):
            lines.append(f"{r['network']}: default folding for {r['device']}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("networks", nargs="*", help=f"default: all ({', '.join(NETWORKS)})")
    ap.add_argument("--verify", choices=("none", "small", "all"), default="small")
    ap.add_argument("--sim", default="verilator")
    ap.add_argument("--out", default=None, help="build folder (default: a temporary one)")
    ap.add_argument("--one", help=argparse.SUPPRESS)          # child process: one network, JSON row on stdout
    a = ap.parse_args(argv)
    if a.one:
        verify = a.verify == "all" or (a.verify == "small" and NETWORKS[a.one][4])
        print("ROW " + json.dumps(run_one(a.one, a.out, verify=verify, sim=a.sim)))
        return 0
    names = a.networks or list(NETWORKS)
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        ap.error(f"unknown network {unknown[0]!r}; accepted: {', '.join(NETWORKS)}")
    out = a.out or tempfile.mkdtemp(prefix="hwgen-zoo-")
    os.makedirs(out, exist_ok=True)
    rows = []
    for n in names:
        print(f"[zoo] {n} …", file=sys.stderr, flush=True)
        p = subprocess.run([sys.executable, __file__, "--one", n, "--out", out, "--verify", a.verify, "--sim", a.sim],
                           capture_output=True, text=True)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("ROW ")), None)
        rows.append(json.loads(line[4:]) if line else {"network": n, "result": "crashed",
                                                       "error": (p.stderr.strip().splitlines() or ["?"])[-1]})
        print(f"[zoo] {n}: {rows[-1]['result']}", file=sys.stderr, flush=True)
    print(table(rows))
    print(f"\n(builds in {out}; command: python bench/zoo.py {' '.join(sys.argv[1:])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
