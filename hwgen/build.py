"""The compiler pipeline: QONNX file -> verified-ready build directory.

The build is one readable list of named steps, :data:`STEPS`: each takes the build's
state (:class:`_State`) and adds to it, each is timed and reported through
:mod:`hwgen.progress`; with ``save_steps=True`` the dataflow graph after each step
that changes it is saved, reloadable with :meth:`DataflowGraph.load`, as
``OUT/steps/NN_<step>/model.json`` + ``params.npz``.  The throughput target is
resolved once, at entry, into a cycle budget (the folding step's input).  Every file
is written into a staging directory and renamed into place (:mod:`hwgen.outdir`),
so a failed build leaves nothing half-written.
"""

import json
import os
import time
from dataclasses import dataclass, field

from . import manifest as _manifest
from . import progress as _progress
from . import validate
from .dataflow.fit import warn_beyond_devices
from .dataflow.folding import OPTION_KEYS, apply_folding, fold_for, folded_layers, load_folding, plumbed_resources
from .dataflow.target import DEFAULT_CLOCK_MHZ, DEFAULT_FPS, Throughput
from .dataflow.plumbing import InsertDuplicates, InsertFIFOs, InsertWidthConverters
from .devices import DEFAULT_DEVICE, DEFAULT_MARGIN, make_budget
from .errors import FoldingError, HwgenError
from .outdir import OutputDir
from .report import make_report, render_markdown
from .sources import located, module_of

__all__ = ["build", "Build", "STEPS", "run_until", "MANIFEST_FORMAT"]

MANIFEST_FORMAT = _manifest.FORMAT      # (hwgen.manifest defines the manifest)
TOP_NAME = "hwgen_top"
#: the accelerator's I/O: AXI4-Stream, or the whole frame in and out (hwgen.hdl.parallel)
IO_MODES = ("stream", "parallel")


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


@dataclass
class _State:
    """What the steps of one build read and write: the arguments, then each step's product."""
    source: object                  # the model: a path, ModelProto or ModelWrapper
    path: str                       # the staging directory the files go into
    name: str
    folding: object = None          # a folding dict or file, or None
    target: Throughput = Throughput(DEFAULT_CLOCK_MHZ)     # the clock and the frame rate asked for (or None)
    budget: object = None           # a hwgen.devices.Budget, or None
    topk: int = None
    allow_slower: bool = False
    progress: bool = True
    model: object = None            # load: the cleaned-up QONNX model (qonnx ModelWrapper)
    graph: object = None            # lower .. size FIFOs: the dataflow graph
    verilog: str = None             # generate Verilog
    memfiles: dict = field(default_factory=dict)        # generate Verilog: $readmemh files of big ROMs
    manifest: dict = None           # report
    report: dict = None             # report
    margin: float = DEFAULT_MARGIN  # the share of the default device the folding may use
    default_budget: object = None   # fold: the default device's Budget, when the build had no target
    reached: str = None             # fold: what the default folding reached, in words
    board: str = "ulx3s"            # flows: the board of the shell (hwgen.shell.boards.BOARDS)
    io: str = "stream"              # "parallel": every layer constant-weight, no FIFOs, <top>_parallel written too


@dataclass(frozen=True)
class Step:
    """One named step of the build: ``run(state)``; ``graph``: it changes the dataflow graph (its
    result is what ``--save-steps`` saves); ``reports``: it reports its own progress (timed only)."""
    name: str
    run: object
    graph: bool = False
    reports: bool = False


# -- the steps --------------------------------------------------------------------------------
def _load(s):
    from .frontend import load
    s.model = load(s.source)


def _lower(s):
    from .lower import lower
    s.graph = lower(s.model, name=s.name, topk=s.topk)
    modules = {n.name: module_of(n) for n in s.model.graph.node}
    s.graph.source_modules = {l: modules.get(src) for l, src in getattr(s.graph, "sources", {}).items()
                              if isinstance(src, str) and modules.get(src)}


