"""Refactoring guard: build every example and bench network and fingerprint what a build promises.

Exports each network once to ``ONNX_DIR`` (kept: torch exports are not bit-reproducible across
processes for the unseeded Brevitas inits, so before/after must build the *same* files), builds
it with the keyword arguments the example or bench script uses, and writes one JSON line per
build: the sha256 of every file under ``rtl/`` and of ``manifest.json`` (and the manifest's keys,
so an added key is told apart from a changed value).  Compare two runs with ``--compare``.

    python bench/identical.py --onnx-dir /tmp/golden/onnx --out /tmp/golden/before.json
    (change the code)
    python bench/identical.py --onnx-dir /tmp/golden/onnx --out /tmp/golden/after.json --compare /tmp/golden/before.json
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
for d in ("tests", "examples", "bench"):
    sys.path.insert(0, os.path.join(ROOT, d))


def _mlp(spec):
    def export(path):
        from models import export as export_mlp, make_mlp
        export_mlp(make_mlp(spec, seed=0), spec, path)
    return export


def _cnn(spec):
    def export(path):
        from models import export_cnn, make_cnn
        export_cnn(make_cnn(spec, seed=0), spec, path)
    return export


def _branchy(kind):
    def export(path):
        from models import export_branchy
        export_branchy(kind, path, seed=0)
    return export


def _cnv(variant):
    def export(path):
        import cnv
        cnv.export_cnv(variant, path)
    return export


def _brevitas(make, shape):
    def export(path):
        import torch
        import hwgen
        torch.manual_seed(0)
        hwgen.export_brevitas(make().eval(), torch.rand(*shape), path)
    return export


def _big(n):
    def export(path):
        from biglayer import make_model
        make_model(n, path)
    return export


def networks():
    """{onnx name: exporter}, and the builds [(build name, onnx name, build kwargs)]."""
    import cnv
    import digits_cnn
    import digits_mlp
    import finn_compare
    import fifos
    import folding as bench_folding
    import mlp as bench_mlp
    import synth
    from models import CNN_SPECS, SPECS

    nets, builds = {}, []
    for key, entry in synth.NETS.items():
        if len(entry) == 3:
            nets[key] = _mlp(entry[2])
        elif entry[2] == "cnn":
            nets[key] = _cnn(entry[3])
        elif entry[2] == "branchy":
            nets[key] = _branchy(entry[3])
        elif entry[2] == "cnv":
            nets[key] = _cnv(entry[3])
        builds.append((f"synth-{key}", key, {"fps": entry[1]} if entry[1] else {"folding": cnv.FOLDINGS[entry[3]]}))
    nets["concat_cnn"] = _branchy("concat_cnn")
    builds.append(("concat_cnn", "concat_cnn", {"fps": 1e5}))
    nets["cnv_w2a2"] = _cnv("w2a2")
    builds.append(("cnv_w2a2", "cnv_w2a2", {"folding": cnv.FOLDINGS["w2a2"]}))
    for fps in (100, 1e3, 1.2e4):
        builds.append((f"cnv_w1a1-{fps:g}", "cnv", {"fps": fps}))
    nets["digits_mlp_example"] = _brevitas(digits_mlp.quant_mlp, (1, 64))
    nets["digits_cnn_example"] = _brevitas(digits_cnn.quant_cnn, (1, 1, 8, 8))
    for fps in (1e4, 1e6, 5e6):
        builds.append((f"digits_mlp_example-{fps:g}", "digits_mlp_example", {"fps": fps}))
    for fps in (1e3, 1.5e5):
        builds.append((f"digits_cnn_example-{fps:g}", "digits_cnn_example", {"fps": fps}))
    builds.append(("digits_mlp_example-top3", "digits_mlp_example", {"fps": 1e6, "topk": 3}))
    for key, (spec, fps) in fifos.MLPS.items():
        nets[f"fifos-{key}"] = _mlp(spec)
        builds.append((f"fifos-{key}", f"fifos-{key}", {"fps": fps}))
    for key, (_, targets) in bench_folding.NETS.items():
        src = {"digits": "digits", "tfc": "tfc", "digits_cnn": "digits_cnn_example", "cnv_w1a1": "cnv"}[key]
        for fps in targets:
            builds.append((f"folding-{key}-{fps:g}", src, {"fps": fps}))
    for key, spec in bench_mlp.NETS.items():
        nets[f"mlp-{key.split()[0]}"] = _mlp(spec)
        for fps in bench_mlp.TARGETS:
            builds.append((f"mlp-{key.split()[0]}-{fps:g}", f"mlp-{key.split()[0]}", {"fps": fps}))
    for variant in ("w1a1", "w2a2"):
        nets[f"tfc_{variant}"] = lambda path, v=variant: finn_compare._tfc(path, v)
        builds.append((f"finn-tfc_{variant}", f"tfc_{variant}", {"folding": finn_compare.TFC_FOLDING}))
    for key, spec in SPECS.items():
        nets[f"spec-{key}"] = _mlp(spec)
        builds.append((f"spec-{key}", f"spec-{key}", {}))
    for key, spec in CNN_SPECS.items():
        nets[f"cnn-{key}"] = _cnn(spec)
        builds.append((f"cnn-{key}", f"cnn-{key}", {"fps": 1e4}))
    builds.append(("digits-device-ice40", "digits", {"device": "ice40-up5k"}))
    builds.append(("tfc-device-ecp5", "tfc", {"device": "ecp5-25k", "fps": 1e4}))
    builds.append(("digits-max-lut", "digits", {"max_lut": 3000}))
    builds.append(("res_mlp-max-lut", "res_mlp", {"max_lut": 4000, "fps": 1e5}))
    nets["big1024"] = _big(1024)
    builds.append(("big1024-1x16", "big1024", {"folding": {"fc0": {"pe": 1, "simd": 16}}}))
    return nets, builds


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fingerprint(out):
    rec = {}
    for dirpath, _, files in os.walk(os.path.join(out, "rtl")):
        for fn in sorted(files):
            p = os.path.join(dirpath, fn)
            rec[os.path.relpath(p, out)] = _sha(p)
    rec["manifest.json"] = _sha(os.path.join(out, "manifest.json"))
    with open(os.path.join(out, "manifest.json")) as f:
        man = json.load(f)
    rec["manifest"] = {k: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:16] for k, v in man.items()}
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx-dir", required=True, help="exported models (made if missing, reused if present)")
    ap.add_argument("--out", required=True, help="JSON of the fingerprints")
    ap.add_argument("--compare", default=None, help="an earlier run's JSON: print what differs")
    ap.add_argument("--only", default=None, help="comma-separated build names")
    args = ap.parse_args(argv)

    import hwgen
    nets, builds = networks()
    if args.only:
        builds = [b for b in builds if b[0] in args.only.split(",")]
    os.makedirs(args.onnx_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hwgen-identical-")
    result = {}
    for name, net, kw in builds:
        onnx_path = os.path.join(args.onnx_dir, net + ".onnx")
        if not os.path.exists(onnx_path):
            nets[net](onnx_path)
        t = time.perf_counter()
        try:
            b = hwgen.build(onnx_path, os.path.join(work, name), progress=False, name=name, **kw)
            result[name] = fingerprint(b.out_dir)
            status = f"{b.cycles_per_frame:,} cycles"
        except hwgen.HwgenError as e:
            result[name] = {"error": str(e)}
            status = f"error: {e}"
        print(f"{name:34s} {time.perf_counter() - t:6.1f} s  {status}", flush=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)
        same = 0
        names = set(result) if args.only else set(before) | set(result)
        for name in sorted(names):
            a, b = before.get(name), result.get(name)
            if a == b:
                same += 1
                continue
            if a is None or b is None:
                print(f"{name}: only in {'after' if a is None else 'before'}")
                continue
            files = sorted(k for k in set(a) | set(b) if k != "manifest" and a.get(k) != b.get(k))
            ma, mb = a.get("manifest", {}), b.get("manifest", {})
            keys = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
            added = [k for k in keys if k not in ma]
            changed = [k for k in keys if k in ma]
            print(f"{name}: differs in {', '.join(files) or '-'}; manifest keys added {added or '-'}, changed {changed or '-'}"
                  + (f"; error before: {a['error']}" if 'error' in a else "") + (f"; error after: {b['error']}" if 'error' in b else ""))
        print(f"{same} of {len(names)} builds identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
