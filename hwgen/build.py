"""The compiler pipeline: QONNX file -> verified-ready build directory.

The pipeline is one readable list of named steps (:data:`STEPS`); with
``save_steps=True`` every step's dataflow graph is saved under
``OUT/steps/NN_<step>/``.  Everything is written to a temporary directory
first and renamed into place, so a failed build leaves nothing half-written.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

from .dataflow.folding import DEFAULT_CLOCK_MHZ, DEFAULT_FPS, apply_folding, folded_layers, load_folding, search_folding
from .devices import DEFAULT_MARGIN, make_budget, warn_beyond_devices
from .dataflow.plumbing import InsertDuplicates, InsertFIFOs, InsertWidthConverters
from .report import make_report, render_markdown
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


class _Progress:
    def __init__(self, enabled):
        self.enabled = enabled
        self.timings = {}

    def step(self, name, fn, *args):
        t = time.perf_counter()
        if self.enabled:
            print(f"[hwgen] {name} …", end="", flush=True, file=sys.stderr)
        try:
            res = fn(*args)
        except BaseException:
            if self.enabled:
                print(" failed", file=sys.stderr, flush=True)
            raise
        dt = time.perf_counter() - t
        self.timings[name] = dt
        if self.enabled:
            print(f" {dt:.2f} s", file=sys.stderr, flush=True)
        return res


def _stream_info(shape, dt, lanes):
    return {"shape": list(shape), "dtype": dt.name, "lanes": lanes, "lane_bits": dt.bits,
            "tdata_bits": tdata_bits(lanes, dt), "words_per_frame": words_per_frame(shape, lanes)}


def _load_and_lower(model_or_path, name, topk=None):
    from .frontend import load
    from .lower import lower

    model = load(model_or_path)
    return model, lower(model, name=name, topk=topk)


def _fold(graph, folding, fps, clock_mhz, budget=None):
    fixed = ()
    if folding is not None:
        source = "folding"
        if isinstance(folding, (str, os.PathLike)):
            source = f"folding file {folding}"
            folding = load_folding(folding)
        apply_folding(graph, folding, source)
        fixed = folded_layers(folding)
    free = [l for l in graph.compute_layers if l.name not in fixed and l.folding and l.kind != "SlidingWindow"]
    if fps is None and fixed:
        # a folding file sets the pace: fold the layers it leaves out so they never become the bottleneck
        fps = clock_mhz * 1e6 / max(graph.layer(n).cycles() for n in fixed)
    if free or fps is not None or budget is not None:
        search_folding(graph, fps if fps is not None or budget is not None else DEFAULT_FPS, clock_mhz,
                       fixed=fixed, budget=budget)
    return graph


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
          max_bram=None, max_dsp=None, margin=DEFAULT_MARGIN):
    """Compile a QONNX model (path, ``ModelProto`` or qonnx ``ModelWrapper``) into ``out_dir``.

    ``folding``: a dict or JSON file ``{"layer": {"pe": P, "simd": S}}``; layers it
    does not name, or all of them when it is None, get the least-resource folding
    meeting ``fps`` at ``clock_mhz`` (default target: 1,000,000 frames/s).
    ``topk``: end the accelerator in a label-select of the ``topk`` best classes.
    ``device`` (a name in :data:`hwgen.devices.DEVICES`) and/or ``max_lut``/``max_ff``/
    ``max_bram``/``max_dsp``: the folding must fit (``margin`` of the device); with
    ``fps`` it must meet both (else a :class:`~hwgen.errors.FoldingError` says what fits),
    without ``fps`` it is the fastest that fits.
    Writes ``rtl/hwgen_top.v``, ``manifest.json``, ``model.json``, ``params.npz``,
    ``report.md``, ``report.json`` and ``source.onnx``.
    """
    t0 = time.perf_counter()
    out_dir = os.path.abspath(os.fspath(out_dir))
    if name is None:
        name = os.path.splitext(os.path.basename(os.fspath(model_or_path)))[0] if isinstance(model_or_path, (str, os.PathLike)) else "model"
    budget = make_budget(device, max_lut=max_lut, max_ff=max_ff, max_bram=max_bram, max_dsp=max_dsp, margin=margin)
    pr = _Progress(progress)
    model, graph = pr.step("load and lower", _load_and_lower, model_or_path, name, topk)
    steps_dir = []

    def snapshot(tag):
        if save_steps:
            steps_dir.append((tag, graph.to_json()))

    snapshot("lowered")
    graph = pr.step("folding", _fold, graph, folding, fps, clock_mhz, budget)
    snapshot("folded")
    graph = pr.step("stream plumbing", _plumb, graph)
    warn_beyond_devices(graph)                  # a folding no listed device holds still builds, with a warning
    snapshot("plumbed")
    memfiles = {}                               # $readmemh files of big ROMs, beside the Verilog
    verilog = pr.step("generate Verilog", _verilog, graph, memfiles, progress)

    parent = os.path.dirname(out_dir) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".hwgen-", dir=parent)
    try:
        os.makedirs(os.path.join(tmp, "rtl"))
        vpath = os.path.join("rtl", f"{TOP_NAME}.v")
        with open(os.path.join(tmp, vpath), "w") as f:
            f.write(verilog)
        for fn, text in sorted(memfiles.items()):
            with open(os.path.join(tmp, "rtl", fn), "w") as f:
                f.write(text)
        graph.save(tmp)
        model.save(os.path.join(tmp, "source.onnx"))
        from .dataflow.graph import INPUT
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
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.write("\n")
        from .flows import write_flows        # make -C OUT synth | pnr | bitstream | vivado
        write_flows(tmp, manifest)
        report = make_report(graph, clock_mhz, fps)
        with open(os.path.join(tmp, "report.json"), "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write("\n")
        with open(os.path.join(tmp, "report.md"), "w") as f:
            f.write(render_markdown(report))
        if save_steps:
            for i, (tag, (doc, arrays)) in enumerate(steps_dir):
                d = os.path.join(tmp, "steps", f"{i:02d}_{tag}")
                os.makedirs(d)
                with open(os.path.join(d, "model.json"), "w") as f:
                    json.dump(doc, f, indent=1, sort_keys=True)
        # swap into place: an existing build is replaced only once the new one is complete
        if os.path.exists(out_dir):
            old = tempfile.mkdtemp(prefix=".hwgen-old-", dir=parent)
            os.rename(out_dir, os.path.join(old, "x"))
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    if progress and budget is not None:
        from .dataflow.estimate import graph_resources
        from .devices import unit_names
        used, u = graph_resources(graph, budget.family), unit_names(budget.family)
        over = budget.describe_over(used)
        print(f"[hwgen] {budget.describe()}: uses " + ", ".join(f"{used[k]:,} {u[k]}" for k in used)
              + (f"; over after FIFO sizing: {over}" if over else ""), file=sys.stderr)
    if progress:
        print(f"[hwgen] wrote {out_dir} in {seconds:.2f} s: {cycles:,} cycles/frame, "
              f"{manifest['fps']:,.0f} frames/s at {clock_mhz:g} MHz, ~{report['resources']['LUT']:,} LUT", file=sys.stderr)
    return Build(out_dir, graph, manifest, report, os.path.join(out_dir, vpath), seconds, pr.timings)
