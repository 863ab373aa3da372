"""Peer build: the same integer MLP as hwgen's, built with da4ml and emitted as Verilog.

Runs in da4ml's own virtualenv, never in hwgen's: it imports only numpy, da4ml and the
standard library (not hwgen).  Setup, once:

    python3 -m venv /work/da4ml-venv
    /work/da4ml-venv/bin/pip install 'da4ml==0.6.0' numpy

da4ml 0.6.0 pulls in only ``quantizers`` (a small pure-Python package) besides numpy; its
CMVM solver and interpreter are compiled extensions inside the wheel, so no TensorFlow, Keras,
torch or compiler is needed.  Use:

    /work/da4ml-venv/bin/python bench/peers/da4ml_mlp.py SPEC.npz OUTDIR \\
        [--latency-cutoff C] [--hard-dc D] [--count thermo|sum] [--no-uniform]

``--latency-cutoff`` is da4ml's pipelining knob (its delay units, roughly one adder's carry
per unit; <= 0, the default, gives one combinational module); ``--hard-dc`` is the CMVM
solver's delay constraint (-1 = none, da4ml's default; its Keras CLI uses 2).

SPEC.npz, all arrays int64 (scalars as 0-d arrays):
  n_layers          L
  W{i}              (M_i, N_i) weights of layer i, acc = W{i} @ x, exact integers
  in_bits{i}        bit width of layer i's input elements
  in_signed{i}      0/1: two's complement when 1 (1-bit signed = {-1, 0}), else unsigned
  T{i}              (M_i, K_i) thresholds, ascending (non-decreasing) along each row; when
                    present the layer's output is y[c] = out_base{i} + out_step{i} *
                    sum_k [acc[c] >= T{i}[c, k]] (a multi-threshold activation) and must lie in
                    layer i+1's input type
  out_base{i}, out_step{i}   scalars, with T{i}
                    (no T{i}: the layer, which must be the last, outputs the raw acc)
  x                 (F, N_0) test inputs
  y                 (F, M_{L-1}) expected outputs (hwgen's reference)
Inputs are integers: fixed point with 0 fractional bits.

How the thresholds become da4ml operations: each comparison acc >= t is da4ml's FixedVariable
``>=`` (a constant subtraction whose sign bit is inverted; a t outside acc's range folds to a
constant).  The K bits form a thermometer code (the thresholds ascend), so with
``--count thermo`` (default) bit j of the count is the XOR of the comparisons k = m*2^j, and the
bits are joined with shifted bitwise ORs (wires); ``--count sum`` adds the K bits with da4ml's
adder-tree reduction (np.sum) instead.  Rows whose thresholds are evenly spaced by a power of
two, t_k = t_0 + k*2^s, K = 2^b - 1, use a constant add, a shift and a saturating quantize
instead (unless ``--no-uniform``).  Then out_base + out_step * count (constant shift-adds).

OUTDIR receives:
  da4ml_top.v    every module in one file; the top module is ``da4ml_top``
  prj/           da4ml's own project (VerilogModel.write: sources, metadata.json, model json)
  da4ml.json     top name, ports, bus layouts, latency, da4ml's estimates and timings:
    ports.input / ports.output: bus name and width; layout.input / layout.output: one entry per
    element, {offset, width, signed, lsb_exp}: element value = (raw bits, two's complement when
    signed) * 2**lsb_exp (lsb_exp is 0 for inputs; an output that is always even may have
    lsb_exp > 0; width 0 means an unused input / a constant-zero output).
    latency_cycles: 0 when combinational; otherwise x presented before rising edge n appears on
    the output after rising edge n + latency_cycles - 1 (it counts every register on the path,
    the input and output registers included).  Ports: clk only (no reset, no enable).
It also runs da4ml's own emulation (CombLogic.predict, its C++ interpreter) on x and compares
with y; the RTL itself is checked by bench/peers/da4ml_verify.py (Icarus).
"""

import argparse
import json
import os
import re
import shutil
import sys
import time

import numpy as np

from da4ml.codegen import VerilogModel
from da4ml.trace import FixedVariableArray, FixedVariableArrayInput, HWConfig, comb_trace, to_pipeline
from da4ml.types import minimal_kif

TOP = "da4ml_top"


def load_spec(path):
    z = np.load(path)
    n = int(z["n_layers"])
    layers = []
    for i in range(n):
        L = {"W": np.asarray(z[f"W{i}"], dtype=np.int64),
             "in_bits": int(z[f"in_bits{i}"]), "in_signed": int(z[f"in_signed{i}"])}
        if f"T{i}" in z:
            L["T"] = np.asarray(z[f"T{i}"], dtype=np.int64)
            L["out_base"], L["out_step"] = int(z[f"out_base{i}"]), int(z[f"out_step{i}"])
            if L["T"].shape[0] != L["W"].shape[0]:
                raise ValueError(f"T{i} has {L['T'].shape[0]} rows, W{i} {L['W'].shape[0]}")
            if np.any(np.diff(L["T"], axis=1) < 0):
                raise ValueError(f"T{i}: thresholds must ascend along each row")
        elif i != n - 1:
            raise ValueError(f"layer {i} has no thresholds but is not the last")
        if i and L["W"].shape[1] != layers[-1]["W"].shape[0]:
            raise ValueError(f"W{i} takes {L['W'].shape[1]} inputs, layer {i - 1} gives {layers[-1]['W'].shape[0]}")
        layers.append(L)
    return layers, np.asarray(z["x"], dtype=np.int64), np.asarray(z["y"], dtype=np.int64)


