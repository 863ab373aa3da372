"""RTL verification speed: the compiled testbench against cocotb (and hls4ml's C simulation), one run.

For each network, on the same QONNX file: the build, then for each testbench engine the
model's compile seconds (a cold cache: Verilator's run-time library, compiled once per
machine, is reported on its own line), simulated cycles per second and frames per second
(both phases of ``hwgen verify``: back to back, then under gaps and back-pressure), the time
for a 10,000-frame run (measured, or extrapolated from ``--big-frames`` when fewer), and
from ``.onnx`` to verified on 500 frames.  ``--flags`` adds the compile-flag study (C++
optimisation level, Verilator threads) on each network.  With an hls4ml virtualenv
(``--hls4ml PYTHON``, default ``/work/hls4ml-venv/bin/python`` when present), its ``.onnx`` to
C-simulation of the same 500 frames runs in the same session (``bench/peers/hls4ml_csim.py``).

    python bench/verify_speed.py [NETWORK ...] [--out build/verify_speed] [--flags]

Networks: digits_mlp, digits_cnn (trained by the examples' demos, seconds), tfc_w1a1 and
cnv_w1a1 (brevitas_examples as shipped, at FINN's foldings; random weights: speed does not
depend on them).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

NETWORKS = ("digits_mlp", "digits_cnn", "tfc_w1a1", "cnv_w1a1")
ZOO = {"tfc_w1a1": "tfc_1w1a", "cnv_w1a1": "cnv_1w1a"}
FRAMES = 500                   # the ".onnx to verified" run
TEN_K = 10_000
HLS4ML = Path("/work/hls4ml-venv/bin/python")


def _onnx(name, out):
    """(the network's .onnx, its inputs (N, ...) float, the folding file or None)."""
    if name in ZOO:
        import zoo
        zname = ZOO[name]
        path = out / f"{name}.onnx"
        if not path.exists():
            zoo.export(zname, zoo.make(zname), str(path))
        return path, (lambda n: zoo.inputs(zname, n, seed=1)), zoo.FINN_FOLDINGS[zname]
    demo = out / name
    path = out / f"{name}.onnx"
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--out", str(demo)], check=True,
                       stdout=subprocess.DEVNULL)
    from hwgen.mixed.train import load_digits_split
    _, _, xte, _ = load_digits_split(0)
    shape = (1, 8, 8) if name == "digits_cnn" else (64,)

    def inputs(n):
        reps = -(-n // len(xte))
        return np.concatenate([xte] * reps)[:n].reshape((n,) + shape).astype(np.float64)
    return path, inputs, str(demo / "folding.json")


def _engine_row(out, x, engine, big, long_args=None):
    import hwgen
    r = hwgen.verify(str(out), inputs=x, engine=engine, progress=False)
    assert r.ok, r.table()
    row = {"engine": engine, "compile_s": r.build_seconds, "frames": r.frames, "sim_s": r.sim_seconds,
           "cycles": r.cycles, "cycles_per_s": r.cycles / r.sim_seconds, "fps": r.frames / r.sim_seconds,
           "cycles_per_frame": r.cycles_per_frame, "latency": r.latency_cycles}
    if big is not None:
        r2 = hwgen.verify(str(out), inputs=big, engine=engine, progress=False, **(long_args or {}))
        assert r2.ok, r2.table()
        row.update(big_frames=r2.frames, big_s=r2.sim_seconds, cycles_per_s=r2.cycles / r2.sim_seconds,
                   fps=r2.frames / r2.sim_seconds, long_args=long_args)
    row["ten_k_s"] = TEN_K / row["fps"]
    row["ten_k_measured"] = row.get("big_frames") == TEN_K
    return row


def _cold_cache():
    """(an empty cache, made the user cache, with Verilator's run-time library compiled into it;
    the seconds that took, measured on a tiny design): compiles after this are cold for the model."""
    from hwgen import bulk
    cache = Path(tempfile.mkdtemp(prefix="hwgen-bench-cache-"))
    os.environ["HWGEN_CACHE"] = str(cache)
    secs = bulk.warm()
    shutil.rmtree(cache / "models")
    return cache, secs


def _flags(out, x, name):
    """Compile seconds (cold cache) and cycles/s per C++ optimisation level and Verilator thread count."""
    from hwgen import bulk
    import hwgen
    rows, default = [], bulk.cxx_opt
    for opt, threads in (("-O0", 1), ("-O1", 1), ("-Os", 1), ("-O2", 1), ("-O3", 1), ("-O2", 2)):
        bulk.cxx_opt = lambda cycles, opt=opt: opt
        try:
            r = hwgen.verify(str(out), inputs=x, progress=False, threads=threads)
        finally:
            bulk.cxx_opt = default
        rows.append({"network": name, "opt": opt, "threads": threads, "compile_s": r.build_seconds,
                     "cycles_per_s": r.cycles / r.sim_seconds})
    return rows


def _hls4ml(python, onnx, x, out):
    script = HERE / "peers" / "hls4ml_csim.py"
    if not (python and Path(python).exists() and script.exists()):
        return None
    npy = out / "hls4ml_inputs.npy"
    np.save(npy, x.astype(np.float32))
    res = out / "hls4ml_result.json"
    t = time.monotonic()
    p = subprocess.run([str(python), str(script), str(onnx), str(npy), "--out", str(out / "hls4ml"), "--json", str(res)],
                       capture_output=True, text=True)
    wall = time.monotonic() - t
    if p.returncode or not res.exists():
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:160], "wall_s": wall}
    doc = json.loads(res.read_text())
    doc["wall_s"] = wall
    return doc


