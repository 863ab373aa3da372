"""``python -m hwgen.flows``: the helper steps the rendered Makefile runs.

* ``run --what STEP --log LOG [--stages S] [--capture] [--quiet] -- TOOL ARGS…``: runs one
  tool (yosys, nextpnr, ecppack) with progress lines: the command, its stage, the elapsed time
  and the log (:mod:`hwgen.watch`);
* ``summarize-synth`` / ``summarize-pnr`` / ``summarize-bitstream``: write ``synth/<family>.json``,
  ``pnr/<family>.json``, ``bitstream/<family>.json`` from the tools' outputs, then re-render the
  build's ``report.md``.

Progress goes through :mod:`hwgen.progress`; a failure of the helper itself is one
``hwgen: error: …`` line on standard error and a non-zero exit status.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from .. import manifest, watch
from ..errors import HwgenError
from ..files import write_text
from .cells import summarize_synth
from .pnr import summarize_bitstream, summarize_pnr
from .report import read_json, write_synth_report

__all__ = ["main"]


def _error(message):
    """The helper's own failure: one ``hwgen: error:`` line (the Makefile's recipe then fails)."""
    print(f"hwgen: error: {message}", file=sys.stderr)


def _dump(doc, path):
    write_text(Path(path), json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _run_tool(a):
    """``python -m hwgen.flows run``: how the rendered Makefile runs yosys, nextpnr and ecppack."""
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        _error("run: no command after --")
        return 2
    tool = os.path.basename(cmd[0])
    stages = watch.STAGES[a.stages]() if a.stages else None
    try:
        rc, lines = watch.run(cmd, f"{a.what} ({tool})", log=a.log, stages=stages,
                              output="log" if a.capture else "inherit", enabled=not a.quiet)
    except OSError as e:
        _error(f"{a.what}: cannot run {cmd[0]} ({e.strerror or e})")
        return 127
    if rc and a.capture:
        # the tool's own output (captured in the log) on failure, as if it had not been captured
        sys.stderr.write("".join(l + "\n" for l in lines[-20:]))
    return rc


def _layer_modules(report_path, manifest_path):
    """The manifest's ``{layer name: Verilog module name}`` (None for a manifest without them).
    ``manifest_path``: by default ``manifest.json`` beside ``report_path`` (both in the build directory)."""
    path = manifest_path or os.path.join(os.path.dirname(os.path.abspath(report_path)), manifest.FILE)
    return manifest.layer_modules(manifest.read(path))


def _parser():
    ap = argparse.ArgumentParser(prog="python -m hwgen.flows", description="helper steps of the rendered Makefile")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarize-synth")
    s.add_argument("--family", required=True)
    s.add_argument("--report", required=True)
    s.add_argument("--manifest", help="the build's manifest.json (the layers' module names; default: beside --report)")
    s.add_argument("--hier", required=True)
    s.add_argument("--flat", required=True)
    s.add_argument("-o", required=True)
    p = sub.add_parser("summarize-pnr")
    p.add_argument("--report-json", required=True)
    for k in ("--device", "--package", "--clock-mhz", "-o"):
        p.add_argument(k, required=True)
    p.add_argument("--speed", help="ECP5 speed grade (none on iCE40)")
    p.add_argument("--family", default="ecp5", choices=["ecp5", "ice40"])
    p.add_argument("--board", help="the board the shell was placed for")
    p.add_argument("--seed", type=int)
    b = sub.add_parser("summarize-bitstream")
    for k in ("--bit", "--pnr", "--board", "-o"):
        b.add_argument(k, required=True)
    r = sub.add_parser("run", help="run one tool with progress lines: its stage, elapsed time and log")
    r.add_argument("--what", required=True, help="the step, e.g. synth-ecp5")
    r.add_argument("--log", required=True, help="the log the tool writes (or, with --capture, that its output goes to)")
    r.add_argument("--stages", choices=sorted(watch.STAGES), help="read the stage from the log")
    r.add_argument("--capture", action="store_true", help="append the tool's output to --log (shown on failure)")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- the tool and its arguments")
    return ap


def main(argv=None):
    a = _parser().parse_args(argv)
    if a.cmd == "run":
        return _run_tool(a)
    try:
        if a.cmd == "summarize-synth":
            doc = summarize_synth(a.family, read_json(a.hier), read_json(a.flat), read_json(a.report),
                                  modules=_layer_modules(a.report, a.manifest))
        elif a.cmd == "summarize-pnr":
            doc = summarize_pnr(read_json(a.report_json), device=a.device, package=a.package, speed=a.speed,
                                clock_mhz=float(a.clock_mhz), seed=a.seed, family=a.family, board=a.board)
        else:
            doc = summarize_bitstream(a.bit, read_json(a.pnr), a.board)
    except (HwgenError, OSError, ValueError) as e:
        _error(e)
        return 2
    _dump(doc, a.o)
    if a.cmd in ("summarize-synth", "summarize-pnr"):
        # report.md of the build (cwd of the rendered Makefile) shows what synthesis/P&R measured
        write_synth_report(os.path.dirname(os.path.dirname(os.path.abspath(a.o))))
    return 0
