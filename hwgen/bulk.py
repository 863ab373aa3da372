"""The compiled bulk verifier: the stream testbench's cycle loop in C++ on a Verilated model.

``sim/tb_stream.cpp`` does what the cocotb testbench ``sim/tb_stream.py`` does,
cycle for cycle and with the same seeded gaps and stalls (it replays CPython's
Mersenne Twister from the states Python hands it), but with no Python in the
loop: millions of simulated cycles per second instead of thousands.  Python
prepares the words (:func:`hwgen.streams.pack_words32`), :func:`run` writes
them to binary files with a small config, starts the binary and reads back the
same results dict the cocotb testbench writes (mismatches with their positions,
cycle stamps, handshake violations, errors) plus the words received.

Compiling (:func:`build`) is cut to what depends on the design:

* the model is Verilated without the VPI and public signals cocotb needs
  (``-O3 --x-assign fast --x-initial fast --noassert``), and its per-cycle C++
  compiled at ``-O1`` — ``-O2`` for runs over :data:`LONG_RUN_CYCLES`, long enough
  to repay its longer compile (``bench/verify_speed.py --flags``) — and its
  initialisation code (the ROMs' contents) unoptimised, ``make -j`` on every core;
  Verilator's ``merge_cond`` pass is off (:mod:`hwgen.simulators`: it took 22 of
  25 s verilating TFC-w1a1);
* Verilator's run-time library (``verilated.cpp``, ``verilated_threads.cpp``:
  about 5 s) is compiled once per Verilator version, compiler and flags into the
  user cache and copied into every build;
* a finished binary is kept in ``OUT/sim/verilator-compiled/`` and in the user
  cache, keyed by a hash of the Verilog, the harness, the flags and the tool
  versions: the same Verilog in another build folder is not compiled again, and
  any change to the Verilog compiles anew.

The cache lives in ``$HWGEN_CACHE`` (default ``$XDG_CACHE_HOME/hwgen`` or
``~/.cache/hwgen``); set ``HWGEN_CACHE=off`` to keep nothing outside the build.
"""

import functools
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from . import progress as _progress, watch
from .errors import VerifyError
from .simulators import frames_reader, log_tail, stamped_build, testbench_dir

__all__ = ["ENGINE", "build", "run", "warm", "harness_source", "cache_dir", "mt_state", "cxx_opt", "default_jobs", "CXX_OPT"]

ENGINE = "compiled"
HARNESS = "tb_stream.cpp"
BINARY = "tb_stream"
STAMP = "hwgen-compiled-build.json"
#: C++ optimisation of the model's per-cycle code (OPT_FAST) for short runs, for long ones, and of the
#: run-time library (OPT_GLOBAL); the model's initialisation code (OPT_SLOW) is not optimised
CXX_OPT = "-O1"
CXX_OPT_LONG = "-O2"
LONG_RUN_CYCLES = 10_000_000    # -O2 costs 1.7-4x the compile and runs 1.1-1.9x faster: pays beyond this
RUNTIME_OPT = "-O2"
VERILATOR_ARGS = ("--cc", "--exe", "--prefix", "Vtop", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                  "--noassert")
RUNTIME_OBJECTS = ("verilated.o", "verilated_threads.o")
CACHE_ENTRIES = 48              # compiled models kept in the user cache (the oldest go first)


def harness_source(name=HARNESS):
    p = testbench_dir() / name
    if not p.is_file():
        raise VerifyError(f"compiled testbench {name}: not found in {p.parent}; run from a hwgen source checkout "
                          "or set HWGEN_SIM_DIR to its sim/ folder")
    return p


def cache_dir():
    """The user cache of compiled models and run-time objects, or None when ``HWGEN_CACHE=off``."""
    env = os.environ.get("HWGEN_CACHE")
    if env is not None and env.strip().lower() in ("off", "0", "none", ""):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hwgen"


PARALLEL_RUN_CYCLES = 50_000_000   # runs longer than this split their frames over every core by default


def default_jobs(cycles, frames):
    """Processes for a run of about ``cycles`` cycles over ``frames`` frames: one, unless it is long."""
    if not cycles or cycles <= PARALLEL_RUN_CYCLES:
        return 1
    return max(1, min(os.cpu_count() or 1, frames))


