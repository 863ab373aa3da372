"""RTL verification of a build: cocotb simulation vs the IR reference, every word.

:func:`verify` takes a build directory written by ``hwgen build``, turns the
original model's float inputs into stream words (host head, then
:func:`hwgen.streams.pack`), computes the expected words with the bit-exact IR
reference (``DataflowGraph.execute``), simulates the emitted Verilog with the
generic testbench ``sim/tb_stream.py`` on Verilator or Icarus, and returns a
:class:`VerifyResult`: mismatching words, the measured interval between frames
and latency, and the outputs after the host tail.

Simulator builds live in ``OUT/sim/<simulator>/`` and are reused while the
Verilog, the simulator and cocotb stay the same (a Verilator build costs ten
seconds or more).
"""

import hashlib
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import progress as _progress, watch
from .errors import HwgenError, ManifestError, VerifyError
from .manifest import load as load_manifest
from .simulators import (SIMULATORS, TB_MODULE, frames_reader as _frames_reader, log_tail as _log_tail, prepare,
                         stamped_build, testbench_dir)

__all__ = ["verify", "VerifyResult", "format_table", "testbench_dir", "DEFAULT_FRAMES"]

DEFAULT_FRAMES = 32

CONFIG_ENV = "HWGEN_TB_CONFIG"
STAMP = "hwgen-sim-build.json"


@dataclass
class VerifyResult:
    """Outcome of one RTL simulation of a build."""

    ok: bool                             # no word mismatch, no handshake violation
    mismatches: int                      # output words differing from the IR reference (both phases)
    frames: int
    cycles_per_frame: float              # measured steady-state interval (None for one frame)
    estimated_cycles_per_frame: float    # manifest's estimate
    latency_cycles: int                  # frame 0: first input word accepted -> last output word
    outputs: np.ndarray                  # floats after the host tail, from the RTL words
    outputs_int: np.ndarray              # RTL integers (stress phase)
    expected_int: np.ndarray             # IR reference integers
    simulator: str
    build_seconds: float                 # 0.0 when the cached simulator build was reused
    sim_seconds: float
    seed: int
    protocol_errors: int = 0             # output handshake violations (data changed while stalled, ...)
    first_mismatches: list = field(default_factory=list)   # up to 50: phase, frame, word, got, expected, cycle
    out_dir: str = ""
    log: str = ""                        # the simulation log
    engine: str = "cocotb"               # "compiled" (sim/tb_stream.cpp) or "cocotb" (sim/tb_stream.py)
    cycles: int = 0                      # clock cycles simulated in both phases

    @property
    def cycles_per_second(self):
        return self.cycles / self.sim_seconds if self.sim_seconds else None

    def table(self):
        return format_table(self)

    def __str__(self):
        return self.table()


def _fmt_cpf(v):
    if v is None:
        return "-"
    return f"{v:g}" if float(v) == int(v) else f"{v:.2f}"


