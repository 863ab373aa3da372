"""``hwgen search``: from a float model and a throughput target to verified accelerators on the
accuracy–LUT frontier, next to uniform baselines.

A validation set (given, or carved from the training data: ``val_fraction``, stratified, seeded)
picks among the QAT restarts and calibrates the sweep; the held-out test set is only measured.

Steps, each timed: train the float model (seeded); per-layer sensitivity
(:mod:`hwgen.mixed.sensitivity`); the cost table at the throughput target
(:mod:`hwgen.mixed.cost`); the allocation frontier (:mod:`hwgen.mixed.allocate`).  The sum of
the last three is the *search time*.  The uniform baselines are proven first, then the frontier's
configurations: quantisation-aware training from the float weights (``qat_restarts`` seeds, the
best on the validation set kept), QONNX export, ``hwgen build``, ``hwgen verify`` over the test set
(hardware accuracy, mismatches) and, unless ``synth=False``, yosys ``synth_xilinx`` (LUT + LUTRAM).
The baselines' validation accuracies say how far the frontier needs to go (:func:`_sweep`): down to
the predicted loss of the least precise baseline that is as accurate as uniform W4A4.

``OUT/`` receives per configuration ``<name>.pt`` (Brevitas state_dict), ``<name>.onnx`` and the
build ``<name>/``; and ``search.md``, ``search.json``, ``frontier.png``.
"""

import os
import time

from ..errors import HwgenError
from .result import Row, SearchResult, format_assignment, mark_dominated, write_result
from .. import progress as _progress

__all__ = ["search", "SearchResult", "Row", "format_assignment"]

BASELINES = ((2, 2), (3, 3), (4, 4), (8, 8))
REFERENCE = (4, 4)          # the baseline whose cost ends the frontier sweep
STATS_FRAMES = 512          # training inputs that give the cost model each layer's pre-activation spread
QAT_LR = 5e-3
FLOAT_LR = 1e-2


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


def _reporter(progress):
    """The one-line reporting function of ``progress`` (see :func:`search`)."""
    if callable(progress):
        return progress
    if progress is None or progress is False:
        return lambda line: None
    return lambda line: _progress.info(line)


def _epoch_printer(progress, tag, every=10):
    """A training progress callback reporting every ``every`` epochs and the last."""
    def p(ep, n, loss):
        if ep == n or ep % every == 0:
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
    try:
        doc = flows.run(build_dir, "synth-xilinx", progress=False)
    except HwgenError as e:         # one failed synthesis leaves the others' results standing
        m["synth_error"] = str(e)
        progress(f"{m['build']}: synthesis failed, the estimate stands in: {e}")
        return
    m["synth_lut"], m["seconds"]["synth"] = int(doc["total"]["LUT"] + doc["total"]["LUTRAM"]), doc["seconds"]
    progress(f"{m['build']}: synthesised {m['synth_lut']:,} LUT ({doc['seconds']:.0f} s)")


def _key(kind, assignment):
    """Configurations with equal keys are proven once: equal assignments, except the given start model."""
    return kind == "start", tuple(assignment.items())


class _Prover:
    """Proves configurations: ``prove(configs)`` trains, builds and verifies every new distinct
    assignment, the most costly (by ``cost``) first, and hands its synthesis, the slowest step, to
    one of two background threads; ``finish()`` waits for them.  ``done``: {key: measurements}."""

    def __init__(self, ctx, cost):
        from concurrent.futures import ThreadPoolExecutor
        self.ctx, self.cost, self.done, self.pending = ctx, cost, {}, []
        self.pool = ThreadPoolExecutor(max_workers=2)

    def prove(self, configs):
        ctx = self.ctx
        for name, kind, assignment in sorted(configs, key=lambda c: -self.cost(c[2])):
            key = _key(kind, assignment)
            if key in self.done:
                continue
            ctx["progress"](f"{name}: {format_assignment(assignment)}")
            m, manifest = _prove(name, assignment, ctx, ctx["start"] if kind == "start" else None)
            self.done[key] = m
            ctx["progress"](f"{name}: Brevitas {m['brevitas_accuracy']:.2%}, hardware {m['hardware_accuracy']:.2%}, "
                            f"{m['mismatches']} mismatches, estimated {m['estimated_lut']:,} LUT")
            if ctx["synth"]:
                self.pending.append(self.pool.submit(_synthesise, m, os.path.join(ctx["out"], name), manifest,
                                                     ctx["progress"]))
        return self.done

    def finish(self):
        try:
            for f in self.pending:
                f.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return self.done


