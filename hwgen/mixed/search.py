"""``hwgen search``: from a float model and a throughput target to verified accelerators on the
accuracy–LUT frontier, next to uniform baselines.

Steps, each timed: train the float model (seeded); per-layer sensitivity
(:mod:`hwgen.mixed.sensitivity`); the cost table at the throughput target
(:mod:`hwgen.mixed.cost`); the allocation frontier (:mod:`hwgen.mixed.allocate`).  The sum of
the last three is the *search time*.  Then every frontier configuration and every uniform
baseline is proven: quantisation-aware training from the float weights, QONNX export, ``hwgen
build``, ``hwgen verify`` over the held-out set (hardware accuracy, mismatches) and, unless
``synth=False``, yosys ``synth_xilinx`` (LUT + LUTRAM).

``OUT/`` receives per configuration ``<name>.pt`` (Brevitas state_dict), ``<name>.onnx`` and the
build ``<name>/``; and ``search.md``, ``search.json``, ``frontier.png``.
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field

from ..errors import HwgenError

__all__ = ["search", "SearchResult", "Row", "format_assignment"]

BASELINES = ((2, 2), (3, 3), (4, 4), (8, 8))
REFERENCE = (4, 4)          # the baseline whose cost ends the frontier sweep
STATS_FRAMES = 512          # training inputs that give the cost model each layer's pre-activation spread
QAT_LR = 5e-3
FLOAT_LR = 1e-2


@dataclass
class Row:
    """One proven configuration (``kind`` "mixed" or "uniform")."""

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

    def table(self):
        """The results as a markdown table."""
        lut = "synth LUT" if self.synth else "synth LUT (not run)"
        lines = [f"| config | assignment | predicted loss Σ Ω | one-layer drops | cost-table LUT | estimated LUT | {lut} "
                 "| Brevitas acc. | hardware acc. | mismatches | cycles/frame | dominated by |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            synth = "-" if r.synth_lut is None else f"{r.synth_lut:,}"
            drop = "-" if r.measured_drop is None else f"{r.measured_drop:.2%}"
            lines.append(f"| {r.name} | {r.label} | {r.predicted_loss:.4g} | {drop} | {r.predicted_lut:,} | {r.estimated_lut:,} "
                         f"| {synth} | {r.brevitas_accuracy:.2%} | {r.hardware_accuracy:.2%} | {r.mismatches} "
                         f"| {r.cycles_per_frame:g} | {r.dominated_by or '-'} |")
        return "\n".join(lines)

    def summary(self, reference="w4a4", tolerance=0.005):
        """Lines: the mixed rows a baseline dominates, and the cheapest mixed row within ``tolerance`` of the
        hardware accuracy of baseline ``reference`` against it."""
        dominated = [f"{r.name} (by {r.dominated_by})" for r in self.rows if r.dominated_by]
        lines = [f"mixed configurations dominated by a uniform baseline: {', '.join(dominated) or 'none'}"]
        ref = next((r for r in self.rows if r.kind == "uniform" and r.name == reference), None)
        close = [r for r in self.rows
                 if ref and r.kind == "mixed" and r.hardware_accuracy >= ref.hardware_accuracy - tolerance]
        if close:
            best = min(close, key=lambda r: r.lut)
            lines.append(f"cheapest mixed configuration within {tolerance:.1%} of {reference}'s hardware accuracy: "
                         f"{best.name}, {best.hardware_accuracy:.2%} vs {ref.hardware_accuracy:.2%}, {best.lut:,} vs "
                         f"{ref.lut:,} LUT ({best.lut / ref.lut - 1:+.1%})")
        lines.append(self.predictiveness())
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


def format_assignment(assignment):
    """``"fc0 W4A3 · fc1 W2A2 · fc2 W4"``."""
    return " · ".join(f"{n} W{w}" + ("" if a is None else f"A{a}") for n, (w, a) in assignment.items())


def _check(fps, clock_mhz, n_points, budgets, baselines, sim):
    if not isinstance(n_points, int) or isinstance(n_points, bool) or n_points < 1:
        raise HwgenError(f"search: n_points must be a whole number ≥ 1, not {n_points!r}")
    for what, v in (("fps", fps), ("clock_mhz", clock_mhz)):
        if not v > 0:
            raise HwgenError(f"search: {what} must be positive, not {v!r}")
    if budgets is not None and (not budgets or any(not b > 0 for b in budgets)):
        raise HwgenError(f"search: budgets must be positive LUT counts, not {budgets!r}")
    for pair in baselines:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise HwgenError(f"search: a baseline must be a pair (w_bits, a_bits), not {pair!r}")
    if sim not in ("verilator", "icarus"):
        raise HwgenError(f"search: sim must be verilator or icarus, not {sim!r}")


def _timed(timings, key, report, fn, *args, **kw):
    """``fn(*args, **kw)``, its wall time stored in ``timings[key]`` and reported."""
    t = time.perf_counter()
    res = fn(*args, **kw)
    timings[key] = time.perf_counter() - t
    report(f"{key}: {timings[key]:.1f} s")
    return res


def _epoch_printer(progress, tag):
    def p(ep, n, loss):
        if ep == n or ep % 10 == 0:
            progress(f"  {tag}: epoch {ep}/{n} loss {loss:.3f}")
    return p


def _measured_drop(model, x, y, assignment):
    """Σ over the layers of the accuracy lost by quantising that layer alone (post-training)."""
    from .sensitivity import measured_drop
    return float(sum(measured_drop(model, x, y, n, w, a) for n, (w, a) in assignment.items()))


def _synthesise(m, build_dir, manifest, progress):
    """Record LUT + LUTRAM of yosys synth_xilinx of ``build_dir`` and its run time into measurements ``m``."""
    from .. import flows
    flows.write_flows(build_dir, manifest)
    doc = flows.run(build_dir, "synth-xilinx", progress=False)
    m["synth_lut"], m["seconds"]["synth"] = int(doc["total"]["LUT"] + doc["total"]["LUTRAM"]), doc["seconds"]
    progress(f"{m['build']}: synthesised {m['synth_lut']:,} LUT ({doc['seconds']:.0f} s)")


def _prove_all(configs, ctx, cost):
    """{assignment key: measurements} of every distinct assignment of ``configs``, the most costly (by
    ``cost(assignment)``) first: its synthesis, the slowest, runs in a background thread (two of them)
    while the other configurations are trained, built, simulated and synthesised."""
    from concurrent.futures import ThreadPoolExecutor
    done, pending = {}, []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, _, assignment in sorted(configs, key=lambda c: -cost(c[2])):
            key = tuple(assignment.items())
            if key in done:
                continue
            ctx["progress"](f"{name}: {format_assignment(assignment)}")
            m, manifest = _prove(name, assignment, ctx)
            done[key] = m
            ctx["progress"](f"{name}: Brevitas {m['brevitas_accuracy']:.2%}, hardware {m['hardware_accuracy']:.2%}, "
                            f"{m['mismatches']} mismatches, estimated {m['estimated_lut']:,} LUT")
            if ctx["synth"]:
                pending.append(pool.submit(_synthesise, m, os.path.join(ctx["out"], name), manifest,
                                           ctx["progress"]))
        for f in pending:
            f.result()
    return done


def _prove(name, assignment, ctx):
    """QAT, export, build and verify one configuration; returns the measurements and the build's manifest."""
    import numpy as np
    import torch

    import hwgen

    from .quantize import quantize
    from .train import accuracy, logits, seed_everything, train

    xtr, ytr, xte, yte = ctx["data"]
    out, sec = ctx["out"], {}
    t = time.perf_counter()
    seed_everything(ctx["seed"])
    q = train(quantize(ctx["model"], assignment, ctx["in_bits"]), xtr, ytr, epochs=ctx["epochs_qat"], lr=QAT_LR,
              seed=ctx["seed"], progress=_epoch_printer(ctx["progress"], f"{name} QAT"))
    ref = logits(q, xte)
    sec["qat"] = time.perf_counter() - t
    t = time.perf_counter()
    onnx_path = os.path.join(out, f"{name}.onnx")
    torch.save(q.state_dict(), os.path.join(out, f"{name}.pt"))
    hwgen.export_brevitas(q, torch.from_numpy(xte[:1]), onnx_path)
    sec["export"] = time.perf_counter() - t
    build_dir = os.path.join(out, name)
    b = hwgen.build(onnx_path, build_dir, fps=ctx["fps"], clock_mhz=ctx["clock_mhz"], name=name, progress=False)
    sec["build"] = b.seconds
    t = time.perf_counter()
    r = hwgen.verify(build_dir, inputs=xte, sim=ctx["sim"], seed=ctx["seed"], progress=False)
    sec["verify"] = time.perf_counter() - t
    return {"estimated_lut": int(b.report["resources"]["LUT"]), "synth_lut": None,
            "brevitas_accuracy": accuracy(ref, yte), "hardware_accuracy": accuracy(r.outputs, yte),
            "agreement": float((r.outputs.argmax(1) == np.asarray(ref).argmax(1)).mean()),
            "mismatches": int(r.mismatches),
            "cycles_per_frame": float(r.cycles_per_frame or r.estimated_cycles_per_frame),
            "seconds": {k: round(v, 2) for k, v in sec.items()}, "build": name}, b.manifest


