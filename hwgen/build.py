"""The compiler pipeline: QONNX file -> verified-ready build directory.

The pipeline is one readable list of named steps (:data:`STEPS`); with
``save_steps=True`` every step's dataflow graph is saved under
``OUT/steps/NN_<step>/``.  Everything is written to a temporary directory
first and renamed into place, so a failed build leaves nothing half-written.
"""

import json
import os
import time
from dataclasses import dataclass, field

from . import progress as _progress
from . import validate
from .dataflow.folding import DEFAULT_CLOCK_MHZ, apply_folding, fold_for, folded_layers, load_folding
from .dataflow.target import Throughput
from .devices import DEFAULT_MARGIN, make_budget, warn_beyond_devices
from .dataflow.plumbing import InsertDuplicates, InsertFIFOs, InsertWidthConverters
from .errors import FoldingError, HwgenError
from .outdir import OutputDir
from .report import make_report, render_markdown
from .sources import located
from .streams import tdata_bits, words_per_frame

__all__ = ["build", "Build", "MANIFEST_FORMAT"]

MANIFEST_FORMAT = "hwgen-build/1"
TOP_NAME = "hwgen_top"


@dataclass
class Build:
    out_dir: str
    graph: object
    manifest: dict
    report: dict
    verilog_path: str
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    @property
    def cycles_per_frame(self):
        return self.manifest["cycles_per_frame"]