def _prove(name, assignment, ctx, given=None):
    """QAT, export, build and verify one configuration (``given``: a trained Brevitas model to take as
    it is instead of QAT); returns the measurements and the build's manifest."""
    import numpy as np
    import torch

    from ..build import build
    from ..frontend import export_brevitas
    from ..verify import verify
    from .quantize import quantize
    from .train import accuracy, logits, seed_everything, train

    xtr, ytr, xval, yval, xte, yte = ctx["data"]
    out, sec = ctx["out"], {}
    t = time.perf_counter()
    best, restarts = (None, given.eval()) if given is not None else None, []
    for r in range(0 if given is not None else ctx["qat_restarts"]):
        seed = ctx["seed"] + r
        seed_everything(seed)
        q = train(quantize(ctx["model"], assignment, ctx["in_bits"]), xtr, ytr, epochs=ctx["epochs_qat"], lr=QAT_LR,
                  seed=seed, progress=_epoch_printer(ctx["progress"], f"{name} QAT seed {seed}", every=10 ** 9))
        restarts.append({"seed": seed, "val_accuracy": accuracy(logits(q, xval), yval),
                         "test_accuracy": accuracy(logits(q, xte), yte)})
        if best is None or restarts[-1]["val_accuracy"] > best[0]:
            best = (restarts[-1]["val_accuracy"], q)
    q, val_acc = best[1], best[0] if given is None else accuracy(logits(best[1], xval), yval)
    if len(restarts) > 1:
        ctx["progress"](f"{name}: QAT restarts (validation / test accuracy) " +
                        ", ".join(f"seed {x['seed']}: {x['val_accuracy']:.2%} / {x['test_accuracy']:.2%}"
                                  for x in restarts) + "; kept the best on validation")
    ref = logits(q, xte)
    sec["qat"] = time.perf_counter() - t
    t = time.perf_counter()
    onnx_path = os.path.join(out, f"{name}.onnx")
    torch.save(q.state_dict(), os.path.join(out, f"{name}.pt"))
    export_brevitas(q, torch.from_numpy(xte[:1]), onnx_path, progress=False)
    sec["export"] = time.perf_counter() - t
    build_dir = os.path.join(out, name)
    b = build(onnx_path, build_dir, fps=ctx["fps"], clock_mhz=ctx["clock_mhz"], name=name, progress=False)
    sec["build"] = b.seconds
    t = time.perf_counter()
    r = verify(build_dir, inputs=xte, sim=ctx["sim"], seed=ctx["seed"], progress=False)
    sec["verify"] = time.perf_counter() - t
    return {"estimated_lut": int(b.report["resources"]["LUT"]), "synth_lut": None,
            "brevitas_accuracy": accuracy(ref, yte), "hardware_accuracy": accuracy(r.outputs, yte),
            "agreement": float((r.outputs.argmax(1) == np.asarray(ref).argmax(1)).mean()),
            "mismatches": int(r.mismatches),
            "cycles_per_frame": float(r.cycles_per_frame or r.estimated_cycles_per_frame),
            "seconds": {k: round(v, 2) for k, v in sec.items()}, "build": name, "restarts": restarts,
            "val_accuracy": val_acc}, b.manifest