def _mark_dominated(rows):
    """Set ``dominated_by`` of each mixed row to the cheapest baseline with fewer LUTs and at least its
    hardware accuracy."""
    base = sorted((r for r in rows if r.kind == "uniform"), key=lambda r: r.lut)
    for r in rows:
        if r.kind == "mixed":
            better = (b.name for b in base if b.lut < r.lut and b.hardware_accuracy >= r.hardware_accuracy)
            r.dominated_by = next(better, None)


def _plot(rows, path, synth, fps):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind, style, label, offset in (("mixed", "o-", "mixed precision (frontier)", (4, 4)),
                                       ("uniform", "s", "uniform baselines", (4, -11))):
        pts = sorted((r for r in rows if r.kind == kind), key=lambda r: r.lut)
        if not pts:
            continue
        ax.plot([r.lut for r in pts], [100 * r.hardware_accuracy for r in pts], style, label=label)
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


def _write(res):
    """search.md, search.json and frontier.png into ``res.out``."""
    files = {k: os.path.join(res.out, f) for k, f in (("md", "search.md"), ("json", "search.json"),
                                                        ("png", "frontier.png"))}
    res.files = files
    summary = "".join(f"- {line}\n" for line in res.summary())
    with open(files["md"], "w") as f:
        f.write(f"# hwgen search\n\n{res.fps:g} frames/s at {res.clock_mhz:g} MHz; float accuracy (held-out): "
                f"{res.float_accuracy:.2%}\n\n{res.table()}\n\n{summary}\n{res.timing_table()}\n")
    doc = {**asdict(res), "rows": [{**asdict(r), "assignment_text": r.label,
                                    "assignment": {n: list(p) for n, p in r.assignment.items()}} for r in res.rows]}
    with open(files["json"], "w") as f:
        json.dump(doc, f, indent=1)
    _plot(res.rows, files["png"], res.synth, res.fps)