def cxx_opt(cycles):
    """The C++ optimisation for a run of about ``cycles`` simulated cycles (None: unknown, short)."""
    return CXX_OPT_LONG if cycles and cycles > LONG_RUN_CYCLES else CXX_OPT


def _jobs():
    return str(max(1, os.cpu_count() or 1))


def _make_vars(opt):
    # the wheel's verilated.mk names the compiler of the machine it was built on: use this one's
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or "c++"
    # OPT_SLOW (initialisation code, run once: the ROMs' contents) stays unoptimised, as Verilator has it
    return [f"CXX={cxx}", f"LINK={cxx}", f"AR={shutil.which('ar') or 'ar'}", f"OPT_FAST={opt}", "OPT_SLOW=",
            f"OPT_GLOBAL={RUNTIME_OPT}"], cxx


@functools.lru_cache(maxsize=None)
def _cxx_version(cxx):
    try:
        p = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60)
        return p.stdout.splitlines()[0] if p.stdout else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _digest(sim, top, sources, args, make_vars, cxx_version, harness=HARNESS):
    h = hashlib.sha256()
    h.update(json.dumps([ENGINE, sim.version, top, list(args), make_vars, cxx_version]
                        + ([harness] if harness != HARNESS else [])).encode())
    h.update(harness_source(harness).read_bytes())
    for s in sources:
        h.update(s.name.encode() + b"\0" + s.read_bytes() + b"\0")
    return h.hexdigest()


