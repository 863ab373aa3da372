"""Build reports: report.json (machine-readable) and report.md (for people)."""

from .dataflow.target import Throughput

__all__ = ["make_report", "render_markdown", "render_synth", "render_pnr"]


def make_report(graph, clock_mhz, fps_target, build_seconds=None):
    layers = []
    sources = getattr(graph, "sources", {}) or {}
    modules = getattr(graph, "source_modules", {}) or {}
    for l in graph.layers:
        s = l.summary()
        s["source"] = sources.get(l.name, "")
        if modules.get(l.name):
            s["module"] = modules[l.name]          # the Brevitas/PyTorch module the source node came from
        if l.kind in ("MVAU", "ConstMVAU"):
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
        "fps": Throughput(clock_mhz, fps_target).fps_at(cycles),
        "resources": graph.resources(),
        "layers": layers,
        "build_seconds": build_seconds,
        "fifos": _fifo_summary(graph),
    }


def _fifo_summary(graph):
    fifos = [l for l in graph.layers if l.kind == "FIFO"]
    res = [l.resources() for l in fifos]
    doc = {"count": len(fifos), "words": sum(l.depth for l in fifos),
           "bits": sum(l.depth * l.lanes * l.dt.bits for l in fifos),
           "LUT": sum(r["LUT"] for r in res), "BRAM18": sum(r["BRAM18"] for r in res)}
    sizing = getattr(graph, "fifo_sizing", None) or {}
    if sizing:
        doc.update(frames=sizing.get("frames"))      # (its run time is in BuildResult.graph.fifo_sizing: builds stay byte-identical)
    return doc


def _fmt_folding(f):
    return ", ".join(f"{k.upper()}={v}" for k, v in sorted(f.items())) or "—"


def _pct(est, syn):
    return f"{100.0 * (est - syn) / syn:+.0f}%" if syn else "—"


def render_synth(rep, synth):
    """Markdown section: estimated vs synthesised resources per layer and in total, for each
    ``{family: synth/<family>.json document}`` in ``synth`` (LUT = LUT + LUTRAM sites; the
    estimate of a family other than xilinx is converted by :mod:`hwgen.dataflow.estimate`)."""
    from .dataflow.estimate import convert_resources
    from .devices import FAMILIES
    lines = []
    for fam in [f for f in FAMILIES if f in synth]:
        doc = synth[fam]
        lines += ["", f"## synthesised ({doc.get('command', fam)}) vs estimated", "",
                  "| layer | kind | LUT est | LUT syn | LUT err | FF est | FF syn | FF err | BRAM18 est/syn | DSP est/syn |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        tot = {"LUT": 0, "FF": 0, "BRAM18": 0, "DSP": 0}

        def row(name, kind, e, s, lines=lines):
            lut = s["LUT"] + s.get("LUTRAM", 0)
            lines.append(f"| {name} | {kind} | {e['LUT']:,} | {lut:,} | {_pct(e['LUT'], lut)} | {e['FF']:,} | "
                         f"{s['FF']:,} | {_pct(e['FF'], s['FF'])} | {e['BRAM18']:g}/{s['BRAM18']:g} | {e['DSP']}/{s['DSP']} |")
        for l in doc.get("layers", []):
            e = convert_resources(l.get("estimate") or {}, l.get("kind", ""), fam)
            for k in tot:
                tot[k] += e[k]
            row(l["name"], l.get("kind", ""), e, l["synth"])
        row("**total** (flattened)", "", tot, doc["total"])
    lines.append("")
    return "\n".join(lines)


def render_markdown(rep, synth=None, pnr=None):
    """report.md; with ``synth`` (``{family: synth/<family>.json}``) a synthesised-vs-estimated section;
    with ``pnr`` (``pnr/<family>.json``) the achieved Fmax and utilisation below the estimated resources."""
    if synth:
        return _render_markdown(rep, pnr).rstrip("\n") + "\n" + render_synth(rep, synth)
    return _render_markdown(rep, pnr)


def render_pnr(pnr):
    """The report line of a ``pnr/<family>.json`` document (None without an Fmax)."""
    if not pnr or "fmax_mhz" not in pnr:
        return None
    u = pnr.get("utilization", {})
    if pnr.get("tool") == "nextpnr-ice40":
        used = ", ".join(f"{u[k]['used']:,} {k}" for k in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP") if k in u)
        where = f"iCE40 place and route (nextpnr-ice40 {pnr.get('device')} {pnr.get('package')})"
    else:
        used = ", ".join(f"{u[k]['used']:,} {k}" for k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D") if k in u)
        where = f"ECP5 place and route (nextpnr-ecp5 {pnr.get('device')} {pnr.get('package')} speed {pnr.get('speed')})"
    board = f" of the {pnr['board']} shell" if pnr.get("board") else ""
    return (f"- {where}{board}: "
            f"**Fmax {pnr['fmax_mhz']:.1f} MHz** (constraint {pnr.get('clock_mhz', 0):g} MHz, "
            f"{'met' if pnr.get('timing_met') else 'not met'}){'; ' + used if used else ''}")


def _render_markdown(rep, pnr=None):
    lines = [f"# hwgen build report: {rep['name']}", ""]
    lines.append(f"- throughput: **{rep['fps']:,.0f} frames/s** at {rep['clock_mhz']:g} MHz "
                 f"({rep['cycles_per_frame']:,} cycles per frame, bottleneck `{rep['bottleneck']}`)")
    if rep.get("fps_target"):
        lines.append(f"- folding target: {rep['fps_target']:,.0f} frames/s")
    if rep.get("default_device"):
        d = rep["default_device"]
        lines.append(f"- folding target: none given; folded for the default device {d['device']} "
                     f"(at {d['margin'] * 100:g} % of it): {d['reached']}")
    r = rep["resources"]
    lines.append(f"- estimated resources: {r['LUT']:,} LUT, {r['FF']:,} FF, {r['BRAM18']} BRAM18, {r['DSP']} DSP")
    if render_pnr(pnr):
        lines.append(render_pnr(pnr))
    fi = rep.get("fifos") or {}
    if fi.get("count"):
        how = (f", sized from the word-level schedule over {fi['frames']} frames"
               if fi.get("frames") else "")
        lines.append(f"- FIFOs: {fi['count']}, {fi['words']:,} words = {fi['bits']:,} bits "
                     f"({fi['LUT']:,} LUT, {fi['BRAM18']} BRAM18 estimated){how}")
    lines += ["", "| layer | kind | source | in → out | types (in/w/acc → out) | folding | cycles | LUT | FF | BRAM18 | DSP |",
              "|---|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for l in rep["layers"]:
        types = l["idt"]
        if "wdt" in l:
            types += f" / {l['wdt']} / {l['acc']}"
        types += f" → {l['odt']}"
        extra = f" (depth {l['depth']})" if "depth" in l else ""
        res = l["resources"]
        src = f"{l['source']} ({l['module']})" if l.get("module") else l["source"]
        lines.append(f"| {l['name']} | {l['kind']}{extra} | {src} | {'×'.join(map(str, l['in_shape']))} → "
                     f"{'×'.join(map(str, l['out_shape']))} | {types} | {_fmt_folding(l['folding'])} | {l['cycles']:,} | "
                     f"{res['LUT']:,} | {res['FF']:,} | {res['BRAM18']} | {res['DSP']} |")
    lines.append(f"| **total** | | | | | | {rep['cycles_per_frame']:,} (max) | {r['LUT']:,} | {r['FF']:,} | {r['BRAM18']} | {r['DSP']} |")
    lines.append("")
    return "\n".join(lines)
