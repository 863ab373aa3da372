"""The ``hwgen`` command line.

    hwgen build MODEL.onnx -o OUT [--folding F.json] [--fps N] [--clock-mhz F] [--topk K]
                [--device D] [--max-lut N] [--max-ff N] [--max-bram N] [--max-dsp N] [--margin M]
    hwgen explore MODEL.onnx [--device D] [--clock-mhz F] [--points N] [--png OUT.png]
    hwgen verify OUT [--inputs X.npy] [--frames N] [--sim verilator|icarus] [--engine compiled|cocotb] [--jobs N]
                 [--stress-frames N] [--seed S]
    hwgen flows OUT [synth|synth-xilinx|synth-ecp5|synth-ice40|pnr|bitstream|vivado|all|clean] [--families F ...]
    hwgen search --example digits-mlp|digits-cnn|digits-res-mlp -o OUT [--start BREVITAS.pt] [--fps N]
                 [--clock-mhz F] [--points N] [--epochs N] [--restarts N] [--test-fraction F]
                 [--max-lut N | --device D | --min-accuracy P] [--sim verilator|icarus] [--no-synth] [--seed S]
    hwgen deploy OUT [--board B] [--no-bitstream] [--force]
    hwgen run OUT --inputs X.npy [--port P] [--baud N] [--timeout S] [--window N] [-o Y.npy]

A user error prints one line ``hwgen: error: …`` and exits 2 (``--debug``
shows the traceback); ``verify`` exits 1 when any word mismatches.
"""

import argparse
import os
import sys