def format_table(result):
    """A small plain-text table of one :class:`VerifyResult` (or a list of them)."""
    results = result if isinstance(result, (list, tuple)) else [result]
    head = ("simulator", "engine", "frames", "mismatches", "cycles/frame", "estimate", "latency", "build s", "sim s", "result")
    rows = [head]
    for r in results:
        verdict = "PASS" if r.ok else "FAIL"
        rows.append((r.simulator, r.engine, str(r.frames), str(r.mismatches), _fmt_cpf(r.cycles_per_frame),
                     _fmt_cpf(r.estimated_cycles_per_frame), "-" if r.latency_cycles is None else str(r.latency_cycles),
                     f"{r.build_seconds:.1f}", f"{r.sim_seconds:.1f}", verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i > 1 and i < len(head) - 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = "\n".join(line.rstrip() for line in lines)
    for r in results:
        for m in r.first_mismatches[:5]:
            if m["got"] < 0:
                what = f"got X bits, expected {m['expected']:#x}"
            elif m.get("lanes"):
                what = ", ".join(f"lane {i}: got {g}, expected {e}" for i, g, e in m["lanes"][:4])
                if len(m["lanes"]) > 4:
                    what += f" (+{len(m['lanes']) - 4} lanes)"
            else:
                what = f"got {m['got']:#x}, expected {m['expected']:#x}"
            out += f"\n{r.simulator}: {m['phase']} phase, frame {m['frame']} word {m['word']} (cycle {m['cycle']}): {what}"
        if r.protocol_errors:
            out += f"\n{r.simulator}: {r.protocol_errors} output handshake violation(s), see {r.log}"
    return out


# ----------------------------------------------------------------------------
def _positive_int(name, value):
    """``value`` as an int, or one error line when it is not a positive integer."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise VerifyError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _say(progress, msg):
    _progress.info(f"verify: {msg}", enabled=bool(progress))


def _load_build(out_dir):
    """The build's directory, checked manifest (:func:`hwgen.manifest.load`), graph and Verilog sources."""
    try:
        manifest = load_manifest(out_dir)
    except ManifestError as e:
        raise VerifyError(str(e)) from None
    out = Path(out_dir)
    sources = [out / v for v in manifest["verilog"]]
    from .dataflow import DataflowGraph
    graph = DataflowGraph.load(str(out))
    return out, manifest, graph, sources


def _memfiles(out, manifest):
    """The build's ROM files (``manifest["memfiles"]``: big ROMs' contents, read by ``$readmemh``;
    :func:`hwgen.manifest.load` checked that they exist)."""
    return [out / rel for rel in manifest.get("memfiles", [])]


def _inputs(inputs, frames, head, seed):
    from .host import random_inputs
    want = tuple(head["input_shape"][1:])
    if inputs is None:
        n = _positive_int("frames", DEFAULT_FRAMES if frames is None else frames)
        return random_inputs(head, n, np.random.default_rng(seed))
    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if p.is_dir():
            raise VerifyError(f"inputs {p}: is a directory; accepted: a .npy file (or a numpy array)")
        if p.suffix != ".npy":
            raise VerifyError(f"inputs {p}: must be a .npy file (or a numpy array), not {p.suffix or 'a file without suffix'}")
        if not p.exists():
            raise VerifyError(f"inputs {p}: no such file; accepted: a .npy file (or a numpy array)")
        try:
            x = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise VerifyError(f"inputs {p}: cannot be read as .npy ({e.__class__.__name__}: {e})") from None
    else:
        x = np.asarray(inputs)
    if x.dtype.kind not in "biuf":
        raise VerifyError(f"inputs: dtype {x.dtype} must be numeric (float or integer)")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))
        kinds = " and ".join(k for k, f in (("NaN", np.isnan), ("infinite", np.isinf)) if f(x).any())
        raise VerifyError(f"inputs: {len(bad):,} {kinds} value(s), the first at index {tuple(int(i) for i in bad[0])}; "
                          "accepted: finite numbers")
    if x.shape == want:                          # one sample without the batch axis
        x = x[None]
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise VerifyError(f"inputs: shape {tuple(x.shape)} must be (N, {', '.join(map(str, want))}) "
                          f"(N frames of the model input {tuple(head['input_shape'])})")
    if x.shape[0] < 1:
        raise VerifyError("inputs: no frames (N = 0); accepted: at least one")
    if frames is not None and frames != x.shape[0]:
        raise VerifyError(f"frames={frames} contradicts the {x.shape[0]} input frames given; pass one or the other")
    return x.astype(np.float64)


def _lane_diff(m, side):
    """[[lane, got, expected], ...] for the lanes that differ in mismatch ``m``."""
    from .dtypes import dtype
    dt, lanes, w = dtype(side["dtype"]), int(side["lanes"]), int(side["lane_bits"])
    if m["got"] < 0:
        return []
    mask = (1 << w) - 1
    got = dt.decode([(m["got"] >> (i * w)) & mask for i in range(lanes)]).tolist()
    exp = dt.decode([(m["expected"] >> (i * w)) & mask for i in range(lanes)]).tolist()
    return [[i, g, e] for i, (g, e) in enumerate(zip(got, exp)) if g != e]


def _digest(sim, top, sources):
    import cocotb
    h = hashlib.sha256()
    h.update(json.dumps([sim.name, sim.version, list(sim.build_args), list(sim.timescale), top,
                         getattr(cocotb, "__version__", "?")]).encode())
    for s in sources:
        h.update(s.name.encode() + b"\0" + s.read_bytes() + b"\0")
    return h.hexdigest()


ENGINES = ("compiled", "cocotb")


def _engine(engine, simulator):
    """The testbench engine: compiled on Verilator unless asked otherwise, cocotb on Icarus."""
    if engine is None or engine == "auto":
        return "compiled" if simulator.name == "verilator" else "cocotb"
    if engine not in ENGINES:
        raise VerifyError(f"engine must be one of auto, {', '.join(ENGINES)}, not {engine!r}")
    if engine == "compiled" and simulator.name != "verilator":
        raise VerifyError(f"engine compiled runs on verilator only, not {simulator.name}; "
                          f"accepted on {simulator.name}: cocotb")
    return engine