def _fold(s):
    """PE/SIMD per layer: the folding document's, the rest searched for the target (and budget)."""
    graph, folding, target, budget = s.graph, s.folding, s.target, s.budget
    fixed, source = (), "folding"
    if folding is not None:
        if isinstance(folding, (str, os.PathLike)):
            source = f"folding file {folding}"
            folding = load_folding(folding)
        apply_folding(graph, folding, source)
        fixed = folded_layers(folding)
    if s.io == "parallel":              # parallel I/O: every MVAU fully unrolled with constant weights
        for l in graph.layers:
            if getattr(l, "impl", None) == "auto":
                l.impl = "const"
    # a layer asked to have constant weights is fully unrolled, pinned
    pinned = [l for l in graph.layers if getattr(l, "impl", None) == "const"]
    for l in pinned:
        l.set_folding(pe=l.mh, simd=l.mw)
        l.validate()
    fixed = tuple(fixed) + tuple(l.name for l in pinned if l.name not in fixed)
    free = [l for l in graph.compute_layers if l.name not in fixed and l.folding and l.kind != "SlidingWindow"]
    pace = target
    if target.fps is None and fixed:
        # a folding file sets the pace: fold the layers it leaves out so they never become the bottleneck
        pace = Throughput.at_cycles(max(graph.layer(n).cycles() for n in fixed), target.clock_mhz)
    if pace.fps is None and budget is None and free:
        _fold_default(s, free)                                   # no target nor budget: the default device
    elif free or pace.fps is not None or budget is not None:
        fold_for(graph, pace, fixed=fixed, budget=budget)
    if target.fps is not None:
        _check_pinned(graph, fixed, target, source, s.allow_slower)


def _fold_default(s, free):
    """No target, no device, no limits: the fastest folding that fits :data:`~hwgen.devices.DEFAULT_DEVICE`
    (at the build's ``margin``), but no faster than :data:`~hwgen.dataflow.target.DEFAULT_FPS` frames/s
    (beyond that a design only grows): the least-LUT folding meeting that rate when it fits the
    device (what every build without a target got before), else the fastest folding that fits."""
    graph, clock = s.graph, s.target.clock_mhz
    dev = make_budget(DEFAULT_DEVICE, margin=s.margin)
    s.default_budget = dev
    try:
        fold_for(graph, Throughput(clock, DEFAULT_FPS))
        if dev.fits(plumbed_resources(graph, dev.family)[0]):
            s.reached = f"{DEFAULT_FPS:,.0f} fps, the default rate"
            return
    except FoldingError:
        pass
    r = fold_for(graph, Throughput(clock), budget=dev, return_result=True)
    s.reached = f"{Throughput(clock).fps_at(r.cycles):,.0f} fps, the fastest folding that fits"


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


def _const_weights(s):
    """Fully unrolled MVAUs (``impl`` auto, :data:`~hwgen.dataflow.cmvau.AUTO_MAX_WEIGHTS` at most) and every
    ``impl`` const one become ConstMVAU layers (:class:`~hwgen.dataflow.cmvau.ConstMVAU`), registered every
    :func:`~hwgen.dataflow.cmvau.levels_for_clock` adder levels unless their ``pipeline`` says otherwise."""
    from .dataflow.cmvau import as_const, const_weights, levels_for_clock
    levels = levels_for_clock(s.target.clock_mhz)
    s.graph.layers = [as_const(l, levels) if const_weights(l) else l for l in s.graph.layers]
    if s.io == "parallel":
        from .hdl.parallel import check_parallel
        check_parallel(s.graph)


def _plumb(s):
    for p in (InsertDuplicates(), InsertWidthConverters()):
        s.graph, _ = p.apply(s.graph)


def _size_fifos(s):
    if s.io == "parallel":              # one vector per cycle everywhere, nothing stalls: no FIFOs
        s.graph.fifo_sizing = {"fifos": 0, "bits": 0}
        s.graph.validate()
        return
    p = InsertFIFOs()
    s.graph, _ = p.apply(s.graph)
    s.graph.fifo_sizing = p.stats
    s.graph.validate()
    warn_beyond_devices(s.graph)            # a folding no listed device holds still builds, with a warning


def _generate(s):
    from .hdl.top import to_verilog
    s.verilog = to_verilog(s.graph, name=TOP_NAME, progress=s.progress, memfiles=s.memfiles)
    if s.io == "parallel":
        from .hdl.parallel import parallel_top
        s.verilog += parallel_top(s.graph, TOP_NAME)
    os.makedirs(os.path.join(s.path, "rtl"))
    with open(os.path.join(s.path, "rtl", f"{TOP_NAME}.v"), "w") as f:
        f.write(s.verilog)
    for fn, text in sorted(s.memfiles.items()):
        with open(os.path.join(s.path, "rtl", fn), "w") as f:
            f.write(text)


def resolved_folding(graph):
    """The folding of ``graph``'s layers as a folding document (``{"layer": {"pe": P, "simd": S, …}}``,
    with the options the folding chose), reusable as ``folding=``; plumbing layers are left out."""
    doc = {}
    for l in graph.layers:
        if not l.folding or l.kind in ("FIFO", "WidthConverter", "Duplicate"):
            continue
        entry = dict(sorted(l.folding.items()))
        entry.update({k: getattr(l, k) for k in OPTION_KEYS if getattr(l, k, None) is not None})
        doc[l.name] = entry
    return doc