def search(float_model, data, *, out, in_bits=4, fps=1e6, clock_mhz=100.0, budgets=None, n_points=6,
           max_lut=None, device=None, min_accuracy=None,
           baselines=BASELINES, epochs_float=None, epochs_qat=40, qat_restarts=3, val_fraction=0.2, sens_samples=64,
           seed=0, sim="verilator", synth=True, progress=True):
    """Search per-layer bit widths of ``float_model`` (untrained; see :mod:`hwgen.mixed.quantize` for the
    layers it may contain) for the accuracy–LUT frontier at ``fps`` frames/s and ``clock_mhz``, and prove it.

    ``data``: ``(x_train, y_train, x_test, y_test)`` or ``(x_train, y_train, x_val, y_val, x_test,
    y_test)`` numpy arrays, inputs in [0, 1] shaped like the model's input, quantised to ``in_bits``
    unsigned bits; without a validation set, ``val_fraction`` of the training data (stratified,
    seeded) is set aside as one.  Training uses the rest; the validation set picks the best of
    ``qat_restarts`` QAT runs (seeds ``seed``, ``seed + 1``, …) per configuration; the test set
    gives the reported accuracies.  ``budgets``: LUT budgets to allocate at;
    by default ``n_points`` allocations from the cheapest assignment along the predicted loss down to the
    loss of the least precise uniform baseline that reaches W4A4's validation accuracy (the baselines
    are proven first; see :func:`_sweep`), or a sweep of LUT budgets up to the budget: ``max_lut`` (LUT6) or ``device`` (a Xilinx part of :data:`hwgen.devices.DEVICES`,
    its LUTs × 0.9).  The allocation prices the compute layers (the cost table); the summary then names
    the most accurate proven configuration whose whole synthesised design fits the budget.
    ``min_accuracy`` (a fraction): the summary names the cheapest proven configuration whose hardware
    accuracy reaches it.  ``baselines``: uniform ``(w, a)`` pairs (the last
    layer's output stays unquantised).  ``epochs_float`` (default 40; 0 for a Brevitas start) 0 keeps
    ``float_model`` as trained.

    ``float_model`` may instead be a trained Brevitas ``nn.Sequential`` (see
    :func:`hwgen.mixed.from_brevitas.to_float`): its float weights are the starting point, its input
    bits are ``in_bits``, and the model itself, as it is, is built and verified beside the others
    (row ``start``).  Training is
    seeded with ``seed``; the model's initial weights are the caller's (seed before building it).
    ``progress``: ``True`` reports through :mod:`hwgen.progress` (``[hwgen] …`` lines on standard
    error, the logger ``"hwgen"``), ``False``/``None`` is silent, a function of one line takes the lines.  Torch runs on one thread meanwhile (these
    small models train many times faster so).  Returns a :class:`SearchResult`.
    """
    import torch

    _check(fps, clock_mhz, n_points, budgets, baselines, sim)
    if not isinstance(qat_restarts, int) or isinstance(qat_restarts, bool) or qat_restarts < 1:
        raise HwgenError(f"search: qat_restarts must be a whole number ≥ 1, not {qat_restarts!r}")
    data = _split(data, val_fraction, seed)
    limit = _limit(max_lut, device)
    if min_accuracy is not None and not 0 < min_accuracy <= 1:
        raise HwgenError(f"search: min_accuracy must be a fraction in (0, 1], not {min_accuracy!r}")
    start = start_assignment = None
    if _is_brevitas(float_model):
        from .from_brevitas import to_float
        start = float_model
        s0 = to_float(start)
        float_model, start_assignment, in_bits = s0.model, s0.assignment, s0.in_bits
    if epochs_float is None:
        epochs_float = 0 if start is not None else 40
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ctx = {"start": start, "start_assignment": start_assignment, "out": os.path.abspath(os.fspath(out)), "in_bits": in_bits, "fps": fps, "clock_mhz": clock_mhz,
           "budgets": budgets, "n_points": n_points, "baselines": baselines, "epochs_float": epochs_float,
           "epochs_qat": epochs_qat, "qat_restarts": qat_restarts, "limit": limit, "min_accuracy": min_accuracy, "sens_samples": sens_samples, "seed": seed, "sim": sim, "synth": synth,
           "progress": _reporter(progress)}
    try:
        return _search(float_model, data, ctx)
    finally:
        torch.set_num_threads(threads)


