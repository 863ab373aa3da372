"""Design-space sweep: throughput vs resources of the folding search and of FINN-style greedy folding.

``explore(model)`` sweeps throughput targets from the slowest folding
(PE = SIMD = 1) to the fastest any folding reaches, log-spaced, and for each
target costs the least-LUT folding of :func:`hwgen.dataflow.folding.search_folding`
and the FINN ``SetFolding``-style greedy folding
(:func:`~hwgen.dataflow.folding.finn_greedy_folding`), plumbing included (width
converters from the real pass, FIFOs from the search's per-edge depth model).
With a device, the search's rows are what ``build --device`` would pick (the
least LUT that fits, memory styles chosen too), every row says whether it
fits, and the fastest fitting folding is added.  A folding that meets a
tighter target also meets a looser one, so each search row is the cheapest
found at its target or any tighter one (fitting first).  :func:`format_table` prints the rows; :func:`plot` draws LUT
against frames/s on log axes to a PNG.
"""

from . import progress as _progress
from .dataflow.folding import DEFAULT_CLOCK_MHZ, FoldingSearch, copy_graph, greedy_fold, plumbed_resources
from .dataflow.target import Throughput
from .devices import DEFAULT_MARGIN, make_budget, unit_names

__all__ = ["explore", "sweep", "format_table", "plot"]

METHODS = ("hwgen", "finn-greedy")


def _row(method, target_fps, budget_cycles, res, cycles, clock, limits, source=""):
    """One row: ``clock`` a :class:`~hwgen.dataflow.target.Throughput` giving the clock."""
    return {"method": method, "target_fps": target_fps, "budget_cycles": budget_cycles, "cycles": cycles,
            "fps": clock.fps_at(cycles), "meets_target": cycles <= budget_cycles,
            "LUT": res["LUT"], "FF": res["FF"], "BRAM18": res["BRAM18"], "DSP": res["DSP"],
            "fits": None if limits is None else limits.fits(res), "source": source}


def sweep(graph, *, clock_mhz=DEFAULT_CLOCK_MHZ, points=12, limits=None, family=None, progress=False, targets=None):
    """Rows (dicts) for ``graph`` over ``points`` log-spaced targets (or the given fps ``targets``)."""
    family = family or (limits.family if limits is not None else "xilinx")
    # with a device, each target gets what `build --device D --fps F` picks (memory styles too)
    s = FoldingSearch(graph, (), family, mem_styles=limits is not None)
    clock = Throughput(clock_mhz)
    if targets is None:
        lo, hi = clock.fps_at(s.slowest), clock.fps_at(s.fastest)
        n = max(2, int(points))
        targets = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)] if hi > lo else [hi]
    rows = []
    best = None                      # a folding meeting a tighter budget meets every looser one
    budgets = sorted({max(1, Throughput(clock_mhz, f).cycles) for f in targets})
    with _progress.task("explore", enabled=bool(progress), total=len(budgets), unit="targets") as t:
        for b in budgets:                                  # fastest first
            best = _target(s, graph, b, clock, limits, family, rows, best)
            t.update(t.done + 1, stage=f"at {clock.fps_at(b):,.0f} fps")
        if limits is not None:
            fit = s.fastest_fitting(limits)
            if fit is not None:
                b = fit.cycles
                rows.append(_row("hwgen", clock.fps_at(b), b, fit.resources, fit.cycles, clock, limits,
                                 "fastest fitting"))
    rows.sort(key=lambda r: (r["target_fps"], METHODS.index(r["method"])))
    return rows


def _target(s, graph, b, clock, limits, family, rows, best):
    """Append the rows of one cycle budget ``b``: the search's folding (or ``best``, the cheapest
    found at a tighter budget, when it is cheaper) and the FINN-style greedy one; return the new best."""
    fps = clock.fps_at(b)
    r = s.solve(b, limits) if b >= s.fastest else None
    if r is not None:
        if best is not None and (not best.fits, best.resources["LUT"]) <= (not r.fits, r.resources["LUT"]):
            r = best
        best = r
        rows.append(_row("hwgen", fps, b, r.resources, r.cycles, clock, limits, r.source))
    g = greedy_fold(copy_graph(graph), b)
    res, cyc = plumbed_resources(g, family)
    rows.append(_row("finn-greedy", fps, b, res, cyc, clock, limits))
    return best


def explore(model_or_path, *, device=None, max_lut=None, max_ff=None, max_bram=None, max_dsp=None,
            margin=DEFAULT_MARGIN, family=None, clock_mhz=DEFAULT_CLOCK_MHZ, points=12, png=None,
            progress=True, topk=None):
    """Sweep throughput targets for a QONNX model; returns the rows (see :func:`sweep`),
    writes a LUT-vs-fps plot to ``png`` if given."""
    import os

    from . import validate
    from .build import run_until
    model_or_path = validate.model_source(model_or_path)
    clock_mhz = validate.positive_number(clock_mhz, "clock_mhz")
    topk = validate.positive_int(topk, "topk", optional=True)
    if validate.positive_int(points, "points") < 2:
        from .errors import HwgenError
        raise HwgenError(f"points must be at least 2, not {points}")
    if png is not None:
        png = validate.output_file(png, "png", inputs=[model_or_path])
    limits = make_budget(device, max_lut=max_lut, max_ff=max_ff, max_bram=max_bram, max_dsp=max_dsp,
                         margin=margin, family=family)
    name = os.path.splitext(os.path.basename(model_or_path))[0] if isinstance(model_or_path, str) else "model"
    _, graph = run_until(model_or_path, "lower", name=name, topk=topk)
    rows = sweep(graph, clock_mhz=clock_mhz, points=points, limits=limits, family=family, progress=progress)
    if png:
        plot(rows, png, title=f"{getattr(graph, 'name', 'model')}" + (f" on {limits.name}" if limits else ""),
             limits=limits)
    return rows


def format_table(rows, family="xilinx"):
    u = unit_names(family)
    head = ["method", "target fps", "cycles/frame", "fps", u["LUT"], u["FF"], u["BRAM18"], u["DSP"], "meets", "fits", "note"]
    out = [head]
    for r in rows:
        out.append([r["method"], f"{r['target_fps']:,.0f}", f"{r['cycles']:,}", f"{r['fps']:,.0f}", f"{r['LUT']:,}",
                    f"{r['FF']:,}", f"{r['BRAM18']:,}", f"{r['DSP']:,}", "yes" if r["meets_target"] else "no",
                    "—" if r["fits"] is None else ("yes" if r["fits"] else "no"),
                    r["source"] if r["source"] not in ("", "search") else ""])
    w = [max(len(row[i]) for row in out) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w[i]) if i not in (0, 10) else c.ljust(w[i]) for i, c in enumerate(row)).rstrip()
             for row in out]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def plot(rows, path, title="", limits=None):
    try:
        import matplotlib
    except ImportError:
        from .errors import HwgenError
        raise HwgenError("--png needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, style in (("hwgen", "o-"), ("finn-greedy", "s--")):
        pts = sorted((r["fps"], r["LUT"]) for r in rows if r["method"] == method and r["meets_target"])
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=method + (" (search)" if method == "hwgen" else ""))
    if limits is not None and limits.limits.get("LUT"):
        ax.axhline(limits.limits["LUT"], color="red", lw=1, ls=":", label=f"{limits.name} LUT limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("frames/s")
    ax.set_ylabel("LUT (estimate, plumbing included)")
    ax.set_title(title or "throughput vs LUT")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
