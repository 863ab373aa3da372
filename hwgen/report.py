"""Build reports: report.json (machine-readable) and report.md (for people)."""

__all__ = ["make_report", "render_markdown"]


def make_report(graph, clock_mhz, fps_target, build_seconds=None):
    layers = []
    sources = getattr(graph, "sources", {}) or {}
    for l in graph.layers:
        s = l.summary()
        s["source"] = sources.get(l.name, "")
        if l.kind == "MVAU":
            s.update(wdt=l.wdt.name, acc=l.acc_dt.name, mw=l.mw, mh=l.mh, thresholds=l.n_thresholds)
        elif l.kind == "Thresholding":
            s.update(thresholds=l.n_thresholds)
        elif l.kind == "FIFO":
            s.update(depth=l.depth)
        layers.append(s)
    cycles = graph.cycles()
    bottleneck = max(graph.layers, key=lambda l: l.cycles()).name
    return {
        "name": graph.name,
        "clock_mhz": clock_mhz,
        "fps_target": fps_target,
        "cycles_per_frame": cycles,
        "bottleneck": bottleneck,
        "fps": clock_mhz * 1e6 / cycles,
        "resources": graph.resources(),
        "layers": layers,
        "build_seconds": build_seconds,
    }


def _fmt_folding(f):
    return ", ".join(f"{k.upper()}={v}" for k, v in sorted(f.items())) or "—"


def render_markdown(rep):
    lines = [f"# hwgen build report: {rep['name']}", ""]
    lines.append(f"- throughput: **{rep['fps']:,.0f} frames/s** at {rep['clock_mhz']:g} MHz "
                 f"({rep['cycles_per_frame']:,} cycles per frame, bottleneck `{rep['bottleneck']}`)")
    if rep.get("fps_target"):
        lines.append(f"- folding target: {rep['fps_target']:,.0f} frames/s")
    r = rep["resources"]
    lines.append(f"- estimated resources: {r['LUT']:,} LUT, {r['FF']:,} FF, {r['BRAM18']} BRAM18, {r['DSP']} DSP")
    lines += ["", "| layer | kind | source | in → out | types (in/w/acc → out) | folding | cycles | LUT | FF | BRAM18 | DSP |",
              "|---|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for l in rep["layers"]:
        types = l["idt"]
        if "wdt" in l:
            types += f" / {l['wdt']} / {l['acc']}"
        types += f" → {l['odt']}"
        extra = f" (depth {l['depth']})" if "depth" in l else ""
        res = l["resources"]
        lines.append(f"| {l['name']} | {l['kind']}{extra} | {l['source']} | {'×'.join(map(str, l['in_shape']))} → "
                     f"{'×'.join(map(str, l['out_shape']))} | {types} | {_fmt_folding(l['folding'])} | {l['cycles']:,} | "
                     f"{res['LUT']:,} | {res['FF']:,} | {res['BRAM18']} | {res['DSP']} |")
    lines.append(f"| **total** | | | | | | {rep['cycles_per_frame']:,} (max) | {r['LUT']:,} | {r['FF']:,} | {r['BRAM18']} | {r['DSP']} |")
    lines.append("")
    return "\n".join(lines)