def _sim_binary(sim, build_dir, top):
    return build_dir / (top if sim.name == "verilator" else "sim.vvp")


def _build(sim, out, top, sources, progress):
    """Compile ``sources`` for ``sim`` in OUT/sim/<sim>/ unless an identical build is there."""
    from cocotb_tools.runner import get_runner
    build_dir = out / "sim" / sim.name
    digest = _digest(sim, top, sources)
    stamp = build_dir / STAMP
    if stamped_build(build_dir, STAMP, digest, _sim_binary(sim, build_dir, top)):
        _say(progress, f"reusing the {sim.name} build in {build_dir}")
        return build_dir, 0.0
    log = build_dir / "build.log"
    t0 = time.monotonic()
    runner = get_runner(sim.name)
    stages = watch.CompileStages() if sim.name == "verilator" else None
    try:
        # the compiler's output goes to the log; the task names it, with the stage read from it
        with watch.watched(f"compile with {sim.name} {sim.version}", log=log, stages=stages, enabled=bool(progress)):
            runner.build(sources=[str(s) for s in sources], hdl_toplevel=top, build_dir=str(build_dir),
                         build_args=list(sim.build_args), timescale=sim.timescale, always=True,
                         log_file=str(log))
    except (RuntimeError, SystemExit, ValueError, OSError) as e:
        raise VerifyError(f"simulator {sim.name}: compiling {', '.join(str(s) for s in sources)} failed "
                          f"({_log_tail(log) or e}); full log: {log}") from None
    secs = time.monotonic() - t0
    if not _sim_binary(sim, build_dir, top).is_file():
        raise VerifyError(f"simulator {sim.name}: compiling produced no {_sim_binary(sim, build_dir, top).name}; full log: {log}")
    stamp.write_text(json.dumps({"digest": digest, "simulator": sim.name, "version": sim.version,
                                 "sources": [str(s) for s in sources], "seconds": round(secs, 2)}, indent=1) + "\n")
    return build_dir, secs


@contextmanager
def _on_sys_path(d):
    d = str(d)
    added = d not in sys.path
    if added:
        sys.path.insert(0, d)
    try:
        yield
    finally:
        if added:
            try:
                sys.path.remove(d)
            except ValueError:
                pass


def _simulate(sim, build_dir, top, cfg, seed, progress):
    """Run the testbench with config ``cfg``; return its results dict and the log path."""
    from cocotb_tools.runner import get_runner
    tb = testbench_dir()
    run_id = f"{os.getpid()}"
    cfg_path = build_dir / f"tb_config.{run_id}.json"
    res_path = build_dir / f"tb_results.{run_id}.json"
    prog_path = build_dir / f"tb_progress.{run_id}.txt"
    log = build_dir / "sim.log"
    cfg = dict(cfg, results=str(res_path), progress=str(prog_path))
    cfg_path.write_text(json.dumps(cfg))
    res_path.unlink(missing_ok=True)
    prog_path.unlink(missing_ok=True)
    runner = get_runner(sim.name)
    phases, n = list(cfg["phases"]), len(cfg["in_frames"])
    try:
        # the testbench appends "<phase> <frames done> <frames>" lines to prog_path as it goes
        with _on_sys_path(tb), _progress.task(f"simulate on {sim.name}", enabled=bool(progress), log=str(log),
                                              total=n, unit="frames") as t, \
                watch.follow(prog_path, _frames_reader(t, phases, n)):
            runner.test(test_module=TB_MODULE, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                        build_dir=str(build_dir), test_dir=str(build_dir), seed=seed,
                        extra_env={CONFIG_ENV: str(cfg_path)}, timescale=sim.timescale,
                        results_xml=str(build_dir / "results.xml"), log_file=str(log))
    except SystemExit:
        pass                    # a failing cocotb test; its results file says why
    except (RuntimeError, OSError) as e:
        raise VerifyError(f"simulator {sim.name}: running the testbench failed ({e}); full log: {log}") from None
    try:
        results = json.loads(res_path.read_text())
    except (OSError, ValueError):
        raise VerifyError(f"simulator {sim.name}: the testbench wrote no results ({_log_tail(log) or 'see the log'}); "
                          f"full log: {log}") from None
    finally:
        cfg_path.unlink(missing_ok=True)
        prog_path.unlink(missing_ok=True)
    res_path.unlink(missing_ok=True)
    return results, log