class _Steps:
    """Runs the named steps of one build, each a :func:`hwgen.progress.task`, and keeps their times."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.timings = {}

    def step(self, name, fn, *args, reports=False, **kw):
        """``fn(*args, **kw)`` as the step ``name``; ``reports``: ``fn`` reports its own progress (timed only)."""
        if reports:
            t0 = time.perf_counter()
            res = fn(*args, **kw)
            self.timings[name] = time.perf_counter() - t0
            return res
        with _progress.task(name, enabled=self.enabled) as t:
            res = fn(*args, **kw)
        self.timings[name] = t.seconds
        return res


def _stream_info(shape, dt, lanes):
    return {"shape": list(shape), "dtype": dt.name, "lanes": lanes, "lane_bits": dt.bits,
            "tdata_bits": tdata_bits(lanes, dt), "words_per_frame": words_per_frame(shape, lanes)}


def _load_and_lower(model_or_path, name, topk=None):
    from .frontend import load
    from .frontend.load import module_of
    from .lower import lower

    model = load(model_or_path)
    graph = lower(model, name=name, topk=topk)
    modules = {n.name: module_of(n) for n in model.graph.node}
    graph.source_modules = {l: modules.get(src) for l, src in getattr(graph, "sources", {}).items()
                            if isinstance(src, str) and modules.get(src)}
    return model, graph


def _fold(graph, folding, fps, clock_mhz, budget=None, allow_slower=False):
    fixed, source = (), "folding"
    if folding is not None:
        if isinstance(folding, (str, os.PathLike)):
            source = f"folding file {folding}"
            folding = load_folding(folding)
        apply_folding(graph, folding, source)
        fixed = folded_layers(folding)
    free = [l for l in graph.compute_layers if l.name not in fixed and l.folding and l.kind != "SlidingWindow"]
    target = Throughput(clock_mhz, fps)
    pace = target
    if fps is None and fixed:
        # a folding file sets the pace: fold the layers it leaves out so they never become the bottleneck
        pace = Throughput.at_cycles(max(graph.layer(n).cycles() for n in fixed), clock_mhz)
    if free or pace.fps is not None or budget is not None:
        fold_for(graph, pace, fixed=fixed, budget=budget)      # no target nor budget: the default target
    if target.fps is not None:
        _check_pinned(graph, fixed, target, source, allow_slower)
    return graph


def _check_pinned(graph, fixed, target, source, allow_slower):
    """An explicit ``target`` (a :class:`~hwgen.dataflow.target.Throughput`) that a layer pinned by
    the folding misses is an error (a warning with ``allow_slower``): the search folds only the other layers."""
    allowed = target.cycles
    slow = [graph.layer(n) for n in fixed if graph.layer(n).cycles() > allowed]
    if not slow:
        return
    l = max(slow, key=lambda l: l.cycles())
    fold = ", ".join(f"{k}={v}" for k, v in sorted(l.folding.items()))
    what = (f"layer {l.name}: pinned by the {source.split(' ')[0]} at {fold}, it takes {l.cycles():,} cycles per frame; "
            f"{target.describe()} allows {allowed:,} (the build would reach "
            f"{target.fps_at(graph.cycles()):,.0f} fps)")
    if not allow_slower:
        raise FoldingError(f"{what}; raise its pe/simd, lower the target or allow it (--allow-slower)")
    _progress.warn(what)


def _plumb(graph):
    for p in (InsertDuplicates(), InsertWidthConverters(), InsertFIFOs()):
        graph, _ = p.apply(graph)
        if isinstance(p, InsertFIFOs):
            graph.fifo_sizing = p.stats
    graph.validate()
    return graph


def _verilog(graph, memfiles=None, progress=False):
    from .hdl.top import to_verilog
    return to_verilog(graph, name=TOP_NAME, progress=progress, memfiles=memfiles)


def build(model_or_path, out_dir, *, folding=None, fps=None, clock_mhz=DEFAULT_CLOCK_MHZ,
          name=None, progress=True, save_steps=False, topk=None, device=None, max_lut=None, max_ff=None,
          max_bram=None, max_dsp=None, margin=DEFAULT_MARGIN, force=False, allow_slower=False):
    """Compile a QONNX model (path, ``ModelProto`` or qonnx ``ModelWrapper``) into ``out_dir``.

    ``folding``: a dict or JSON file ``{"layer": {"pe": P, "simd": S}}``; layers it
    does not name, or all of them when it is None, get the least-resource folding
    meeting ``fps`` at ``clock_mhz`` (default target: 1,000,000 frames/s).  A layer the
    folding pins that misses an explicit ``fps`` is an error (a warning with ``allow_slower``).
    ``topk``: end the accelerator in a label-select of the ``topk`` best classes.
    ``device`` (a name in :data:`hwgen.devices.DEVICES`) and/or ``max_lut``/``max_ff``/
    ``max_bram``/``max_dsp``: the folding must fit (``margin`` of the device); with
    ``fps`` it must meet both (else a :class:`~hwgen.errors.FoldingError` says what fits),
    without ``fps`` it is the fastest that fits.
    ``out_dir`` must be a new path or a directory an earlier build wrote (:mod:`hwgen.outdir`);
    ``force`` replaces any other directory or file, but never the model or a directory holding it.
    Every argument is checked before any work; a bad one raises a one-line :class:`~hwgen.errors.HwgenError`.
    Writes ``rtl/hwgen_top.v``, ``manifest.json``, ``model.json``, ``params.npz``,
    ``report.md``, ``report.json`` and ``source.onnx``, atomically.
    """
    t0 = time.perf_counter()
    # -- every argument checked at the door, before any work -------------------------------
    model_or_path = validate.model_source(model_or_path)
    folding = validate.folding_source(folding)
    fps = validate.positive_number(fps, "fps (frames per second)", optional=True)
    clock_mhz = validate.positive_number(clock_mhz, "clock_mhz")
    topk = validate.positive_int(topk, "topk", optional=True)
    name = validate.name(name)
    for flag, what in ((progress, "progress"), (save_steps, "save_steps"), (force, "force"),
                       (allow_slower, "allow_slower")):
        validate.flag(flag, what)
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise HwgenError(f"out_dir must be a path, not {validate.shown(out_dir)}")
    budget = make_budget(device, max_lut=max_lut, max_ff=max_ff, max_bram=max_bram, max_dsp=max_dsp, margin=margin)
    if name is None:
        name = os.path.splitext(os.path.basename(model_or_path))[0] if isinstance(model_or_path, str) else "model"
    inputs = [p for p in (model_or_path, folding) if isinstance(p, str)]

    steps = _Steps(progress)
    with OutputDir(out_dir, inputs=inputs, force=force) as out:
        model = None
        graph = None
        try:
            model, graph = steps.step("load and lower", _load_and_lower, model_or_path, name, topk)
            snapshots = [("lowered", graph.to_json())] if save_steps else []
            graph = steps.step("folding", _fold, graph, folding, fps, clock_mhz, budget, allow_slower)
            if save_steps:
                snapshots.append(("folded", graph.to_json()))
            graph = steps.step("stream plumbing", _plumb, graph)
            warn_beyond_devices(graph)          # a folding no listed device holds still builds, with a warning
            if save_steps:
                snapshots.append(("plumbed", graph.to_json()))
            memfiles = {}                       # $readmemh files of big ROMs, beside the Verilog
            verilog = steps.step("generate Verilog", _verilog, graph, memfiles, progress, reports=True)
            manifest, report = steps.step("write", _write, out.path, graph, model, verilog, memfiles, name,
                                          clock_mhz, fps, snapshots)
        except HwgenError as e:
            raise located(e, model, getattr(graph, "sources", None)) from None
        out.commit()
    out_dir = out.out
    seconds = time.perf_counter() - t0
    if budget is not None:
        from .dataflow.estimate import graph_resources
        from .devices import unit_names
        used, u = graph_resources(graph, budget.family), unit_names(budget.family)
        over = budget.describe_over(used)
        _progress.info(f"{budget.describe()}: uses " + ", ".join(f"{used[k]:,} {u[k]}" for k in used)
                       + (f"; over after FIFO sizing: {over}" if over else ""), progress)
    _progress.info(f"wrote {out_dir} in {seconds:.2f} s: {manifest['cycles_per_frame']:,} cycles/frame, "
                   f"{manifest['fps']:,.0f} frames/s at {clock_mhz:g} MHz, ~{report['resources']['LUT']:,} LUT", progress)
    vpath = manifest["verilog"][0]
    return Build(out_dir, graph, manifest, report, os.path.join(out_dir, vpath), seconds, steps.timings)


def _write(path, graph, model, verilog, memfiles, name, clock_mhz, fps, snapshots):
    """Write the build's files into the (staging) directory ``path``; returns (manifest, report)."""
    from .dataflow.graph import INPUT
    from .flows import write_flows        # make -C OUT synth | pnr | bitstream | vivado
    os.makedirs(os.path.join(path, "rtl"))
    vpath = os.path.join("rtl", f"{TOP_NAME}.v")
    with open(os.path.join(path, vpath), "w") as f:
        f.write(verilog)
    for fn, text in sorted(memfiles.items()):
        with open(os.path.join(path, "rtl", fn), "w") as f:
            f.write(text)
    graph.save(path)
    model.save(os.path.join(path, "source.onnx"))
    first = next(l for l in graph.layers if INPUT in graph.input_refs(l))
    last = graph.layers[-1]
    cycles = graph.cycles()
    manifest = {
        "format": MANIFEST_FORMAT, "name": name, "top": TOP_NAME, "verilog": [vpath],
        "memfiles": [os.path.join("rtl", fn) for fn in sorted(memfiles)],
        "clock_mhz": clock_mhz, "fps_target": fps,
        "input": _stream_info(first.in_shape, first.idt, first.in_lanes),
        "output": _stream_info(last.out_shape, last.odt, last.out_lanes),
        "cycles_per_frame": cycles, "fps": clock_mhz * 1e6 / cycles,
        "ports": {"clk": "clk", "rst": "rst (active high, synchronous)",
                  "in": ["s_axis_tdata", "s_axis_tvalid", "s_axis_tready"],
                  "out": ["m_axis_tdata", "m_axis_tvalid", "m_axis_tready"]},
        "head": graph.head, "tail": graph.tail, "source": "source.onnx",
    }
    with open(os.path.join(path, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    write_flows(path, manifest)
    report = make_report(graph, clock_mhz, fps)
    with open(os.path.join(path, "report.json"), "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(path, "report.md"), "w") as f:
        f.write(render_markdown(report))
    for i, (tag, (doc, arrays)) in enumerate(snapshots):
        d = os.path.join(path, "steps", f"{i:02d}_{tag}")
        os.makedirs(d)
        with open(os.path.join(d, "model.json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
    return manifest, report