def type_range(bits, signed):
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def kif_of(bits, signed):
    """da4ml's (keep_negative, integer bits excluding sign, fractional bits) of an integer type."""
    return int(signed), bits - int(signed), 0


def uniform_step(row):
    """s when row is t_0 + k*2^s (k = 0..K-1) and K + 1 is a power of two, else None."""
    K = len(row)
    if K < 2 or (K + 1) & K:
        return None
    d = np.diff(row)
    if not np.all(d == d[0]) or d[0] <= 0 or d[0] & (d[0] - 1):
        return None
    return int(d[0]).bit_length() - 1


def thermo_count(bits):
    """The count of ones of the thermometer code bits[0..K-1] (bits[k] = [c > k]), exactly:
    binary digit j is the XOR of bits[m*2^j - 1], m >= 1; digits are joined with shifted ORs."""
    K = len(bits)
    out = None
    for j in range(max(K, 1).bit_length()):
        sel = [bits[m * (1 << j) - 1] for m in range(1, K // (1 << j) + 1)]
        if not sel:
            break
        d = sel[0]
        for b in sel[1:]:
            d = d ^ b
        d = d << j
        out = d if out is None else (out | d)
    return out


def threshold_layer(acc, L, count_mode, allow_uniform):
    """y[c] = base + step * sum_k [acc[c] >= T[c, k]] on da4ml variables (exact)."""
    T, base, step = L["T"], L["out_base"], L["out_step"]
    M, K = T.shape
    outs, n_uniform = [], 0
    for c in range(M):
        a = acc[c]
        s = uniform_step(T[c]) if allow_uniform else None
        if s is not None:
            # count = clip(floor((a - t_0) / 2^s) + 1, 0, K), K = 2^b - 1
            b = K.bit_length()
            cnt = ((a - int(T[c, 0]) + (1 << s)) >> s).quantize(0, b, 0, "SAT")
            n_uniform += 1
        else:
            bits = [a >= int(t) for t in T[c]]
            if count_mode == "thermo":
                cnt = thermo_count(bits)
            else:
                cnt = FixedVariableArray(np.array(bits, dtype=object), acc.solver_options, hwconf=acc.hwconf)
                cnt = np.sum(cnt)
        outs.append(cnt * step + base if step != 1 else cnt + base)
    return FixedVariableArray(np.array(outs, dtype=object), acc.solver_options, hwconf=acc.hwconf), n_uniform


def value_range(v):
    return float(v.low), float(v.high)


def build(layers, count_mode, allow_uniform, hard_dc):
    n0 = layers[0]["W"].shape[1]
    solver = {"hard_dc": hard_dc}
    inp = FixedVariableArrayInput((n0,), hwconf=HWConfig(1, -1, -1), solver_options=solver)
    x = inp.quantize(*kif_of(layers[0]["in_bits"], layers[0]["in_signed"]))
    info = []
    for i, L in enumerate(layers):
        acc = x @ L["W"].T.astype(np.float64)
        acc_lo = min(float(v.low) for v in acc._vars.ravel())
        acc_hi = max(float(v.high) for v in acc._vars.ravel())
        acc_bits = max(sum(minimal_kif(v.qint)) for v in acc._vars.ravel())
        li = {"layer": i, "shape": list(L["W"].shape), "acc_range": [acc_lo, acc_hi], "acc_max_bits": int(acc_bits)}
        if "T" in L:
            x, nu = threshold_layer(acc, L, count_mode, allow_uniform)
            li["uniform_rows"] = nu
            nxt = layers[i + 1]
            lo, hi = type_range(nxt["in_bits"], nxt["in_signed"])
            for c, v in enumerate(x._vars.ravel()):
                vl, vh = value_range(v)
                if vl < lo or vh > hi:
                    raise ValueError(f"layer {i} channel {c}: output range [{vl}, {vh}] exceeds layer {i + 1}'s input type")
        else:
            x = acc
        info.append(li)
    return inp, x, info


def layout(qints):
    out, off = [], 0
    for q in qints:
        k, i, f = minimal_kif(q)
        w = int(k + i + f)
        out.append({"offset": off, "width": w, "signed": bool(k), "lsb_exp": int(-f) if w else 0})
        off += w
    return out, off


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec")
    ap.add_argument("outdir")
    ap.add_argument("--latency-cutoff", type=float, default=-1)
    ap.add_argument("--hard-dc", type=int, default=-1)
    ap.add_argument("--count", choices=("thermo", "sum"), default="thermo")
    ap.add_argument("--no-uniform", action="store_true")
    a = ap.parse_args(argv)

    layers, xs, ys = load_spec(a.spec)
    os.makedirs(a.outdir, exist_ok=True)
    times = {}

    t0 = time.monotonic()
    inp, out, info = build(layers, a.count, not a.no_uniform, a.hard_dc)
    times["trace_s"] = time.monotonic() - t0      # tracing incl. the CMVM solver
    t1 = time.monotonic()
    comb = comb_trace(inp, out)
    times["comb_trace_s"] = time.monotonic() - t1
    if comb.lookup_tables:
        raise RuntimeError("unexpected lookup tables (memory files) in the traced logic")

    t2 = time.monotonic()
    sol = to_pipeline(comb, a.latency_cutoff, retiming=True, verbose=False) if a.latency_cutoff > 0 else comb
    times["pipeline_s"] = time.monotonic() - t2

    t3 = time.monotonic()
    prj = os.path.join(a.outdir, "prj")
    shutil.rmtree(prj, ignore_errors=True)
    model = VerilogModel(sol, TOP, prj, latency_cutoff=a.latency_cutoff, print_latency=False)
    model.write()
    times["write_s"] = time.monotonic() - t3
    times["da4ml_total_s"] = time.monotonic() - t0

    # one file: the top, its stages (when pipelined) and da4ml's static cells; not the wrapper
    src = os.path.join(prj, "src")
    files = sorted(f for f in os.listdir(src) if f.endswith(".v") and f != f"{TOP}_wrapper.v")
    body = "".join(open(os.path.join(src, f)).read() for f in files)
    # da4ml's static cells, only those instantiated (its unused lookup_table.v trips Icarus)
    files += [os.path.join("static", f) for f in sorted(os.listdir(os.path.join(src, "static")))
              if f.endswith(".v") and re.search(rf"\b{re.escape(f[:-2])}\s+#\(", body)]
    with open(os.path.join(a.outdir, f"{TOP}.v"), "w") as fo:
        for f in files:
            with open(os.path.join(src, f)) as fi:
                fo.write(f"// ---- da4ml: {f}\n{fi.read()}\n")

    lay_in, w_in = layout(comb.inp_qint)
    lay_out, w_out = layout(comb.out_qint)
    pipelined = a.latency_cutoff > 0
    n_stages = len(sol.solutions) if pipelined else 0
    meta = json.load(open(os.path.join(prj, "metadata.json")))

    # da4ml's own emulation (C++ interpreter) against the reference
    t4 = time.monotonic()
    emu = comb.predict(xs.astype(np.float64), n_threads=1)
    times["emulate_s"] = time.monotonic() - t4
    bad = np.argwhere(emu != ys)
    emu_ok = bad.size == 0

    rep = {
        "top": TOP,
        "verilog": f"{TOP}.v",
        "ports": {
            "clock": "clk" if pipelined else None, "reset": None, "enable": None,
            "input": {"name": "model_inp", "width": w_in},
            "output": {"name": "model_out", "width": w_out},
        },
        "layout": {"input": lay_in, "output": lay_out},
        "pipelined": pipelined,
        "latency_cutoff": a.latency_cutoff,
        "latency_cutoff_actual": getattr(model, "_latency_cutoff", None) if pipelined else None,
        "da4ml_stages": n_stages,
        "latency_cycles": n_stages + 1 if pipelined else 0,
        "da4ml_cost_luts": float(comb.cost),
        "da4ml_reg_bits": int(sol.reg_bits) if pipelined else 0,
        "da4ml_delay": float(comb.latency[1]),
        "da4ml_metadata": meta,
        "options": {"hard_dc": a.hard_dc, "count": a.count, "uniform": not a.no_uniform},
        "layers": info,
        "n_ops": len(comb.ops),
        "emulation": {"frames": int(len(xs)), "pass": bool(emu_ok), "mismatches": int(len(bad))},
        "times": {k: round(v, 3) for k, v in times.items()},
        "da4ml_version": __import__("da4ml").__version__,
    }
    with open(os.path.join(a.outdir, "da4ml.json"), "w") as f:
        json.dump(rep, f, indent=1)

    print(f"da4ml {rep['da4ml_version']}: {len(comb.ops)} ops, est. {comb.cost:.0f} LUTs, delay {comb.latency[1]:.1f}, "
          f"{'%d stages, latency %d cycles, %d reg bits' % (n_stages, rep['latency_cycles'], rep['da4ml_reg_bits']) if pipelined else 'combinational'}; "
          f"in {w_in} bits, out {w_out} bits; {times['da4ml_total_s']:.2f} s")
    if emu_ok:
        print(f"emulation PASS {len(xs)}")
    else:
        for f_, e in bad[:5]:
            print(f"emulation MISMATCH frame {f_} out {e}: da4ml {emu[f_, e]:g} expected {ys[f_, e]}")
    return 0 if emu_ok else 1


if __name__ == "__main__":
    sys.exit(main())