def _json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def _report(s):
    from .hdl.top import module_names
    s.graph.save(s.path)
    s.model.save(os.path.join(s.path, "source.onnx"))
    _json(os.path.join(s.path, "folding.json"), resolved_folding(s.graph))
    memfiles = [os.path.join("rtl", fn) for fn in sorted(s.memfiles)]
    s.manifest = _manifest.make(s.graph, name=s.name, top=TOP_NAME, verilog=[os.path.join("rtl", f"{TOP_NAME}.v")],
                                memfiles=memfiles, target=s.target,
                                modules=module_names(s.graph, TOP_NAME))
    if s.io == "parallel":
        from .hdl.parallel import parallel_info
        s.manifest["parallel"] = parallel_info(s.graph, TOP_NAME)
    _manifest.write(s.path, s.manifest)
    s.report = make_report(s.graph, s.target.clock_mhz, s.target.fps)
    if s.default_budget is not None:
        s.report["default_device"] = {"device": s.default_budget.name, "margin": s.default_budget.margin,
                                      "reached": s.reached}
    _json(os.path.join(s.path, "report.json"), s.report)
    with open(os.path.join(s.path, "report.md"), "w") as f:
        f.write(render_markdown(s.report))


def _flows(s):
    from .flows import write_flows        # make -C OUT synth | pnr | bitstream | vivado
    from .shell import write_shell        # board/: the shell that pnr and bitstream take as the top
    write_shell(s.path, s.manifest, s.board)
    write_flows(s.path, s.manifest, board=s.board)


#: The build, in order.
STEPS = (
    Step("load", _load),                            # QONNX file -> cleaned-up QONNX model
    Step("lower", _lower, graph=True),              # -> integer dataflow graph (hwgen IR)
    Step("fold", _fold, graph=True),           # PE/SIMD per layer: the folding file, the search
    Step("constant weights", _const_weights, graph=True),  # fully unrolled MVAUs -> shift-add networks
    Step("plumb", _plumb, graph=True),              # forks (Duplicate), width converters
    Step("size FIFOs", _size_fifos, graph=True),    # FIFO depths from the word-level schedule
    Step("generate Verilog", _generate, reports=True),  # Amaranth components -> rtl/hwgen_top.v (+ ROM files)
    Step("report", _report),                        # model.json, folding.json, manifest.json, report.*
    Step("flows", _flows),                          # board shell, Makefile, synthesis / P&R / Vivado scripts
)


def run_until(model_or_path, step, *, name="model", folding=None, fps=None, clock_mhz=DEFAULT_CLOCK_MHZ, topk=None,
              budget=None, allow_slower=False, io="stream"):
    """Run :data:`STEPS` in memory up to and including the graph step ``step`` (``"lower"``, ``"fold"``,
    ``"plumb"`` or ``"size FIFOs"``); returns ``(model, graph)``.  Nothing is written, nothing reported."""
    names = [st.name for st in STEPS if st.graph]
    if step not in names:
        raise HwgenError(f"step must be one of {', '.join(names)}, not {step!r}")
    s = _State(model_or_path, None, name, folding=folding, target=Throughput(clock_mhz, fps), budget=budget, topk=topk,
               allow_slower=allow_slower, progress=False, io=validate.choice(io, "io", IO_MODES))
    for st in STEPS:
        st.run(s)
        if st.name == step:
            return s.model, s.graph


def _run_steps(s, save_steps):
    """Run :data:`STEPS` on ``s``; returns ``{step: seconds}``."""
    timings, saved = {}, 0
    for step in STEPS:
        if step.reports:
            t0 = time.perf_counter()
            step.run(s)
            timings[step.name] = time.perf_counter() - t0
        else:
            with _progress.task(step.name, enabled=s.progress) as t:
                step.run(s)
            timings[step.name] = t.seconds
        if save_steps and step.graph:
            d = os.path.join(s.path, "steps", f"{saved:02d}_{step.name.replace(' ', '_')}")
            os.makedirs(d)
            s.graph.save(d)
            saved += 1
    return timings


