"""Running the flow targets of a build: :func:`run` runs one through ``make -C OUT`` (the
YoWASP tools of the running Python's environment on ``PATH``), relays the progress lines of
the tools (the rendered Makefile runs each under ``python -m hwgen.flows run``) and returns
what the step measured.  Failures raise one-line :class:`~hwgen.errors.HwgenError`.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .. import manifest, progress as _progress, watch
from ..devices import FAMILIES
from ..errors import HwgenError, ManifestError
from ..shell.boards import DEFAULT_BOARD, board as _board
from ..shell.render import write_shell
from .render import DEFAULT_TOOLS, FLOWS_FORMAT, write_flows
from .report import read_json, write_synth_report

__all__ = ["run", "TARGETS"]

TARGETS = ("synth",) + tuple(f"synth-{f}" for f in FAMILIES) + ("pnr", "bitstream", "vivado", "all", "clean")
_STEP_TOOL = {"synth": ("YOSYS", "yosys"), "vivado": ("VIVADO", "vivado"),
              ("pnr", "ecp5"): ("NEXTPNR_ECP5", "nextpnr_ecp5"), ("bitstream", "ecp5"): ("ECPPACK", "ecppack"),
              ("pnr", "ice40"): ("NEXTPNR_ICE40", "nextpnr_ice40"), ("bitstream", "ice40"): ("ICEPACK", "icepack")}
_LOG = {("pnr", "ecp5"): "pnr/ecp5.log", ("bitstream", "ecp5"): "bitstream/ecppack.log",
        ("pnr", "ice40"): "pnr/ice40.log", ("bitstream", "ice40"): "bitstream/icepack.log", "vivado": "vivado/vivado.log"}


def _family(out):
    """The device family of the board the build's shell is rendered for (board/board.json)."""
    try:
        return read_json(out / "board" / "board.json")["family"]
    except (OSError, ValueError, KeyError):
        return "ecp5"


def _first_error(log):
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith("ERROR") or " ERROR: " in line or line.startswith("Error"):
                    return line.strip()
    except OSError:
        pass
    return None


def _ensure_flows(out, board=None):
    """Render the flow files and the board shell of build ``out`` from its manifest, unless hwgen
    rendered them already for ``board`` (None: the board they were rendered for, else ulx3s)."""
    mk = out / "Makefile"
    if mk.exists() and FLOWS_FORMAT not in mk.read_text(errors="replace").split("\n", 1)[0]:
        raise HwgenError(f"flows: {mk} was not written by hwgen; remove it or use another build directory")
    if board is not None:
        _board(board)
    try:
        current = read_json(out / "board" / "board.json").get("board")
    except (OSError, ValueError, AttributeError):
        current = None
    want = board or current or DEFAULT_BOARD
    if mk.exists() and current == want:
        return
    try:
        man = manifest.load(out, files=False)      # a missing source is make's to report, with its rule
    except ManifestError as e:
        raise HwgenError(f"flows: {e}") from None
    write_shell(out, man, want)
    write_flows(out, man, board=want)


def _make_step(out, step, make_target, env, make_vars, progress, summary=None):
    kind = step.split("-")[0]
    var, key = _STEP_TOOL.get(kind) or _STEP_TOOL[(kind, _family(out))]
    tool = make_vars.get(var, DEFAULT_TOOLS[key])
    if not shutil.which(tool, path=env["PATH"]):
        hint = "run `make setup`" if step != "vivado" else \
            "the project script is vivado/create_project.tcl (vivado -mode batch -source vivado/create_project.tcl)"
        raise HwgenError(f"{step}: {tool} not found; {hint}")
    cmd = ["make", "-C", str(out), "--no-print-directory", make_target] + [f"{k}={v}" for k, v in sorted(make_vars.items())]
    fresh = subprocess.run(cmd[:4] + ["-q"] + cmd[4:], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL).returncode == 0
    log = out / (_LOG.get(step) or _LOG.get((step, _family(out))) or f"synth/{step.split('-', 1)[1]}.log")
    if fresh:
        _progress.info(f"{step}: up to date" + (f": {summary(out)}" if summary else ""), enabled=progress)
        return 0.0
    # the Makefile's recipes run each tool under `python -m hwgen.flows run`, whose [hwgen] lines
    # (command, log, stage, heartbeat) are relayed as this task's; the task's own heartbeat covers the rest
    t = time.perf_counter()
    rc, lines = watch.run(cmd, step, output="relay", enabled=progress, env=env, announce=False)
    dt = time.perf_counter() - t
    if rc != 0:
        err = _first_error(log) if log.exists() else None
        if err:
            raise HwgenError(f"{step}: {tool} failed, see {log}: {err}")
        lines = [l for l in lines if not l.startswith("make")]
        last = lines[-1].strip() if lines else f"make exited with {rc}"
        raise HwgenError(f"{step}: failed ({last}); log {log}")
    if summary:
        _progress.info(f"{step}: {summary(out)}", enabled=progress)
    return dt