def search(float_model, data, *, out, in_bits=4, fps=1e6, clock_mhz=100.0, budgets=None, n_points=6,
           baselines=BASELINES, epochs_float=40, epochs_qat=40, sens_samples=64, seed=0, sim="verilator",
           synth=True, progress=print):
    """Search per-layer bit widths of ``float_model`` (untrained; see :mod:`hwgen.mixed.quantize` for the
    layers it may contain) for the accuracy–LUT frontier at ``fps`` frames/s and ``clock_mhz``, and prove it.

    ``data``: ``(x_train, y_train, x_test, y_test)`` numpy arrays, inputs in [0, 1] shaped like the
    model's input, quantised to ``in_bits`` unsigned bits.  ``budgets``: LUT budgets to allocate at;
    by default a sweep of ``n_points`` budgets.  ``baselines``: uniform ``(w, a)`` pairs (the last
    layer's output stays unquantised).  ``epochs_float`` 0 keeps ``float_model`` as trained.  Training is
    seeded with ``seed``; the model's initial weights are the caller's (seed before building it).
    ``progress``: a function of one line (``None`` is silent).  Torch runs on one thread meanwhile (these
    small models train many times faster so).  Returns a :class:`SearchResult`.
    """
    import torch

    _check(fps, clock_mhz, n_points, budgets, baselines, sim)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ctx = {"out": os.path.abspath(os.fspath(out)), "in_bits": in_bits, "fps": fps, "clock_mhz": clock_mhz,
           "budgets": budgets, "n_points": n_points, "baselines": baselines, "epochs_float": epochs_float,
           "epochs_qat": epochs_qat, "sens_samples": sens_samples, "seed": seed, "sim": sim, "synth": synth,
           "progress": progress or (lambda line: None)}
    try:
        return _search(float_model, data, ctx)
    finally:
        torch.set_num_threads(threads)