def _atomic_dir(final, fill):
    """Make directory ``final`` by filling a temporary sibling and renaming it (a concurrent
    maker that wins keeps its copy; nothing half-written is ever found under ``final``)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        fill(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _runtime_objects(sim, obj, make_vars, cxx_version, log):
    """Copy Verilator's compiled run-time library into ``obj`` from the user cache, compiling it
    there first when absent; without a cache, leave it to make."""
    cache = cache_dir()
    if cache is None:
        return
    runtime_vars = [v for v in make_vars if not v.startswith(("OPT_FAST=", "OPT_SLOW="))]
    key = hashlib.sha256(json.dumps([sim.version, runtime_vars, cxx_version]).encode()).hexdigest()[:16]
    where = cache / "verilator-runtime" / f"{sim.version}-{key}"
    if not all((where / o).is_file() for o in RUNTIME_OBJECTS):
        def fill(tmp):
            for f in obj.iterdir():                       # the generated makefiles name the objects' rules
                if f.suffix in (".mk", ".h", ".cpp", ".dat", ".d"):
                    shutil.copy(f, tmp / f.name)
            with open(log, "a") as lf:
                subprocess.run(["make", "-j", _jobs(), "-f", "Vtop.mk", *make_vars, *RUNTIME_OBJECTS], cwd=tmp,
                               stdout=lf, stderr=subprocess.STDOUT, check=True)
            for f in list(tmp.iterdir()):
                if f.name not in RUNTIME_OBJECTS:
                    f.unlink()
        try:
            _atomic_dir(where, fill)
        except (OSError, subprocess.CalledProcessError):
            return                                        # make compiles them in the build then
    for o in RUNTIME_OBJECTS:
        shutil.copyfile(where / o, obj / o)               # newer than the library sources: make keeps it


def _compile(sim, top, sources, obj, log, args, make_vars, cxx_version, stages, progress, harness=HARNESS):
    binary = Path(harness).stem
    args = [sim.executable, *args, "--top-module", top, "-Mdir", str(obj),
            *[str(s) for s in sources], str(harness_source(harness)), "-o", binary]
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    with watch.watched(f"compile with verilator {sim.version} (compiled testbench)", log=log, stages=stages,
                       enabled=bool(progress)):
        with open(log, "a") as lf:
            lf.write("$ " + " ".join(args) + "\n")
            lf.flush()
            subprocess.run(args, stdout=lf, stderr=subprocess.STDOUT, check=True)
            _runtime_objects(sim, obj, make_vars, cxx_version, log)
            cmd = ["make", "-j", _jobs(), "-f", "Vtop.mk", *make_vars,
                   # the wheel leaves the precompiled header's include flag empty (simulators._fix_wheel_pch)
                   "CFG_CXXFLAGS_PCH_I=-include", binary]
            lf.write("$ " + " ".join(cmd) + "\n")
            lf.flush()
            subprocess.run(cmd, cwd=obj, stdout=lf, stderr=subprocess.STDOUT, check=True, env=env)


def _from_cache(digest, binary):
    cache = cache_dir()
    if cache is None:
        return False
    entry = cache / "models" / digest[:32]
    if not (entry / binary.name).is_file():
        return False
    shutil.copy2(entry / binary.name, binary)
    os.utime(entry)                                       # recently used: pruned last
    return True


def _to_cache(digest, binary):
    cache = cache_dir()
    if cache is None:
        return
    models = cache / "models"
    entry = models / digest[:32]
    try:
        if not entry.is_dir():
            _atomic_dir(entry, lambda tmp: shutil.copy2(binary, tmp / binary.name))
        kept = sorted((d for d in models.iterdir() if d.is_dir() and not d.name.startswith(".")),
                      key=lambda d: d.stat().st_mtime, reverse=True)
        for old in kept[CACHE_ENTRIES:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass                                              # a cache that cannot be written is no error


def build(sim, out, top, sources, progress=True, opt=None, threads=1, build_dir=None, harness=HARNESS):
    """The compiled testbench for ``sources`` in ``OUT/sim/verilator-compiled/``: reused when its
    hash matches, else taken from the user cache, else compiled.  Returns (binary, seconds spent).

    ``opt``: the C++ optimisation of the model (default :data:`CXX_OPT`); ``threads``: Verilator's
    ``--threads`` (1: none); ``harness``: the C++ main in ``sim/`` (default the stream testbench;
    ``tb_uart_pty.cpp``: the board bridge, :mod:`hwgen.shell.simboard`)."""
    opt = opt or CXX_OPT
    build_dir = Path(build_dir) if build_dir else out / "sim" / f"{sim.name}-{ENGINE}"
    binary = build_dir / Path(harness).stem
    make_vars, cxx = _make_vars(opt)
    cxx_version = _cxx_version(cxx)
    args = VERILATOR_ARGS + (("--threads", str(int(threads))) if int(threads) > 1 else ()) + tuple(sim.build_args)
    digest = _digest(sim, top, sources, args, make_vars, cxx_version, harness)
    stamp = build_dir / STAMP
    if stamped_build(build_dir, STAMP, digest, binary):
        _progress.info(f"verify: reusing the compiled testbench in {build_dir}", enabled=bool(progress))
        return binary, 0.0
    t0 = time.monotonic()
    log = build_dir / "build.log"
    if _from_cache(digest, binary):
        _progress.info(f"verify: the compiled testbench of this Verilog is in the cache ({cache_dir()})",
                       enabled=bool(progress))
        log.write_text(f"copied from the cache entry {digest[:32]}\n")
    else:
        obj = build_dir / "obj"
        try:
            _compile(sim, top, sources, obj, log, args, make_vars, cxx_version, watch.CompileStages(), progress,
                     harness)
        except (subprocess.CalledProcessError, OSError) as e:
            raise VerifyError(f"simulator verilator: compiling the compiled testbench of "
                              f"{', '.join(str(s) for s in sources)} failed ({log_tail(log) or e}); full log: {log}") from None
        if not (obj / binary.name).is_file():
            raise VerifyError(f"simulator verilator: compiling produced no {binary.name}; full log: {log}")
        shutil.move(obj / binary.name, binary)
        shutil.rmtree(obj, ignore_errors=True)            # objects are not reused: the binary is
        _to_cache(digest, binary)
    secs = time.monotonic() - t0
    stamp.write_text(json.dumps({"digest": digest, "engine": ENGINE, "simulator": sim.name, "version": sim.version,
                                 "sources": [str(s) for s in sources], "seconds": round(secs, 2)}, indent=1) + "\n")
    return binary, secs


PASSTHROUGH = """module hwgen_top(input clk, input rst, input [7:0] s_axis_tdata, input s_axis_tvalid,
    output s_axis_tready, output [7:0] m_axis_tdata, output m_axis_tvalid, input m_axis_tready);
  assign s_axis_tready = m_axis_tready;
  assign m_axis_tdata = s_axis_tdata;
  assign m_axis_tvalid = s_axis_tvalid;