from .devices import FAMILIES
from .errors import HwgenError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line ``hwgen: error: …`` (exit 2) like every other error."""

    def error(self, message):
        self.exit(2, f"hwgen: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _parser():
    from .devices import DEVICES
    p = _Parser(prog="hwgen", description="Quantised neural networks to bit-exact FPGA dataflow accelerators.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    b = sub.add_parser("build", help="compile a QONNX model into Verilog + manifest + report",
                       description="Compile a QONNX model into OUT/ (Verilog, manifest, report, flows).",
                       epilog="OUT must be a new path or a directory an earlier `hwgen build` wrote (it holds a "
                              "hwgen manifest.json and nothing hwgen did not write); it is replaced atomically "
                              "once the new build is complete, so a failed or interrupted build leaves the "
                              "previous one intact. Any other directory or file, '.', and the input model or a "
                              "directory holding it are refused before any work; --force replaces them, except "
                              "the input model or a directory holding it.")
    b.add_argument("model", help="QONNX (.onnx) file")
    b.add_argument("-o", "--out", required=True, help="output build directory (new, or an earlier build's)")
    b.add_argument("--force", action="store_true", help="replace OUT even when hwgen did not write it "
                   "(never the input model or a directory holding it)")
    b.add_argument("--allow-slower", action="store_true", help="with --fps and --folding: warn instead of "
                   "failing when a layer the folding file pins misses the target")
    b.add_argument("--folding", help='JSON file {"layer": {"pe": P, "simd": S}}')
    b.add_argument("--fps", type=float, help="throughput target in frames/s (default: none: the pace of the layers a --folding "
                   "file pins, else, without --device or limits, the fastest folding that fits the default "
                   "device, xcu250 at --margin, up to 1e6)")
    b.add_argument("--clock-mhz", type=float, default=100.0, help="clock target in MHz (default 100)")
    b.add_argument("--name", help="design name (default: the model file's stem)")
    b.add_argument("--save-steps", action="store_true", help="save each pipeline step's graph under OUT/steps/")
    b.add_argument("--topk", type=int, default=None, help="end in a hardware label-select streaming the K best class indices")
    _budget_args(b)
    b.add_argument("--board", default="ulx3s", help="board of the shell that `make pnr`/`bitstream` implement: "
                   "ulx3s (ECP5-85F, the default), ulx3s-12f, ulx3s-25f, ulx3s-45f or icebreaker (iCE40UP5K)")
    b.add_argument("--io", default="stream", choices=["stream", "parallel"],
                   help="stream (AXI4-Stream, default) or parallel: every layer fully unrolled with constant weights, "
                        "no FIFOs, and hwgen_top_parallel with the whole frame in and out, valid only (low latency)")
    b.add_argument("-q", "--quiet", action="store_true")

    e = sub.add_parser("explore", help="sweep throughput targets: LUT/FF/BRAM/DSP of the folding search vs FINN-style greedy")
    e.add_argument("model", help="QONNX (.onnx) file")
    e.add_argument("--clock-mhz", type=float, default=100.0, help="clock target in MHz (default 100)")
    e.add_argument("--points", type=int, default=12, help="throughput targets, log-spaced from the slowest to the fastest folding (default 12)")
    e.add_argument("--png", help="plot LUT vs frames/s (log axes) to this PNG")
    e.add_argument("--family", choices=list(FAMILIES), help="resource family without --device (default xilinx)")
    e.add_argument("--topk", type=int, default=None, help="as for build")
    _budget_args(e)
    e.add_argument("-q", "--quiet", action="store_true")

    v = sub.add_parser(
        "verify", help="simulate a build and check every output word against the reference",
        description="Simulate the build's Verilog and check every output word against the IR reference, twice: "
        "frames back to back (cycles per frame, latency), then under seeded random valid gaps and ready "
        "back-pressure (the output handshake checked too). Which engine runs: on Verilator (the default) the "
        "compiled testbench, a C++ cycle loop around the Verilated model (millions of cycles per second; "
        "--engine cocotb runs the same checks from Python, cycle for cycle alike, a few ten thousand cycles per "
        "second); on Icarus, the independent second simulator for small designs, the cocotb testbench.")
    v.add_argument("out", help="build directory")
    v.add_argument("--inputs", help=".npy of float model inputs (default: random inputs of the right shape and range)")
    v.add_argument("--frames", type=int, default=None, help="number of random frames (default 32)")
    v.add_argument("--sim", default="verilator", choices=["verilator", "icarus"],
                   help="simulator (default verilator; icarus: the second, independent one, for small designs)")
    v.add_argument("--engine", choices=["compiled", "cocotb"], default=None,
                   help="testbench: compiled (C++, the default on verilator) or cocotb (Python; the only one on icarus)")
    v.add_argument("--stress-frames", type=int, default=None, help="compiled testbench: run the gaps-and-back-pressure "
                   "phase on the first N frames only (every frame still runs back to back; default: all)")
    v.add_argument("--jobs", type=int, default=None, help="compiled testbench: processes to split the frames over, each "
                   "from reset (default 1, every core for runs over 50 M cycles)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("-q", "--quiet", action="store_true")

    f = sub.add_parser("flows", help="run an implementation flow of a build (yosys, nextpnr-ecp5/-ice40, ecppack/icepack, "
                       "Vivado)")
    f.add_argument("out", help="build directory")
    f.add_argument("target", nargs="?", default="synth", help="synth (default), synth-xilinx, synth-ecp5, synth-ice40, "
                   "pnr, bitstream, vivado, all or clean")
    f.add_argument("--families", nargs="+", help="families of `synth`/`all` (default: xilinx ecp5 ice40)")
    f.add_argument("--board", help="render the board shell and flows for this board first (ulx3s, ulx3s-12f, "
                   "ulx3s-25f, ulx3s-45f, icebreaker; default: the board the build was rendered for)")
    f.add_argument("-q", "--quiet", action="store_true")

    s = sub.add_parser("search", help="mixed-precision bit allocation: train, search, build, verify and synthesise "
                       "the accuracy-LUT frontier and uniform baselines")
    s.add_argument("--example", required=True, help="float model and data: digits-mlp, digits-cnn or digits-res-mlp (a residual block)")
    s.add_argument("-o", "--out", required=True, help="output directory (search.md, search.json, frontier.png, builds)")
    s.add_argument("--fps", type=float, help="throughput target in frames/s (default: the example's, 1e6 / 1.5e5)")
    s.add_argument("--clock-mhz", type=float, default=100.0, help="clock target in MHz (default 100)")
    s.add_argument("--points", type=int, default=6, help="levels of the frontier sweep (predicted loss, or LUT budgets under "
                   "--max-lut/--device; default 6)")
    s.add_argument("--epochs", type=int, default=40, help="epochs of float training and of each QAT (default 40)")
    s.add_argument("--start", metavar="MODEL.pt", help="start from this trained Brevitas nn.Sequential (saved whole "
                   "with torch.save) instead of the example's float model; the example gives the data and target")
    s.add_argument("--max-lut", type=int, help="LUT6 budget: the frontier sweeps up to it and the summary names the "
                   "most accurate design within it (default: sweep up to uniform W4A4's cost)")
    s.add_argument("--device", help="a Xilinx part whose LUTs × 0.9 are the budget: " +
                   ", ".join(d for d, v in DEVICES.items() if v[0] == "xilinx"))
    s.add_argument("--min-accuracy", type=float, help="accuracy floor in percent: the summary names the cheapest "
                   "design reaching it")
    s.add_argument("--restarts", type=int, default=3, help="QAT runs (seeds) per configuration; the validation set "
                   "keeps the best (default 3)")
    s.add_argument("--test-fraction", type=float, default=0.5, help="share of the digits held out as the test set "
                   "(default 0.5); a fifth of the rest is the validation set")
    s.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    s.add_argument("--no-synth", action="store_true", help="skip yosys synthesis (plot estimated LUTs)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-q", "--quiet", action="store_true")

    from .deploy import UART_BOARDS, XILINX_BOARDS
    d = sub.add_parser("deploy", help="write OUT/deploy/: bitstream, standalone driver (numpy + pyserial), "
                       "validate.py, README", description="Write OUT/deploy/, everything a board's host needs "
                       "without hwgen: the bitstream, manifest.json, board.json, the driver package (hwgen's own "
                       "driver modules), driver.py, validate.py and a README. For a Zynq board (--board "
                       f"{', '.join(XILINX_BOARDS)}): a Vivado block design (bd.tcl) and the PYNQ driver instead of "
                       "the bitstream (generated, not run here).",
                       epilog="OUT/deploy is replaced atomically, and only when hwgen deploy wrote it.")
    d.add_argument("out", help="build directory (made with `hwgen build --board B` for a UART board)")
    d.add_argument("--board", help=f"board (default: OUT/board/board.json's): {', '.join(UART_BOARDS)} (UART), "
                   f"{', '.join(XILINX_BOARDS)} (Zynq, PYNQ)")
    d.add_argument("--no-bitstream", action="store_true", help="write the deploy directory even when the bitstream "
                   "is not built yet (a warning)")
    d.add_argument("--force", action="store_true", help="replace OUT/deploy even when hwgen deploy did not write it")

    r = sub.add_parser("run", help="run inputs through a board over the UART host link",
                       description="Send float model inputs (.npy) through the board running OUT's bitstream and "
                       "print frames, frames/s and the link's retries.")
    r.add_argument("out", help="build directory (with board/board.json) or its deploy/ directory")
    r.add_argument("--inputs", required=True, help=".npy of float model inputs (N, ...)")
    r.add_argument("--port", default="/dev/ttyUSB0", help="serial port (default /dev/ttyUSB0)")
    r.add_argument("--baud", type=int, help="baud rate (default: board.json's)")
    r.add_argument("--timeout", type=float, default=2.0, help="seconds a frame may go unanswered (default 2)")
    r.add_argument("--window", type=int, help="frames in flight (default: the device's buffer)")
    r.add_argument("-o", "--output", help="write the float outputs to this .npy")
    return p


def _budget_args(p):
    from .devices import DEFAULT_MARGIN, DEVICES
    p.add_argument("--device", help=f"fit this device: {', '.join(DEVICES)}")
    p.add_argument("--max-lut", type=int, help="LUT limit (the family's LUTs; overrides the device's)")
    p.add_argument("--max-ff", type=int, help="flip-flop limit")
    p.add_argument("--max-bram", type=int, help="block RAM limit (BRAM18 / DP16KD / EBR)")
    p.add_argument("--max-dsp", type=int, help="DSP limit")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help=f"fraction of the device a folding may use (default {DEFAULT_MARGIN})")


def _budget_kw(a):
    return {"device": a.device, "max_lut": a.max_lut, "max_ff": a.max_ff, "max_bram": a.max_bram,
            "max_dsp": a.max_dsp, "margin": a.margin}


def _cmd_build(a):
    from .build import build
    res = build(a.model, a.out, folding=a.folding, fps=a.fps, clock_mhz=a.clock_mhz, name=a.name,
                progress=not a.quiet, save_steps=a.save_steps, topk=a.topk, force=a.force,
                allow_slower=a.allow_slower, board=a.board, io=a.io, **_budget_kw(a))
    if not a.quiet:
        with open(os.path.join(res.out_dir, "report.md")) as f:
            print(f.read())
    return 0


def _cmd_explore(a):
    from .devices import make_budget
    from .explore import explore, format_table
    rows = explore(a.model, clock_mhz=a.clock_mhz, points=a.points, png=a.png, progress=not a.quiet,
                   family=a.family, topk=a.topk, **_budget_kw(a))
    b = make_budget(a.device, max_lut=a.max_lut, max_ff=a.max_ff, max_bram=a.max_bram, max_dsp=a.max_dsp,
                    margin=a.margin, family=a.family)
    print(format_table(rows, b.family if b is not None else (a.family or "xilinx")))
    if a.png:
        print(f"plot: {a.png}")
    return 0


def _cmd_verify(a):
    from .verify import verify
    res = verify(a.out, inputs=a.inputs, frames=a.frames, sim=a.sim, seed=a.seed, progress=not a.quiet, engine=a.engine,
                 jobs=a.jobs, stress_frames=a.stress_frames)
    print(res.table())
    return 0 if res.ok else 1


def _cmd_flows(a):
    from .flows import format_synth, run
    res = run(a.out, a.target, progress=not a.quiet, families=a.families, board=a.board)
    synth = res.get("synth", res) if a.target in ("synth", "all") else {a.target: res} if a.target.startswith("synth-") else {}
    for doc in synth.values():
        print(format_synth(doc) + "\n")
    for key in ("pnr", "bitstream"):
        doc = res.get(key) if a.target == "all" else res if a.target == key else None
        if doc:
            print(f"{key}: " + ", ".join(f"{k}={doc[k]}" for k in ("fmax_mhz", "clock_mhz", "timing_met", "bitstream", "bytes")
                                          if k in doc))
    return 0


def _load_start(path):
    """The Brevitas model pickled whole at ``path``."""
    import torch
    if not os.path.isfile(path):
        raise HwgenError(f"--start must be a file saved with torch.save(model), not {path!r} (no such file)")
    try:
        model = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - unpickling raises whatever the file's objects raise
        raise HwgenError(f"--start {path}: cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(model, torch.nn.Module):
        raise HwgenError(f"--start {path}: must hold a torch nn.Module, not {type(model).__name__}")
    return model


def _cmd_search(a):
    from .mixed.models import EXAMPLES
    from .mixed.search import search
    from .mixed.train import load_digits_split, seed_everything
    if a.example not in EXAMPLES:
        raise HwgenError(f"--example must be one of {', '.join(EXAMPLES)}, not {a.example!r}")
    from . import validate
    validate.positive_number(a.fps, "--fps", optional=True)
    validate.positive_number(a.clock_mhz, "--clock-mhz")
    for flag, v in (("--points", a.points), ("--epochs", a.epochs), ("--restarts", a.restarts)):
        validate.positive_int(v, flag)
    if os.path.exists(a.out) and not os.path.isdir(a.out):
        raise HwgenError(f"-o {a.out}: is an existing file; accepted: a new path or a directory (the search adds its "
                         "files and builds to it)")
    if not 0 < a.test_fraction < 1:
        raise HwgenError(f"--test-fraction must be between 0 and 1, not {a.test_fraction:g}")
    ex = EXAMPLES[a.example]
    seed_everything(a.seed)         # the float model's initial weights
    data = load_digits_split(a.seed, test_fraction=a.test_fraction, input_shape=ex["input_shape"])
    model = ex["model"]() if a.start is None else _load_start(a.start)
    res = search(model, data, out=a.out, fps=a.fps or ex["fps"], clock_mhz=a.clock_mhz, n_points=a.points,
                 epochs_float=a.epochs, epochs_qat=a.epochs, qat_restarts=a.restarts, seed=a.seed, sim=a.sim,
                 synth=not a.no_synth, max_lut=a.max_lut, device=a.device,
                 min_accuracy=None if a.min_accuracy is None else a.min_accuracy / 100,
                 progress=not a.quiet)
    print("\n".join([res.table(), ""] + res.summary() + ["", res.timing_table()]))
    print(f"written: {', '.join(res.files.values())}")
    return 0 if all(r.mismatches == 0 for r in res.rows) else 1


def _cmd_deploy(a):
    from .deploy import deploy
    res = deploy(a.out, a.board, no_bitstream=a.no_bitstream, force=a.force)
    print(f"deploy: {res.path} ({res.board}" + (f", bitstream {res.bitstream})" if res.bitstream else ")"))
    return 0


def _cmd_run(a, serial=None):
    import numpy as np
    from .driver import Accelerator
    try:
        x = np.load(a.inputs, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise HwgenError(f"--inputs {a.inputs}: cannot be read as .npy ({e})") from None
    with Accelerator(a.out, a.port, baud=a.baud, timeout=a.timeout, window=a.window, serial=serial) as acc:
        y = acc.predict(x)
        st = acc.stats
    if a.output:
        np.save(a.output, y)
    naks = ", ".join(f"{n} {r}" for r, n in sorted(st.naks.items())) or "0"
    print(f"run: {st.frames} frames, {st.fps:.1f} frames/s, retries {st.retries}, timeouts {st.timeouts}, NAKs {naks}"
          + (f"; outputs: {a.output}" if a.output else ""))
    return 0


def main(argv=None):
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:             # a usage error (one line printed) or --help
        return e.code
    try:
        return {"build": _cmd_build, "explore": _cmd_explore, "verify": _cmd_verify, "flows": _cmd_flows,
                "search": _cmd_search, "deploy": _cmd_deploy, "run": _cmd_run}[args.cmd](args)
    except HwgenError as e:
        if args.debug:
            raise
        print(f"hwgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:             # `hwgen … | head`: the reader is gone, nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