def _f(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{nd}f}" if abs(v) < 1e5 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _table(cols, rows):
    head = "| " + " | ".join(c for c, _ in cols) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|"
    return "\n".join([head, sep] + ["| " + " | ".join(fmt(r) for _, fmt in cols) + " |" for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="*", default=list(NETWORKS), help=f"default: {' '.join(NETWORKS)}")
    ap.add_argument("--out", default="build/verify_speed")
    ap.add_argument("--cocotb-frames", type=int, default=None, help="frames for cocotb (default: 500, CNV 4)")
    ap.add_argument("--big-frames", type=int, default=None, help="frames of the long compiled run (default 10,000; "
                    "CNV 100, extrapolated)")
    ap.add_argument("--jobs", type=int, help="processes of the long compiled run (verify's jobs; default: its own)")
    ap.add_argument("--stress-frames", type=int, help="the long compiled run's stress phase on the first N frames")
    ap.add_argument("--flags", action="store_true", help="add the compile-flag study")
    ap.add_argument("--hls4ml", default=str(HLS4ML) if HLS4ML.exists() else None, help="hls4ml virtualenv's python")
    a = ap.parse_args(argv)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    import hwgen

    cache, runtime_s = _cold_cache()
    rows, onnx_rows, flag_rows = [], [], []
    try:
        for name in a.networks:
            onnx, inputs, folding = _onnx(name, out)
            t = time.monotonic()
            build = out / f"{name}_hw"
            if build.exists():
                shutil.rmtree(build)
            b = hwgen.build(str(onnx), str(build), folding=folding, progress=False)
            build_s = time.monotonic() - t
            cpf = b.manifest["cycles_per_frame"]
            big_cnv = name == "cnv_w1a1"
            x = inputs(FRAMES)
            big = inputs(a.big_frames or (100 if big_cnv else TEN_K))
            long_args = {k: v for k, v in (("jobs", a.jobs), ("stress_frames", a.stress_frames)) if v}
            comp = _engine_row(build, x if not big_cnv else inputs(20), "compiled", big, long_args)
            n_coco = a.cocotb_frames or (4 if big_cnv else FRAMES)
            coco = _engine_row(build, inputs(n_coco), "cocotb", None)
            for r in (comp, coco):
                r.update(network=name, cpf_est=cpf, build_s=build_s)
                rows.append(r)
            # .onnx -> verified on 500 frames: build + compile + simulate (compiled, cold cache)
            t500 = build_s + comp["compile_s"] + FRAMES / comp["fps"]
            peer = _hls4ml(a.hls4ml, onnx, x, out / name) if name.startswith("digits") and a.hls4ml else None
            onnx_rows.append({"network": name, "hwgen_s": t500, "build_s": build_s, "compile_s": comp["compile_s"],
                              "sim_s": FRAMES / comp["fps"], "peer": peer})
            if a.flags:
                flag_rows += _flags(build, inputs(2 if big_cnv else 2000), name)
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    print(f"\nVerilator's run-time library, compiled once per machine into the user cache: {runtime_s:.1f} s "
          f"(not in the compile column)\n")
    print(_table([("network", lambda r: r["network"]), ("cycles/frame", lambda r: _f(r["cpf_est"])),
                  ("engine", lambda r: r["engine"] + "".join(f", {k}={v}" for k, v in (r.get("long_args") or {}).items())), ("compile s", lambda r: _f(r["compile_s"])),
                  ("frames", lambda r: _f(r.get("big_frames", r["frames"]))),
                  ("sim s", lambda r: _f(r.get("big_s", r["sim_s"]), 2)),
                  ("cycles/s", lambda r: _f(r["cycles_per_s"], 0)), ("frames/s", lambda r: _f(r["fps"])),
                  ("10,000 frames s", lambda r: _f(r["ten_k_s"]) + ("" if r["ten_k_measured"] else " (extrapolated)"))],
                 rows))
    speed = {(r["network"], r["engine"]): r["cycles_per_s"] for r in rows}
    print("\ncompiled / cocotb cycles per second: " + ", ".join(
        f"{n} {speed[(n, 'compiled')] / speed[(n, 'cocotb')]:,.0f}×" for n in a.networks))
    print("\n.onnx to verified on 500 frames (hwgen: build + compile + compiled simulation; hls4ml: convert + C++ "
          "compile + C simulation)\n")
    print(_table([("network", lambda r: r["network"]), ("hwgen s", lambda r: _f(r["hwgen_s"])),
                  ("build / compile / sim s", lambda r: f"{r['build_s']:.1f} / {r['compile_s']:.1f} / {r['sim_s']:.2f}"),
                  ("hls4ml s", lambda r: _f((r["peer"] or {}).get("total_s")) if not (r["peer"] or {}).get("error")
                   else "error"),
                  ("hls4ml convert / compile / predict s", lambda r: "—" if not r["peer"] or r["peer"].get("error") else
                   f"{r['peer']['convert_s']:.1f} / {r['peer']['compile_s']:.1f} / {r['peer']['predict_s']:.2f}"),
                  ("hls4ml note", lambda r: "not run" if r["peer"] is None else r["peer"].get("error", "") or "")],
                 onnx_rows))
    if flag_rows:
        print("\ncompile flags (compiled testbench; cold cache; cycles/s on the same frames)\n")
        print(_table([("network", lambda r: r["network"]), ("C++ opt", lambda r: r["opt"]),
                      ("threads", lambda r: str(r["threads"])), ("compile s", lambda r: _f(r["compile_s"])),
                      ("cycles/s", lambda r: _f(r["cycles_per_s"], 0))], flag_rows))
    (out / "verify_speed.json").write_text(json.dumps({"rows": rows, "onnx": onnx_rows, "flags": flag_rows,
                                                        "runtime_s": runtime_s}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