def verify(out_dir, inputs=None, frames=None, sim="verilator", seed=0, progress=True,
           valid_gap_prob=0.3, ready_stall_prob=0.3, timeout_cycles=None, engine=None, threads=1, jobs=None, stress_frames=None):
    """Simulate the build in ``out_dir`` on ``sim`` and check every output word.

    ``inputs``: the original model's float inputs, a numpy array or a ``.npy``
    path of shape ``(N, *head["input_shape"][1:])``; when None, ``frames``
    (default 32) random inputs drawn with ``np.random.default_rng(seed)``.
    ``timeout_cycles``: cycles without an output word after which the
    simulation is declared deadlocked (default: from the estimated interval).
    ``engine``: ``"compiled"`` (the C++ testbench ``sim/tb_stream.cpp``,
    Verilator only; the default there) or ``"cocotb"`` (``sim/tb_stream.py``;
    the only one on Icarus): the same checks, cycle for cycle.  ``threads``:
    Verilator's ``--threads`` for the compiled engine (1: single-threaded model).
    ``jobs``: processes the compiled engine splits the frames over, each run
    from reset (default: 1, or every core for runs over 50 M cycles).
    ``stress_frames``: run the stress phase on the first frames only (compiled
    engine; every frame still runs back to back, every word checked) — for
    test sets long enough that twice their cycles count.
    Raises :class:`~hwgen.errors.VerifyError` on bad input, a missing
    simulator, a failed compile or a deadlock.
    """
    from .host import apply_head, apply_tail
    from .streams import pack, pack_words32, unpack, unpack_words32, words_per_frame

    out_dir = os.path.abspath(os.fspath(out_dir))
    if str(sim).lower() not in SIMULATORS + ("iverilog",):
        raise VerifyError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise VerifyError(f"seed must be an integer, not {seed!r}")
    seed = int(seed)
    for name, p in (("valid_gap_prob", valid_gap_prob), ("ready_stall_prob", ready_stall_prob)):
        try:
            good = 0.0 <= float(p) < 1.0
        except (TypeError, ValueError):
            good = False
        if not good:
            raise VerifyError(f"{name} must be a number in [0, 1), not {p!r}")
    out, manifest, graph, sources = _load_build(out_dir)
    memfiles = _memfiles(out, manifest)
    head = graph.head or manifest.get("head")
    tail = graph.tail or manifest.get("tail")
    if not head:
        raise VerifyError(f"build directory {out}: no host head in model.json or manifest.json")
    mi, mo = manifest["input"], manifest["output"]
    if tuple(mi["shape"]) != tuple(graph.in_shape) or tuple(mo["shape"]) != tuple(graph.out_shape):
        raise VerifyError(f"build directory {out}: manifest shapes {tuple(mi['shape'])} -> {tuple(mo['shape'])} "
                          f"do not match model.json's {tuple(graph.in_shape)} -> {tuple(graph.out_shape)}")
    x = _inputs(inputs, frames, head, seed)
    try:
        x_int = apply_head(head, x)
        expected = graph.execute(x_int)
        wpf_in, wpf_out = (words_per_frame(m["shape"], int(m["lanes"])) for m in (mi, mo))
    except HwgenError as e:
        raise VerifyError(f"inputs: {e}") from None
    for side, wpf in (("input", wpf_in), ("output", wpf_out)):
        m = manifest[side]
        if wpf != int(m["words_per_frame"]):
            raise VerifyError(f"build directory {out}: manifest {side}.words_per_frame={m['words_per_frame']} "
                              f"but {side} shape {tuple(m['shape'])} in {m['lanes']} lanes gives {wpf}")
    n = len(x_int)
    est = manifest.get("cycles_per_frame")
    if timeout_cycles is None:
        longest = max(float(est or 0), wpf_in, wpf_out)
        timeout_cycles = int(4 * (len(graph.layers) + 2) * longest / (1 - max(valid_gap_prob, ready_stall_prob))) + 3000
    else:
        timeout_cycles = _positive_int("timeout_cycles", timeout_cycles)
    out_mask = (1 << (int(mo["lanes"]) * int(mo["lane_bits"]))) - 1

    simulator = prepare(sim)
    engine = _engine(engine, simulator)
    top = manifest["top"]
    max_burst = int(min(256, max(8, float(est or 0), wpf_in, wpf_out)))
    tb_args = dict(seed=seed, valid_gap_prob=float(valid_gap_prob), ready_stall_prob=float(ready_stall_prob),
                   max_burst=max_burst, idle_limit=int(timeout_cycles), phases=["throughput", "stress"])
    if engine == "compiled":
        from . import bulk
        threads = _positive_int("threads", threads)
        run_cycles = 2 * n * max(float(est or 0), wpf_in, wpf_out)
        jobs = bulk.default_jobs(run_cycles, n) if jobs is None else _positive_int("jobs", jobs)
        if stress_frames is not None:
            stress_frames = _positive_int("stress_frames", stress_frames)
            run_cycles *= (n + min(n, stress_frames)) / (2 * n)
        opt = bulk.cxx_opt(run_cycles)
        binary, build_secs = bulk.build(simulator, out, top, sources, progress, opt=opt, threads=threads)
    else:
        if stress_frames is not None:
            raise VerifyError(f"stress_frames is an option of the compiled engine, not of {engine}")
        build_dir, build_secs = _build(simulator, out, top, sources, progress)
        for f in memfiles:                  # $readmemh opens them in the directory the simulation runs in
            shutil.copyfile(f, build_dir / f.name)
    stressed = n if stress_frames is None else min(n, stress_frames)
    _say(progress, f"simulating {n:,} frames on {simulator.name} ({engine} testbench; back to back, then "
                   f"{'the same' if stressed == n else f'the first {stressed:,}'} with random valid gaps and ready "
                   f"back-pressure, seed {seed})…")
    t0 = time.monotonic()
    if engine == "compiled":
        res = bulk.run(binary, out / "rtl", pack_words32(x_int, mi["dtype"], int(mi["lanes"])),
                       pack_words32(expected, mo["dtype"], int(mo["lanes"])),
                       out_bits=int(mo["lanes"]) * int(mo["lane_bits"]), progress=progress, jobs=jobs,
                       stress_frames=stress_frames, **tb_args)
        log = res["log"]
    else:
        cfg = {"in_frames": pack(x_int, mi["dtype"], int(mi["lanes"])),
               "out_frames": pack(expected, mo["dtype"], int(mo["lanes"])), "out_mask": out_mask, **tb_args}
        res, log = _simulate(simulator, build_dir, top, cfg, seed, progress)
    sim_secs = time.monotonic() - t0
    if res.get("error"):
        before = ""
        if res.get("mismatches"):             # where it first went wrong, before it stopped
            m = res["mismatch_list"][0]
            before = (f"; before that {res['mismatches']} mismatching word(s), the first in the {m['phase']} phase, "
                      f"frame {m['frame']} word {m['word']} (cycle {m['cycle']}): got {m['got']:#x}, "
                      f"expected {m['expected']:#x}")
        raise VerifyError(f"simulation on {simulator.name}: {res['error']}{before}; log: {log}")
    if engine == "compiled":
        outputs_int = unpack_words32(res["out_frames"], mo["dtype"], int(mo["lanes"]), tuple(mo["shape"]))
    else:
        phases = res["phases"]
        got_words = phases.get("stress", phases.get("throughput"))["out_frames"]
        if any(w is None for fr in got_words for w in fr):
            raise VerifyError(f"simulation on {simulator.name}: the testbench returned incomplete output frames; log: {log}")
        got_words = [[w & out_mask if w >= 0 else 0 for w in fr] for fr in got_words]
        outputs_int = unpack(got_words, mo["dtype"], int(mo["lanes"]), tuple(mo["shape"]))
    outputs = apply_tail(tail, outputs_int) if tail else outputs_int.astype(np.float64)
    first = [dict(m, lanes=_lane_diff(m, mo)) for m in res.get("mismatch_list", [])]
    mismatches = int(res.get("mismatches", 0))
    protocol = int(res.get("protocol_errors", 0))
    ok = mismatches == 0 and protocol == 0 and np.array_equal(outputs_int, expected)
    cycles = sum(int(p.get("cycles", 0)) for p in res["phases"].values())
    _say(progress, f"simulated in {sim_secs:.1f} s ({cycles / max(sim_secs, 1e-9):,.0f} cycles/s): {mismatches} "
                   f"mismatching words, {_fmt_cpf(res.get('cycles_per_frame'))} cycles per frame (estimate {_fmt_cpf(est)})")
    return VerifyResult(
        ok=bool(ok), mismatches=mismatches, frames=n,
        cycles_per_frame=res.get("cycles_per_frame"), estimated_cycles_per_frame=est,
        latency_cycles=res.get("latency_cycles"), outputs=outputs, outputs_int=outputs_int,
        expected_int=np.asarray(expected), simulator=simulator.name, build_seconds=build_secs,
        sim_seconds=sim_secs, seed=seed, protocol_errors=protocol,
        first_mismatches=first, out_dir=str(out), log=str(log), engine=engine, cycles=cycles)