def build(model_or_path, out_dir, *, folding=None, fps=None, clock_mhz=DEFAULT_CLOCK_MHZ,
          name=None, progress=True, save_steps=False, topk=None, device=None, max_lut=None, max_ff=None,
          max_bram=None, max_dsp=None, margin=DEFAULT_MARGIN, force=False, allow_slower=False, board="ulx3s",
          io="stream"):
    """Compile a QONNX model (path, ``ModelProto`` or qonnx ``ModelWrapper``) into ``out_dir``.

    ``folding``: a dict or JSON file ``{"layer": {"pe": P, "simd": S}}``; layers it
    does not name, or all of them when it is None, get the least-resource folding
    meeting ``fps`` at ``clock_mhz``.  Without ``fps``, device or limits (and no folding setting
    the pace), the fastest folding that fits :data:`hwgen.devices.DEFAULT_DEVICE` (the Alveo
    U250, at ``margin``), but no faster than 1,000,000 frames/s; the report and the progress
    say what it reached.  An explicit ``fps`` no folding reaches is an error naming the limiting
    layer; a layer the folding pins that misses it is an error (a warning with ``allow_slower``).
    ``topk``: end the accelerator in a label-select of the ``topk`` best classes.
    ``device`` (a name in :data:`hwgen.devices.DEVICES`) and/or ``max_lut``/``max_ff``/
    ``max_bram``/``max_dsp``: the folding must fit (``margin`` of the device); with
    ``fps`` it must meet both (else a :class:`~hwgen.errors.FoldingError` says what fits),
    without ``fps`` it is the fastest that fits.
    ``out_dir`` must be a new path or a directory an earlier build wrote (:mod:`hwgen.outdir`);
    ``force`` replaces any other directory or file, but never the model or a directory holding it.
    ``board``: the board of the shell that ``make pnr``/``bitstream`` implement (a name of
    :data:`hwgen.shell.boards.BOARDS`: ulx3s (85F), ulx3s-12f/-25f/-45f, icebreaker); its PLL
    must reach ``clock_mhz`` (the nearest frequency it makes is the core clock, board/board.json).
    ``io``: ``"stream"`` (AXI4-Stream, the default) or ``"parallel"``: every fully connected layer fully
    unrolled with constant weights (a ConstMVAU, unless the folding says ``impl: rom``, an error), no
    FIFOs, and ``rtl/hwgen_top.v`` also holds ``hwgen_top_parallel``, the whole frame in and out with
    valid only (:mod:`hwgen.hdl.parallel`); a graph that is not such a chain is refused in one line.
    Every argument is checked before any work; a bad one raises a one-line :class:`~hwgen.errors.HwgenError`.
    Writes ``rtl/hwgen_top.v``, ``manifest.json``, ``model.json``, ``params.npz``, ``folding.json``
    (the resolved folding, reusable as ``folding=``), ``report.md``, ``report.json``, ``source.onnx``
    the board shell (``board/``) and the flow files (``Makefile``, ``flows/``, ``vivado/``), atomically.
    """
    t0 = time.perf_counter()
    # -- every argument checked at the door, before any work -------------------------------
    model_or_path = validate.model_source(model_or_path)
    folding = validate.folding_source(folding)
    fps = validate.positive_number(fps, "fps (frames per second)", optional=True)
    clock_mhz = validate.positive_number(clock_mhz, "clock_mhz")
    topk = validate.positive_int(topk, "topk", optional=True)
    io = validate.choice(io, "io", IO_MODES)
    name = validate.name(name)
    for flag, what in ((progress, "progress"), (save_steps, "save_steps"), (force, "force"),
                       (allow_slower, "allow_slower")):
        validate.flag(flag, what)
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise HwgenError(f"out_dir must be a path, not {validate.shown(out_dir)}")
    from .shell.boards import board as _board
    from .shell.pll import pll_for
    b = _board(board)
    pll_for(b["family"], b["oscillator_hz"], clock_mhz * 1e6)     # the board's PLL reaches the clock
    budget = make_budget(device, max_lut=max_lut, max_ff=max_ff, max_bram=max_bram, max_dsp=max_dsp, margin=margin)
    if budget is None:
        make_budget(DEFAULT_DEVICE, margin=margin)          # the margin checked: it applies to the default device
    if name is None:
        name = os.path.splitext(os.path.basename(model_or_path))[0] if isinstance(model_or_path, str) else "model"
    inputs = [p for p in (model_or_path, folding) if isinstance(p, str)]

    with OutputDir(out_dir, inputs=inputs, force=force) as out:
        # the throughput target, resolved once: the clock, the frame rate and the cycle budget they allow
        s = _State(model_or_path, out.path, name, folding=folding, target=Throughput(clock_mhz, fps), budget=budget,
                   topk=topk, allow_slower=allow_slower, progress=progress, margin=margin, board=b["name"], io=io)
        try:
            timings = _run_steps(s, save_steps)
        except HwgenError as e:
            raise located(e, s.model, getattr(s.graph, "sources", None)) from None
        out.commit()
    out_dir = out.out
    seconds = time.perf_counter() - t0
    graph, manifest, report = s.graph, s.manifest, s.report
    if s.default_budget is not None:
        budget = s.default_budget
        _progress.info(f"no --fps given: folded for the default device, {budget.describe()}: {s.reached}", progress)
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
    return Build(out_dir, graph, manifest, report, os.path.join(out_dir, vpath), seconds, timings)
