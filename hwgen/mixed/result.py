"""What ``hwgen search`` returns and writes: one :class:`Row` per configuration proven, the
:class:`SearchResult` (its table, summary, frontier and chosen configuration), and the files
``search.md``, ``search.json`` and ``frontier.png``."""

import json
import os
from dataclasses import asdict, dataclass, field

__all__ = ["Row", "SearchResult", "format_assignment", "mark_dominated", "write_result"]


@dataclass
class Row:
    """One proven configuration (``kind`` "mixed", "uniform" or "start": the given Brevitas model)."""

    name: str
    kind: str
    assignment: dict                 # {layer: (w_bits, a_bits)}
    predicted_loss: float            # sum of the layers' sensitivities
    predicted_lut: int               # cost table
    estimated_lut: int               # build report
    synth_lut: int                   # yosys synth_xilinx LUT + LUTRAM; None without synthesis
    brevitas_accuracy: float
    hardware_accuracy: float
    agreement: float                 # fraction of held-out frames where hardware class = Brevitas class
    mismatches: int
    cycles_per_frame: float
    seconds: dict                    # qat, export, build, verify, synth
    build: str                       # OUT/<build>/, OUT/<build>.pt, OUT/<build>.onnx (shared by equal assignments)
    dominated_by: str = None         # a cheaper baseline at least as accurate (mixed rows only)
    measured_drop: float = None      # Σ over layers of the one-layer-at-a-time post-training accuracy drop
    restarts: list = field(default_factory=list)   # per QAT restart: {"seed", "val_accuracy", "test_accuracy"}
    val_accuracy: float = None       # Brevitas accuracy on the validation set (of the kept restart)
    synth_error: str = None          # why synthesis failed (the estimate then stands in for synth_lut)

    @property
    def lut(self):
        """Synthesised LUTs, or the build's estimate without synthesis."""
        return self.estimated_lut if self.synth_lut is None else self.synth_lut

    @property
    def label(self):
        return format_assignment(self.assignment)


