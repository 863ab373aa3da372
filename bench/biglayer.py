"""Benchmark: time and peak memory of building one big W8A8 linear layer, step by step.

For each case (a QONNX model with one MW×MH quantised linear layer, UINT8 in, INT8
weights, ReLU, UINT8 out: 255 thresholds per channel) in a fresh process: seconds and
peak resident memory of load and lower, folding, stream plumbing, Verilog generation
(split into its stages as hwgen.progress reports them: elaboration, netlist and RTLIL,
yosys write_verilog, ROM files) and writing the build — the peak counts child processes
(yosys) too; then the whole ``hwgen build`` command line in another fresh process (wall time,
peak of the process and its children).  A case whose folding search fails prints the
error instead (the default target, 1e6 frames/s at 100 MHz, needs more lanes than the
ROM word cap allows for these layers).  Not run by the tests.

    python bench/biglayer.py [--cases 1024:default 1024:1x16 1024:4x1024 4096:1x16 4096:4x1024]
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

DEFAULT_CASES = ("1024:default", "1024:1x16", "1024:4x1024", "4096:1x16", "4096:4x1024")


def make_model(n, path, seed=0):
    """One n×n W8A8 layer: Quant(UINT8) → MatMul(Quant(INT8 W)) → ReLU → Quant(UINT8)."""
    import numpy as np
    import onnx

    from qonnx_builder import GraphBuilder
    rng = np.random.default_rng(seed)
    b = GraphBuilder((1, n))
    b.act(0.05, bits=8, signed=False)
    b.matmul(rng.normal(0, 0.02, (n, n)).astype(np.float32), 0.001, 8)
    b.relu()
    b.act(0.05, bits=8, signed=False)
    onnx.save(b.model((1, n)), path)


def _pid_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _rss_mb():
    """Resident memory of this process and all its descendants (the yosys process among them)."""
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += _pid_rss_mb(pid)
        todo += _children(pid)
    return total


class Meter:
    """Seconds and peak RSS (this process and its children, sampled every 20 ms) of consecutive steps."""

    def __init__(self):
        self.rows, self.peak, self.t = [], _rss_mb(), time.perf_counter()
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def mark(self, name, note=""):
        now, rss = time.perf_counter(), _rss_mb()
        self.rows.append({"step": name, "s": now - self.t, "peak_mb": max(self.peak, rss), "note": note})
        self.t, self.peak = now, rss


class _Stages(logging.Handler):
    """Turns the stage lines of the "generate Verilog" progress task into meter steps."""

    STAGES = (("netlist and RTLIL", "  elaborate"), ("yosys write_verilog", "  netlist + RTLIL"),
              ("ROM file", "  yosys write_verilog"))

    def __init__(self, meter):
        super().__init__()
        self.meter, self.seen = meter, set()

    def emit(self, record):
        msg = record.getMessage()
        for key, step in self.STAGES:
            if f"generate Verilog: {key}" in msg or (key == "ROM file" and "ROM file(s)" in msg):
                if step not in self.seen:
                    self.seen.add(step)
                    self.meter.mark(step)


def one(n, fold, workdir):
    """The steps of one case in this process; returns the rows (and an error, if any)."""
    import hwgen
    from hwgen import progress
    from hwgen.dataflow.folding import DEFAULT_FPS, apply_folding, folded_layers, search_folding
    from hwgen.dataflow.plumbing import InsertDuplicates, InsertFIFOs, InsertWidthConverters
    from hwgen.dataflow.fit import beyond_devices
    from hwgen.errors import HwgenError
    from hwgen.hdl.top import to_verilog
    from hwgen.lower import lower

    model_path = os.path.join(workdir, f"m{n}.onnx")
    meter = Meter()
    make_model(n, model_path)
    meter.mark("make model (not hwgen)")
    model = hwgen.load(model_path)
    graph = lower(model, name=f"m{n}")
    meter.mark("load and lower")
    layer = graph.compute_layers[0].name
    try:
        if fold == "default":
            search_folding(graph, DEFAULT_FPS, 100.0)
        else:
            pe, simd = (int(v) for v in fold.split("x"))
            folding = {layer: {"pe": pe, "simd": simd}}
            apply_folding(graph, folding)
            fps = 100e6 / graph.layer(layer).cycles()
            search_folding(graph, fps, 100.0, fixed=folded_layers(folding))
    except HwgenError as e:
        meter.mark("folding", "error")
        return meter.rows, str(e)
    meter.mark("folding", ", ".join(f"{k}={v}" for k, v in graph.layer(layer).folding.items()))
    for p in (InsertDuplicates(), InsertWidthConverters(), InsertFIFOs()):
        graph, _ = p.apply(graph)
    beyond = beyond_devices(graph)
    meter.mark("plumbing + device check", "fits no device" if beyond else "")
    handler = _Stages(meter)
    progress.logger.addHandler(handler)
    progress.logger.setLevel(logging.INFO)
    progress.set_quiet(False)
    files = {}
    text = to_verilog(graph, name="hwgen_top", progress=True, memfiles=files)
    progress.logger.removeHandler(handler)
    if "  yosys write_verilog" in handler.seen:
        meter.mark("  ROM files", f"{len(files)} $readmemh file(s)")
    else:
        meter.mark("  yosys write_verilog")
    out = os.path.join(workdir, "steps_out")
    os.makedirs(os.path.join(out, "rtl"), exist_ok=True)
    with open(os.path.join(out, "rtl", "hwgen_top.v"), "w") as f:
        f.write(text)
    for fn, t in files.items():
        with open(os.path.join(out, "rtl", fn), "w") as f:
            f.write(t)
    graph.save(out)
    size = sum(os.path.getsize(os.path.join(out, "rtl", fn)) for fn in os.listdir(os.path.join(out, "rtl")))
    meter.mark("write build", f"rtl/ {size / 1e6:.1f} MB")
    return meter.rows, None


def end_to_end(n, fold, workdir):
    """``hwgen build`` in a fresh process: (wall seconds, peak MB of it and its children, exit code)."""
    model_path = os.path.join(workdir, f"m{n}.onnx")
    if not os.path.exists(model_path):
        make_model(n, model_path)
    cmd = [sys.executable, "-m", "hwgen", "build", model_path, "-o", os.path.join(workdir, "cli_out"), "-q"]
    if fold != "default":
        pe, simd = (int(v) for v in fold.split("x"))
        fpath = os.path.join(workdir, "folding.json")
        with open(fpath, "w") as f:
            json.dump({"fc0": {"pe": pe, "simd": simd}}, f)
        cmd += ["--folding", fpath]
    code = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
            "p = subprocess.run(sys.argv[1:], capture_output=True); "
            "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
            "p.returncode]))")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True, text=True, env=env)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                    help="N:FOLD with FOLD 'default' (the folding search at 1e6 frames/s) or PExSIMD")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end `hwgen build` runs")
    args = ap.parse_args(argv)
    if args.one:
        n, fold = args.one.split(":")
        with tempfile.TemporaryDirectory(prefix="hwgen-biglayer-") as d:
            rows, err = one(int(n), fold, d)
        print(json.dumps({"rows": rows, "error": err}))
        return 0
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for case in args.cases:
        n, fold = case.split(":")
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", case], capture_output=True,
                           text=True, env=env)
        try:
            res = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(f"## {n}×{n} W8A8, folding {fold}: failed\n{r.stderr[-2000:]}\n")
            continue
        print(f"## {n}×{n} W8A8, folding {fold}\n")
        print("| step | seconds | peak RSS (MB) | note |\n|---|---:|---:|---|")
        for row in res["rows"]:
            print(f"| {row['step']} | {row['s']:.1f} | {row['peak_mb']:,.0f} | {row['note']} |")
        hw = sum(row["s"] for row in res["rows"] if not row["step"].startswith("make model"))
        print(f"| **steps total** | {hw:.1f} | {max(row['peak_mb'] for row in res['rows']):,.0f} | |")
        if not args.no_cli:
            with tempfile.TemporaryDirectory(prefix="hwgen-biglayer-") as d:
                wall, peak, rc = end_to_end(int(n), fold, d)
            print(f"| `hwgen build` (fresh process) | {wall:.1f} | {peak:,.0f} | exit {rc} |")
        if res["error"]:
            print(f"\nerror: {res['error']}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