endmodule
"""


def warm(sim=None, progress=False):
    """Compile Verilator's run-time library into the user cache now (``make setup`` does), on a
    one-line pass-through design; returns the seconds it took (about 0 when already there)."""
    from .simulators import prepare
    sim = sim or prepare("verilator")
    with tempfile.TemporaryDirectory(prefix="hwgen-warm-") as tmp:
        rtl = Path(tmp) / "hwgen_top.v"
        rtl.write_text(PASSTHROUGH)
        t = time.monotonic()
        build(sim, Path(tmp), "hwgen_top", [rtl], progress=progress)
        return time.monotonic() - t


def mt_state(seed_text):
    """The 625 numbers of ``random.Random(seed_text)``'s Mersenne Twister state (the testbench's RNG)."""
    return random.Random(seed_text).getstate()[1]


def _shards(n, jobs):
    """Contiguous (first frame, frames) slices of ``n`` frames for ``jobs`` processes."""
    jobs = max(1, min(int(jobs), n))
    bounds = [n * k // jobs for k in range(jobs + 1)]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]


def _plan(n, jobs, phases, stress_frames):
    """The processes of a run: (first frame, frames, phases) each, all phases over every frame unless
    ``stress_frames`` limits the later phases to the first frames."""
    if stress_frames is None or stress_frames >= n or len(phases) < 2:
        return [(a, c, list(phases)) for a, c in _shards(n, jobs)]
    k = max(1, int(stress_frames))
    return ([(a, c, list(phases[:1])) for a, c in _shards(n, jobs)] +
            [(a, c, list(phases[1:])) for a, c in _shards(k, jobs)])


def _multi_reader(t, plan):
    """Progress of a run of several processes (lines ``<phase> <done> <frames> <process>``): frames
    done summed over every process and phase."""
    done = {}

    def on_line(line):
        parts = line.split()
        if len(parts) >= 4 and parts[1].isdigit() and parts[3].isdigit() and int(parts[3]) < len(plan):
            _, count, phases = plan[int(parts[3])]
            if parts[0] in phases:
                done[parts[3]] = phases.index(parts[0]) * count + int(parts[1])
                t.update(sum(done.values()), stage=f"{parts[0]} phase")
    return on_line


def _merge(parts, plan, phases):
    """One results dict from the processes' (frame numbers made global; the first process measures
    the interval and latency; cycles summed; the first mismatches in phase, frame and word order;
    the words received: those of the processes that ran the first phase, else of all)."""
    res = dict(parts[0])
    res["mismatches"] = sum(p["mismatches"] for p in parts)
    res["protocol_errors"] = sum(p["protocol_errors"] for p in parts)
    mism, prot = [], []
    for (first, _, _), p in zip(plan, parts):
        mism += [dict(m, frame=m["frame"] + first) for m in p["mismatch_list"]]
        prot += [f"frames from {first}: {m}" if len(parts) > 1 else m for m in p["protocol_list"]]
    order = {ph: i for i, ph in enumerate(phases)}
    res["mismatch_list"] = sorted(mism, key=lambda m: (order.get(m["phase"], 0), m["frame"], m["word"]))[:50]
    res["protocol_list"] = prot[:50]
    res["phases"] = {}
    for p in parts:
        for ph, doc in p["phases"].items():
            if ph in res["phases"]:
                res["phases"][ph]["cycles"] += doc.get("cycles", 0)
            else:
                res["phases"][ph] = dict(doc)
    for p in parts:
        if p.get("cycles_per_frame") is not None or p.get("latency_cycles") is not None:
            res["cycles_per_frame"], res["latency_cycles"] = p.get("cycles_per_frame"), p.get("latency_cycles")
            break
    errors = [(first, p["error"]) for (first, _, _), p in zip(plan, parts) if p.get("error")]
    res["error"] = None if not errors else (errors[0][1] if len(parts) == 1 else
                                            f"the run of frames from {errors[0][0]}: {errors[0][1]}")
    split = any(ph != plan[0][2] for _, _, ph in plan)
    res["out_frames"] = np.concatenate([p["out_frames"] for (_, _, ph), p in zip(plan, parts)
                                        if not split or ph[0] == phases[0]])
    return res


def run(binary, rtl_dir, in_words, exp_words, *, out_bits, seed, valid_gap_prob, ready_stall_prob, max_burst,
        idle_limit, phases, progress=True, jobs=1, stress_frames=None,
        what="simulate on verilator (compiled testbench)"):
    """Run the compiled testbench; return its results dict (tb_stream.py's keys, words as ints,
    ``out_frames``: the words received as an (N, words, chunks) uint32 array).

    ``in_words``/``exp_words``: uint32 arrays (frames, words per frame, 32-bit chunks per word).
    ``jobs`` > 1 splits the frames into that many contiguous runs, each from reset in its own
    process (frames are independent; the cycle stamps of a run after the first are its own);
    ``stress_frames`` runs the phases after the first on the first frames only."""
    in_words = np.ascontiguousarray(in_words, dtype="<u4")
    exp_words = np.ascontiguousarray(exp_words, dtype="<u4")
    n, in_wpf, in_nw = in_words.shape
    _, out_wpf, out_nw = exp_words.shape
    plan = _plan(n, jobs, phases, stress_frames)
    base = {"in_wpf": in_wpf, "out_wpf": out_wpf, "in_nw": in_nw, "out_nw": out_nw, "out_bits": int(out_bits),
            "gap_p": repr(float(valid_gap_prob)), "stall_p": repr(float(ready_stall_prob)),
            "max_burst": int(max_burst), "idle_limit": int(idle_limit)}
    for phase in phases:
        for side in ("valid", "ready"):
            base[f"mt_{phase}_{side}"] = " ".join(map(str, mt_state(f"{seed}/{phase}/{side}")))
    log = binary.parent / "sim.log"
    logs = [log] + [binary.parent / f"sim.{k}.log" for k in range(1, len(plan))]
    for stale in binary.parent.glob("sim.*.log"):
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="hwgen-run-", dir=binary.parent) as tmp:
        tmp = Path(tmp)
        progress_file = tmp / "progress.txt"
        cfgs = []
        for k, (first, count, ph) in enumerate(plan):
            cfg = dict(base, frames=count, phases=" ".join(ph), in_words=tmp / f"in{k}.bin",
                       out_words=tmp / f"expected{k}.bin", results=tmp / f"results{k}.json",
                       out_file=tmp / f"received{k}.bin", progress=progress_file)
            if len(plan) > 1:
                cfg["progress_tag"] = k
            in_words[first:first + count].tofile(cfg["in_words"])
            exp_words[first:first + count].tofile(cfg["out_words"])
            (tmp / f"config{k}.txt").write_text("".join(f"{key} {v}\n" for key, v in cfg.items()))
            cfgs.append(cfg)
        if len(plan) == 1:
            total, unit = n, "frames"
        else:
            total, unit = sum(c * len(ph) for _, c, ph in plan), f"frame-phases in {len(plan)} processes"
        with _progress.task(what, enabled=bool(progress), log=str(log), total=total, unit=unit) as t:
            reader = frames_reader(t, list(phases), n) if len(plan) == 1 else _multi_reader(t, plan)
            with watch.follow(progress_file, reader):
                codes, running = [None] * len(plan), {}
                for k in range(len(plan)):
                    while len(running) >= max(1, int(jobs)):
                        k_done = _wait_any(running)
                        codes[k_done] = running.pop(k_done).returncode
                    with open(logs[k], "w") as lf:
                        running[k] = subprocess.Popen([str(binary), str(tmp / f"config{k}.txt")], cwd=rtl_dir,
                                                      stdout=lf, stderr=subprocess.STDOUT)
                for k, p in running.items():
                    codes[k] = p.wait()
        parts = []
        for cfg, code, lg, (_, count, _) in zip(cfgs, codes, logs, plan):
            try:
                part = json.loads(cfg["results"].read_text())
            except (OSError, ValueError):
                raise VerifyError(f"simulator verilator: the compiled testbench wrote no results (exit status "
                                  f"{code}: {lg.read_text(errors='replace').strip()[-300:] or 'no output'}); "
                                  f"log: {lg}") from None
            part["out_frames"] = np.fromfile(cfg["out_file"], dtype="<u4").reshape(count, out_wpf, out_nw)
            for m in part["mismatch_list"]:
                m["got"], m["expected"] = int(m["got"], 16), int(m["expected"], 16)
            parts.append(part)
    res = _merge(parts, plan, list(phases))
    res["log"] = str(log)
    return res


def _wait_any(running):
    """The key of a finished process of ``running`` (a dict of Popen), waiting for one."""
    while True:
        for k, p in running.items():
            if p.poll() is not None:
                return k
        time.sleep(0.05)