@dataclass
class SearchResult:
    """Rows (mixed first, cheapest first; then the baselines), figures and written files."""

    rows: list
    float_accuracy: float
    timings: dict                    # train_float, sensitivity, cost, allocation, search, configs, total
    out: str
    synth: bool
    fps: float
    clock_mhz: float
    files: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)      # inputs in the train, val and test sets
    max_lut: int = None              # the LUT budget (max_lut / device), if one was given
    calibration: str = None          # how far the sweep went and why
    min_accuracy: float = None       # the accuracy floor, if one was given

    def frontier(self):
        """The mixed rows no uniform baseline dominates, cheapest first."""
        return sorted((r for r in self.rows if r.kind == "mixed" and not r.dominated_by), key=lambda r: r.lut)

    def chosen(self):
        """``(row, why)``: the answer to the budget — the most accurate configuration within ``max_lut``
        (then the cheapest), or the cheapest reaching ``min_accuracy`` (then the most accurate); ``(None,
        why)`` when none qualifies; ``None`` without a budget."""
        if self.max_lut is not None:
            fit = [r for r in self.rows if r.lut <= self.max_lut]
            why = f"the most accurate within {self.max_lut:,} LUT"
            return (max(fit, key=lambda r: (r.hardware_accuracy, -r.lut)) if fit else None), why
        if self.min_accuracy is not None:
            fit = [r for r in self.rows if r.hardware_accuracy >= self.min_accuracy]
            why = f"the cheapest at {self.min_accuracy:.2%} accuracy or more"
            return (min(fit, key=lambda r: (r.lut, -r.hardware_accuracy)) if fit else None), why
        return None

    def table(self):
        """The results as a markdown table."""
        lut = "synth LUT" if self.synth else "synth LUT (not run)"
        lines = [f"| config | assignment | predicted loss Σ Ω | one-layer drops | cost-table LUT | estimated LUT | {lut} "
                 "| Brevitas acc. | hardware acc. | mismatches | cycles/frame | QAT restarts: test acc. | dominated by |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            synth = "failed" if r.synth_error else "-" if r.synth_lut is None else f"{r.synth_lut:,}"
            drop = "-" if r.measured_drop is None else f"{r.measured_drop:.2%}"
            lines.append(f"| {r.name} | {r.label} | {r.predicted_loss:.4g} | {drop} | {r.predicted_lut:,} | {r.estimated_lut:,} "
                         f"| {synth} | {r.brevitas_accuracy:.2%} | {r.hardware_accuracy:.2%} | {r.mismatches} "
                         f"| {r.cycles_per_frame:g} | {_spread(r.restarts)} | {r.dominated_by or '-'} |")
        return "\n".join(lines)

    def summary(self, reference="w4a4", tolerance=0.005):
        """Lines: the mixed rows a baseline dominates, and the cheapest mixed row within ``tolerance`` of the
        hardware accuracy of baseline ``reference`` against it."""
        dominated = [f"{r.name} (by {r.dominated_by})" for r in self.rows if r.dominated_by and r.kind == "mixed"]
        lines = [f"frontier (the allocation's configurations no uniform baseline dominates, proven): "
                 f"{', '.join(r.name for r in self.frontier()) or 'none'}",
                 f"mixed configurations dominated by a uniform baseline: {', '.join(dominated) or 'none'}"]
        for r in self.rows:
            if r.kind == "start":
                lines.append(f"the given model ({r.label}): {r.hardware_accuracy:.2%}, {r.lut:,} LUT; " + (
                    f"{r.dominated_by} is cheaper and at least as accurate" if r.dominated_by else
                    "no cheaper configuration is as accurate"))
        ref = next((r for r in self.rows if r.kind == "uniform" and r.name == reference), None)
        close = [r for r in self.rows
                 if ref and r.kind == "mixed" and r.hardware_accuracy >= ref.hardware_accuracy - tolerance]
        if close:
            best = min(close, key=lambda r: r.lut)
            lines.append(f"cheapest mixed configuration within {tolerance:.1%} of {reference}'s hardware accuracy: "
                         f"{best.name}, {best.hardware_accuracy:.2%} vs {ref.hardware_accuracy:.2%}, {best.lut:,} vs "
                         f"{ref.lut:,} LUT ({best.lut / ref.lut - 1:+.1%})")
        if self.calibration:
            lines.append(self.calibration)
        lines.append(self.predictiveness())
        pick = self.chosen()
        if pick is not None:
            row, why = pick
            lut = "synthesised" if self.synth else "estimated"
            lines.append(f"chosen ({why}, {lut} LUT): " + (
                f"{row.name} ({row.label}), {row.hardware_accuracy:.2%}, {row.lut:,} LUT" if row else "none qualifies"))
        return lines

    def predictiveness(self):
        """How well the Hessian sensitivity (Σ Ω) and the one-layer-at-a-time measured drop rank the
        configurations' accuracy after QAT (Spearman's ρ with the hardware accuracy loss)."""
        from scipy.stats import spearmanr
        rows = {tuple(sorted(r.assignment.items())): r for r in self.rows}.values()      # equal assignments once
        loss = [self.float_accuracy - r.hardware_accuracy for r in rows]
        if len(loss) < 3 or len(set(loss)) < 2:
            return "predictiveness of the sensitivities: too few distinct configurations to rank"
        rho = [spearmanr([getattr(r, k) for r in rows], loss).statistic for k in ("predicted_loss", "measured_drop")]
        return (f"predictiveness, Spearman ρ with the accuracy lost after QAT over {len(loss)} configurations: "
                f"Hessian sensitivity Σ Ω {rho[0]:+.2f}, one-layer-at-a-time measured drop {rho[1]:+.2f}")

    def timing_table(self):
        """The step times as a markdown table."""
        names = {"train_float": "float training", "sensitivity": "sensitivity", "cost": "cost table",
                 "allocation": "allocation (frontier)", "search": "search time = sensitivity + cost + allocation",
                 "configs": "QAT + build + verify + synthesis of all configurations", "total": "total"}
        return "\n".join(["| step | seconds |", "|---|---|"] +
                         [f"| {names[k]} | {self.timings[k]:.1f} |" for k in names])


def _spread(restarts):
    """``"97.8–98.6% (3)"``: the test accuracies of a configuration's QAT restarts (before the validation
    set picks one), or ``"-"`` for a single run."""
    acc = [x["test_accuracy"] for x in restarts]
    if len(acc) < 2:
        return "-"
    return f"{100 * min(acc):.2f}–{100 * max(acc):.2f}% ({len(acc)})"


def format_assignment(assignment):
    """``"fc0 W4A3 · fc1 W2A2 · add0 A3 · fc2 W4"``."""
    return " · ".join(f"{n} " + ("" if w is None else f"W{w}") + ("" if a is None else f"A{a}")
                      for n, (w, a) in assignment.items())


def mark_dominated(rows):
    """Set ``dominated_by`` of each mixed row to the cheapest baseline with fewer LUTs and at least its
    hardware accuracy; of the ``start`` row (a given Brevitas model), to the cheapest such row of any kind."""
    rows_by_lut = sorted(rows, key=lambda r: r.lut)
    for r in rows:
        if r.kind in ("mixed", "start"):
            kinds = ("uniform",) if r.kind == "mixed" else ("uniform", "mixed")
            better = (b.name for b in rows_by_lut
                      if b.kind in kinds and b.lut < r.lut and b.hardware_accuracy >= r.hardware_accuracy)
            r.dominated_by = next(better, None)


def _plot(rows, path, synth, fps):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = (("o-", "mixed precision (frontier)", (4, 4), lambda r: r.kind == "mixed" and not r.dominated_by, {}),
              ("o", "mixed, dominated by a baseline", (4, 4), lambda r: r.kind == "mixed" and r.dominated_by,
               {"markerfacecolor": "none"}),
              ("s", "uniform baselines", (4, -11), lambda r: r.kind == "uniform", {}),
              ("*", "given Brevitas model", (4, 4), lambda r: r.kind == "start", {"markersize": 11}))
    for style, label, offset, member, kw in groups:
        pts = sorted((r for r in rows if member(r)), key=lambda r: r.lut)
        if not pts:
            continue
        ax.plot([r.lut for r in pts], [100 * r.hardware_accuracy for r in pts], style, label=label, **kw)
        for r in pts:
            ax.annotate(r.name, (r.lut, 100 * r.hardware_accuracy), textcoords="offset points", xytext=offset,
                        fontsize=8)
    ax.set_xlabel(("synthesised" if synth else "estimated") + " LUTs (xilinx)")
    ax.set_ylabel("hardware accuracy, held-out set (%)")
    ax.set_title(f"accuracy vs LUTs at {fps:g} frames/s")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sizes(sizes):
    """``"train 718, validation 180, test 899 inputs"``."""
    if not sizes:
        return ""
    return f"train {sizes['train']:,}, validation {sizes['val']:,}, test {sizes['test']:,} inputs"


def write_result(res):
    """search.md, search.json and frontier.png into ``res.out``."""
    files = {k: os.path.join(res.out, f) for k, f in (("md", "search.md"), ("json", "search.json"),
                                                        ("png", "frontier.png"))}
    res.files = files
    summary = "".join(f"- {line}\n" for line in res.summary())
    with open(files["md"], "w") as f:
        f.write(f"# hwgen search\n\n{res.fps:g} frames/s at {res.clock_mhz:g} MHz; float accuracy (test set): "
                f"{res.float_accuracy:.2%}; {_sizes(res.sizes)}\n\n{res.table()}\n\n{summary}\n"
                f"{res.timing_table()}\n")
    doc = {**asdict(res), "rows": [{**asdict(r), "assignment_text": r.label,
                                    "assignment": {n: list(p) for n, p in r.assignment.items()}} for r in res.rows]}
    pick = res.chosen()
    doc["chosen"] = pick[0].name if pick and pick[0] else None
    doc["frontier"] = [r.name for r in res.frontier()]
    with open(files["json"], "w") as f:
        json.dump(doc, f, indent=1)
    _plot(res.rows, files["png"], res.synth, res.fps)