def _search(float_model, data, ctx):
    """The steps of :func:`search`; ``ctx`` holds its options."""
    import torch

    from .allocate import frontier, predicted_loss
    from .cost import cost_table
    from .quantize import uniform
    from .sensitivity import sensitivity
    from .train import accuracy, logits, seed_everything, train

    out, seed, progress = ctx["out"], ctx["seed"], ctx["progress"]
    os.makedirs(out, exist_ok=True)
    xtr, ytr, xte, yte = data
    timings, t0 = {}, time.perf_counter()
    seed_everything(seed)
    model = _timed(timings, "train_float", progress, train, float_model, xtr, ytr, epochs=ctx["epochs_float"],
                   lr=FLOAT_LR, seed=seed, progress=_epoch_printer(progress, "float"))
    float_acc = accuracy(logits(model, xte), yte)
    progress(f"float accuracy (held-out): {float_acc:.2%}")
    sens = _timed(timings, "sensitivity", progress, sensitivity, model, xtr, ytr, n_samples=ctx["sens_samples"],
                  seed=seed)
    costs = _timed(timings, "cost", progress, cost_table, model, torch.from_numpy(xtr[:STATS_FRAMES]),
                   ctx["in_bits"], ctx["fps"], ctx["clock_mhz"])
    # the sweep ends at the cost of the reference baseline (uniform W4A4 when a baseline): the
    # question is what a mixed assignment saves at its accuracy, not how to spend more
    ref = [wa for wa in ctx["baselines"] if tuple(wa) == REFERENCE] or []
    cap = costs.total(uniform(model, *REFERENCE)) if ref else None
    allocs = _timed(timings, "allocation", progress, frontier, sens, costs, n=ctx["n_points"], max_lut=cap,
                    budgets=ctx["budgets"])
    timings["search"] = timings["sensitivity"] + timings["cost"] + timings["allocation"]
    progress(f"search time (sensitivity + cost + allocation): {timings['search']:.1f} s, "
             f"{len(allocs)} frontier configurations")

    configs = [(f"mixed_{i}", "mixed", a.assignment) for i, a in enumerate(allocs)]
    configs += [(f"w{w}a{a}", "uniform", uniform(model, w, a)) for w, a in ctx["baselines"]]
    t = time.perf_counter()
    done = _prove_all(configs, {**ctx, "model": model, "data": data}, costs.total)
    rows = [Row(name, kind, dict(a), predicted_loss(sens, a), costs.total(a), **done[tuple(a.items())],
                measured_drop=_measured_drop(model, xte, yte, a)) for name, kind, a in configs]
    timings["configs"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    _mark_dominated(rows)
    res = SearchResult(rows, float_acc, {k: round(v, 2) for k, v in timings.items()}, out, ctx["synth"], ctx["fps"],
                       ctx["clock_mhz"])
    _write(res)
    return res