def _is_brevitas(model):
    """True when ``model`` has a module from ``brevitas``."""
    mods = model.modules() if hasattr(model, "modules") else []
    return any(type(m).__module__.startswith("brevitas.") for m in mods)


def _limit(max_lut, device):
    """The LUT budget of ``max_lut`` and/or ``device`` (the smaller), or None."""
    from ..devices import DEFAULT_MARGIN
    from ..devices import device as lookup
    limits = []
    if max_lut is not None:
        if isinstance(max_lut, bool) or not isinstance(max_lut, (int, float)) or not max_lut > 0:
            raise HwgenError(f"search: max_lut must be a positive LUT count, not {max_lut!r}")
        limits.append(int(max_lut))
    if device is not None:
        d = lookup(device)
        if d["family"] != "xilinx":
            raise HwgenError(f"search: device must be a Xilinx part (the cost table prices LUT6), not {d['name']} "
                             f"({d['family']}); give --max-lut in LUT6 instead")
        limits.append(int(d["LUT"] * DEFAULT_MARGIN))
    return min(limits) if limits else None


def _sweep(ctx, model, sens, costs, done, n_val):
    """(frontier keyword arguments, a line saying why) of the sweep.  A budget (``max_lut``/``device``)
    or explicit ``budgets`` sweep LUT budgets up to it.  Otherwise, with uniform W4A4 among the
    baselines, the sweep runs along the predicted loss from the cheapest assignment down to W4A4's
    Σ Ω: each point the fewest LUTs predicted as accurate as its bound, the last no more costly than
    W4A4 and predicted at least as accurate.  One more point goes to the Σ Ω of the least precise
    baseline whose validation accuracy reaches W4A4's (within 0.5 points, at least one validation
    input; at least as far as the most precise baseline cheaper than W4A4, as a few hundred
    validation inputs cannot resolve a point): QAT recovers that much perturbation, and a point there
    is the cheapest one predicted as good as that baseline.  Without W4A4 it sweeps LUT budgets up
    to the least-loss assignment."""
    from .allocate import predicted_loss
    from .quantize import uniform
    if ctx["budgets"] is not None or ctx["limit"] is not None:
        return {"max_lut": ctx["limit"]}, None
    if REFERENCE not in [tuple(wa) for wa in ctx["baselines"]]:
        return {}, None
    ref_name = "w{}a{}".format(*REFERENCE)
    ref = uniform(model, *REFERENCE)
    ref_loss, ref_val = predicted_loss(sens, ref), done[_key("uniform", ref)]["val_accuracy"]
    tol = max(0.005, 1.0 / max(n_val, 1)) + 1e-9
    reach = [(predicted_loss(sens, a), f"w{w}a{b}", done[_key("uniform", a)]["val_accuracy"])
             for w, b in ctx["baselines"] for a in [uniform(model, w, b)]
             if done[_key("uniform", a)]["val_accuracy"] >= ref_val - tol]
    loss, name, acc = max(reach)
    why = (f"calibration: {name} (Σ Ω {loss:.3g}) is the least precise baseline within {tol:.2%} of {ref_name}'s "
           f"validation accuracy ({acc:.2%} vs {ref_val:.2%})")
    ref_cost = costs.total(ref)
    below = [(costs.total(a), predicted_loss(sens, a), f"w{w}a{b}") for w, b in ctx["baselines"]
             for a in [uniform(model, w, b)] if costs.total(a) < ref_cost]
    if below and max(below)[1] < loss:
        _, loss, name = max(below)
        why += f"; at least as far as {name}, the most precise baseline cheaper than {ref_name} (Σ Ω {loss:.3g})"
    return ({"min_loss": ref_loss, "extra_losses": (loss,)},
            why + f": the frontier sweeps Σ Ω down to {ref_name}'s {ref_loss:.3g}, with a point at {loss:.3g}")