def _synth_line(family):
    def f(out):
        t = read_json(out / f"synth/{family}.json")["total"]
        return f"{t['LUT']:,} LUT, {t['LUTRAM']:,} LUTRAM, {t['FF']:,} FF, {t['BRAM18']} BRAM18, {t['DSP']} DSP"
    return f


def _pnr_line(out):
    p = read_json(out / f"pnr/{_family(out)}.json")
    return f"Fmax {p['fmax_mhz']:.1f} MHz (target {p['clock_mhz']:g} MHz, {'met' if p['timing_met'] else 'FAILED'})"


def run(out_dir, target="synth", progress=True, *, families=None, make_vars=None, board=None):
    """Run flow ``target`` of build directory ``out_dir`` and return what it measured.

    ``target``: ``synth`` (every family in ``families``, default all three) → ``{family: synth json}``;
    ``synth-<family>`` → that family's ``synth/<family>.json``; ``pnr`` → ``pnr/<family>.json`` of
    the board's family (synthesises first); ``bitstream`` → ``bitstream/<family>.json``; ``all`` → ``{"synth": …,
    "pnr": …, "bitstream": …}``; ``vivado`` → report paths (needs Vivado); ``clean`` → ``{}``.
    Each returned document also gets ``"seconds"`` (wall time of this call's step; 0 when
    make found it up to date). ``make_vars`` override Makefile variables (``{"ECP5_SPEED": 6}``).
    ``board``: a name of :data:`hwgen.shell.boards.BOARDS`; when the build's shell and flows were
    rendered for another board (or not at all) they are rendered for this one first (default: the
    board they were rendered for, else ulx3s). make decides what is out of date
    from file times only: after changing ``make_vars``, run ``clean`` first. Failures raise one-line
    :class:`HwgenError` naming the step, the tool and its log.
    """
    if target not in TARGETS:
        raise HwgenError(f"flows: target must be one of {', '.join(TARGETS)}, not {target!r}")
    out = Path(os.fspath(out_dir)).resolve()
    if not out.is_dir():
        raise HwgenError(f"flows: build directory {out} does not exist")
    if not shutil.which("make"):
        raise HwgenError("flows: make not found; install GNU make (apt-get install make)")
    _ensure_flows(out, board)
    make_vars = {k: str(v) for k, v in (make_vars or {}).items()}
    make_vars.setdefault("PYTHON", sys.executable)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(sys.executable)) + os.pathsep + env.get("PATH", "")
    env["HWGEN_HEARTBEAT_S"] = f"{_progress.HEARTBEAT_S:g}"     # the Makefile's runner beats in step with us

    def synth(fam):
        dt = _make_step(out, f"synth-{fam}", f"synth-{fam}", env, make_vars, progress, _synth_line(fam))
        doc = {**read_json(out / f"synth/{fam}.json"), "seconds": round(dt, 2)}
        write_synth_report(out)
        return doc

    def other(step):
        line = _pnr_line if step == "pnr" else None
        dt = _make_step(out, step, step, env, make_vars, progress, line)
        return {**read_json(out / step / f"{_family(out)}.json"), "seconds": round(dt, 2)}

    if target == "clean":
        subprocess.run(["make", "-C", str(out), "--no-print-directory", "clean"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {}
    if target.startswith("synth-"):
        return synth(target.split("-", 1)[1])
    fams = tuple(families or FAMILIES)
    if target == "synth":
        return {f: synth(f) for f in fams}
    if target == "vivado":
        dt = _make_step(out, "vivado", "vivado", env, make_vars, progress)
        reports = out / "vivado" / "reports"
        return {"project": str(out / "vivado" / "project"), "seconds": round(dt, 2),
                "reports": sorted(str(p) for p in reports.glob("*.rpt"))}
    res = {}
    if target == "all":
        res["synth"] = {f: synth(f) for f in fams}
    elif target in ("pnr", "bitstream"):
        synth(_family(out))
    res["pnr"] = other("pnr")
    if target in ("bitstream", "all"):
        res["bitstream"] = other("bitstream")
    return res if target == "all" else res[target]