def _split(data, val_fraction, seed):
    """``(x_train, y_train, x_val, y_val, x_test, y_test)`` of ``data`` (see :func:`search`)."""
    if not isinstance(data, (tuple, list)) or len(data) not in (4, 6):
        raise HwgenError("search: data must be (x_train, y_train, x_test, y_test) or (x_train, y_train, x_val, "
                         f"y_val, x_test, y_test), not {type(data).__name__} of {len(data) if hasattr(data, '__len__') else '?'}")
    if len(data) == 6:
        return tuple(data)
    if not 0 < val_fraction < 1:
        raise HwgenError(f"search: val_fraction must be between 0 and 1, not {val_fraction!r}")
    from sklearn.model_selection import train_test_split
    xtr, ytr, xte, yte = data
    xt, xv, yt, yv = train_test_split(xtr, ytr, test_size=val_fraction, random_state=seed, stratify=ytr)
    return xt, yt, xv, yv, xte, yte


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
    xtr, ytr, xval, yval, xte, yte = data
    timings, t0 = {}, time.perf_counter()
    seed_everything(seed)
    model = _timed(timings, "train_float", progress, train, float_model, xtr, ytr, epochs=ctx["epochs_float"],
                   lr=FLOAT_LR, seed=seed, progress=_epoch_printer(progress, "float"))
    float_acc = accuracy(logits(model, xte), yte)
    progress(f"float accuracy: {float_acc:.2%} on the {len(xte)} test inputs ({accuracy(logits(model, xval), yval):.2%} "
             f"on the {len(xval)} validation inputs; trained on {len(xtr)})")
    sens = _timed(timings, "sensitivity", progress, sensitivity, model, xtr, ytr, n_samples=ctx["sens_samples"],
                  seed=seed)
    costs = _timed(timings, "cost", progress, cost_table, model, torch.from_numpy(xtr[:STATS_FRAMES]),
                   ctx["in_bits"], ctx["fps"], ctx["clock_mhz"])
    prover = _Prover({**ctx, "model": model, "data": data}, costs.total)
    t_configs = 0.0
    try:
        # the baselines (and a given start model) are proven first: their validation accuracies
        # calibrate how far the sweep goes
        base = [(f"w{w}a{a}", "uniform", uniform(model, w, a)) for w, a in ctx["baselines"]]
        if ctx["start"] is not None:
            base.append(("start", "start", ctx["start_assignment"]))
        t = time.perf_counter()
        prover.prove(base)
        t_configs += time.perf_counter() - t
        kw, calibration = _sweep(ctx, model, sens, costs, prover.done, len(yval))
        if calibration:
            progress(calibration)
        allocs = _timed(timings, "allocation", progress, frontier, sens, costs, n=ctx["n_points"],
                        budgets=ctx["budgets"], **kw)
        timings["search"] = timings["sensitivity"] + timings["cost"] + timings["allocation"]
        progress(f"search time (sensitivity + cost + allocation): {timings['search']:.1f} s, "
                 f"{len(allocs)} frontier configurations")
        mixed = [(f"mixed_{i}", "mixed", a.assignment) for i, a in enumerate(allocs)]
        t = time.perf_counter()
        prover.prove(mixed)
    finally:
        done = prover.finish()
    configs = mixed + base
    rows = [Row(name, kind, dict(a), predicted_loss(sens, a), costs.total(a), **done[_key(kind, a)],
                measured_drop=_measured_drop(model, xte, yte, a)) for name, kind, a in configs]
    timings["configs"] = t_configs + time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    mark_dominated(rows)
    res = SearchResult(rows, float_acc, {k: round(v, 2) for k, v in timings.items()}, out, ctx["synth"], ctx["fps"],
                       ctx["clock_mhz"], sizes={"train": len(xtr), "val": len(xval), "test": len(xte)},
                       max_lut=ctx["limit"], min_accuracy=ctx["min_accuracy"], calibration=calibration)
    write_result(res)
    return res
