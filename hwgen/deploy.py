"""``hwgen deploy``: a build's standalone deploy directory, ``OUT/deploy/``.

Everything a board's host needs, with only numpy and pyserial installed (no hwgen):

* the bitstream, ``manifest.json`` and ``board.json`` (its ``bitstream`` relative to deploy/);
* ``hwgen_deploy/``: the driver package, the very files of :mod:`hwgen.driver` and the modules it
  imports (:data:`PACKAGE`), copied byte for byte: they import one another relatively, so the copy
  runs as ``hwgen_deploy.driver`` without hwgen;
* ``driver.py`` (``from driver import Accelerator``), ``validate.py`` (a test set through the
  board: accuracy, frames/s, link statistics) and ``README.md`` (programming, running);
* ``deploy.json``: what hwgen deploy wrote there (a later deploy replaces only such a directory).

UART boards (a ``hwgen build --board`` build: ``OUT/board/board.json``) get the bitstream the
build's ``make -C OUT bitstream`` made; without one the deploy stops (``--no-bitstream`` writes
the rest, with a warning).  Zynq boards (:data:`XILINX_BOARDS`: pynq-z1, pynq-z2, zcu104) get a
Vivado block design instead (``bd.tcl``, ``rtl/``: the build's Verilog and
``hwgen_axis_wrapper.v``) and the PYNQ driver (:mod:`hwgen.pynq_driver`) — generated, not run here.

``OUT/deploy`` is staged beside itself and swapped in atomically (:class:`hwgen.outdir.OutputDir`);
an existing one is replaced only when hwgen deploy wrote it and it holds nothing else.
"""

import json
import os
import shutil
import sys

from . import files
from .errors import HwgenError
from .manifest import load as load_manifest
from .outdir import OutputDir

__all__ = ["deploy", "PACKAGE", "UART_BOARDS", "XILINX_BOARDS", "DEPLOY_FORMAT", "DeployResult"]

DEPLOY_FORMAT = "hwgen-deploy/1"
MARKER = "deploy.json"
PKG = "hwgen_deploy"
#: the modules of the driver package: hwgen's files copied as they are (each imports only numpy,
#: the standard library and its siblings)
PACKAGE = ("errors.py", "dtypes.py", "streams.py", "host.py", "driver.py", "pynq_driver.py", "shell/protocol.py")

#: UART boards: how to program them, the serial port their USB bridge usually is
UART_BOARDS = {
    "ulx3s": {"program": ["openFPGALoader -b ulx3s {bit}"], "flash": "openFPGALoader -b ulx3s -f {bit}",
              "port": "/dev/ttyUSB0"},
    "icebreaker": {"program": ["openFPGALoader -b ice40_generic {bit}", "iceprog {bit}"],
                   "flash": None, "port": "/dev/ttyUSB1"},
}
#: Zynq boards: Vivado part, board part, processing system
XILINX_BOARDS = {
    "pynq-z1": {"part": "xc7z020clg400-1", "board_part": "www.digilentinc.com:pynq-z1:part0:1.0", "ps": "ps7"},
    "pynq-z2": {"part": "xc7z020clg400-1", "board_part": "tul.com.tw:pynq-z2:part0:1.0", "ps": "ps7"},
    "zcu104": {"part": "xczu7ev-ffvc1156-2-e", "board_part": "xilinx.com:zcu104:part0:1.1", "ps": "zynq_ultra_ps_e"},
}

_HERE = os.path.dirname(os.path.abspath(__file__))


class DeployResult:
    def __init__(self, path, board, bitstream, warnings):
        self.path, self.board, self.bitstream, self.warnings = path, board, bitstream, warnings

    def __repr__(self):
        return f"DeployResult(path={self.path!r}, board={self.board!r}, bitstream={self.bitstream!r})"


def _check_deploy_dir(path, shown, force):
    """Refuse an ``OUT/deploy`` hwgen deploy did not write (or that holds more than it wrote)."""
    if not os.path.lexists(path) or force:
        return
    if os.path.islink(path) or not os.path.isdir(path):
        raise HwgenError(f"{shown}: exists and is not a directory hwgen deploy wrote; move it away or pass --force")
    try:
        with open(os.path.join(path, MARKER)) as f:
            doc = json.load(f)
        ok = isinstance(doc, dict) and doc.get("format") == DEPLOY_FORMAT
    except (OSError, ValueError):
        ok, doc = False, {}
    entries = sorted(os.listdir(path))
    if not ok:
        if entries:
            raise HwgenError(f"{shown}: holds files hwgen deploy did not write (no {MARKER}; e.g. {entries[0]}); "
                             "move them away or pass --force to replace the directory")
        return
    mine = set(doc.get("files", [])) | {MARKER}
    foreign = [e for e in entries if e not in mine]
    if foreign:
        raise HwgenError(f"{shown}: also holds {foreign[0]!r}, which hwgen deploy did not write; move it out or pass "
                         "--force to replace the whole directory")


def _board_json(out):
    p = os.path.join(out, "board", "board.json")
    if not os.path.isfile(p):
        return None, p
    try:
        with open(p) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise HwgenError(f"{p}: cannot be read as JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != "hwgen-board/1":
        raise HwgenError(f"{p}: format must be 'hwgen-board/1', not "
                         f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}")
    return doc, p


def _copy_package(dest):
    for rel in PACKAGE:
        d = os.path.join(dest, PKG, rel)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copyfile(os.path.join(_HERE, rel), d)
    with open(os.path.join(dest, PKG, "__init__.py"), "w") as f:
        f.write(_PKG_INIT)
    with open(os.path.join(dest, PKG, "shell", "__init__.py"), "w") as f:
        f.write('"""The host link protocol (hwgen-link/1), copied from hwgen.shell.protocol."""\n')


def deploy(out, board=None, *, no_bitstream=False, force=False, warn=None):
    """Write ``out/deploy/`` (see the module's docstring); returns a :class:`DeployResult`.
    ``warn(line)`` receives the warnings (default: printed to stderr)."""
    from .driver import design_id
    out = os.path.abspath(os.fspath(out))
    manifest = load_manifest(out)
    warn = warn or (lambda line: print(f"hwgen deploy: warning: {line}", file=sys.stderr))
    bdoc, bpath = _board_json(out)
    shown = os.path.join(os.fspath(out), "deploy")
    did = design_id(out, manifest)
    if board is None:
        if bdoc is None:
            raise HwgenError(f"{out}: no board/board.json, so no board to deploy to; build with `hwgen build MODEL -o "
                             f"OUT --board B` (boards: {', '.join(UART_BOARDS)}) or pass --board "
                             f"{'|'.join(XILINX_BOARDS)}")
        board = bdoc.get("board")
    board = str(board).lower()
    warnings = []
    if board in XILINX_BOARDS:
        bdoc = {"format": "hwgen-board/1", "board": board, "family": "xilinx", "device": XILINX_BOARDS[board]["part"],
                "design_id": did, "baud": 0, "top": "hwgen_pynq", "bitstream": "hwgen.bit",
                "clock_hz": int(round(float(manifest.get("clock_mhz", 100.0)) * 1e6))}
        bit_src = None
    else:
        if bdoc is None:
            raise HwgenError(f"--board {board}: {out} has no board/board.json; build for it first with `hwgen build "
                             f"MODEL -o OUT --board {board}`, or pass --board {'|'.join(XILINX_BOARDS)} for a Zynq board")
        if bdoc.get("board") != board:
            raise HwgenError(f"--board {board}: {out} was built for {bdoc.get('board')!r} ({bpath}); rebuild with "
                             f"`hwgen build MODEL -o OUT --board {board}` or deploy to {bdoc.get('board')}")
        if bdoc.get("design_id") != did:
            raise HwgenError(f"{bpath}: design_id {bdoc.get('design_id')!r} but the build's Verilog is design "
                             f"{did:#010x}: board.json is stale; rebuild with `hwgen build --board {board}`")
        rel = bdoc.get("bitstream")
        if not isinstance(rel, str) or not rel:
            raise HwgenError(f"{bpath}: 'bitstream' must be the bitstream's path relative to the build, not {rel!r}")
        cands = [os.path.join(out, rel), os.path.join(out, "board", rel)]
        bit_src = next((c for c in cands if os.path.isfile(c)), None)
        if bit_src is None:
            msg = (f"{out}: bitstream {rel} not built yet; run `make -C {os.fspath(out)} bitstream` first")
            if not no_bitstream:
                raise HwgenError(msg + " (or pass --no-bitstream to write the deploy directory without it)")
            warnings.append(f"{out}: bitstream {rel} not built yet; deploy/ written without it: run "
                            f"`make -C {os.fspath(out)} bitstream`, then `hwgen deploy` again")
        bdoc = dict(bdoc, bitstream=os.path.basename(rel), port=UART_BOARDS.get(board, {}).get("port", "/dev/ttyUSB0"))
    _check_deploy_dir(os.path.join(out, "deploy"), shown, force)
    with OutputDir(os.path.join(out, "deploy"), force=True) as o:
        d = o.path
        _copy_package(d)
        shutil.copyfile(os.path.join(out, "manifest.json"), os.path.join(d, "manifest.json"))
        with open(os.path.join(d, "board.json"), "w") as f:
            json.dump(bdoc, f, indent=1, sort_keys=True)
            f.write("\n")
        if bit_src is not None:
            shutil.copyfile(bit_src, os.path.join(d, bdoc["bitstream"]))
        with open(os.path.join(d, "driver.py"), "w") as f:
            f.write(_DRIVER_SHIM)
        with open(os.path.join(d, "validate.py"), "w") as f:
            f.write(_VALIDATE)
        if board in XILINX_BOARDS:
            from .pynq_bd import write_xilinx
            write_xilinx(d, out, manifest, board, XILINX_BOARDS[board])
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write(_readme(manifest, bdoc, board, bit_src is not None))
        entries = sorted(os.listdir(d))
        with open(os.path.join(d, MARKER), "w") as f:
            json.dump({"format": DEPLOY_FORMAT, "board": board, "design_id": did, "files": entries}, f, indent=1)
            f.write("\n")
        _modes(d)
        o.commit()
    for w in warnings:
        warn(w)
    return DeployResult(os.path.join(out, "deploy"), board, None if bit_src is None else bdoc["bitstream"], warnings)


def _modes(root):
    for dirpath, _dirs, filenames in os.walk(root):
        os.chmod(dirpath, files.dir_mode())
        for fn in filenames:
            os.chmod(os.path.join(dirpath, fn), files.file_mode())


_PKG_INIT = '''"""hwgen's board driver, standalone (written by `hwgen deploy`): needs numpy and pyserial only.

The modules are hwgen's own (hwgen.driver, hwgen.host, hwgen.streams, hwgen.dtypes,
hwgen.errors, hwgen.shell.protocol, hwgen.pynq_driver), copied as they are."""

from .driver import Accelerator, Codec, LinkStats, load_dir  # noqa: F401
from .errors import HwgenError  # noqa: F401
'''

_DRIVER_SHIM = '''"""The board's host driver (written by `hwgen deploy`): ``from driver import Accelerator``.

    from driver import Accelerator
    with Accelerator(".", "/dev/ttyUSB0") as acc:   # this directory: manifest.json, board.json
        y = acc.predict(x)                          # float inputs -> float outputs
        print(acc.stats.line())

The code is hwgen.driver's, in the package hwgen_deploy/ beside this file."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hwgen_deploy.driver import Accelerator, Codec, LinkStats, load_dir  # noqa: E402,F401
from hwgen_deploy.errors import HwgenError  # noqa: E402,F401

__all__ = ["Accelerator", "Codec", "LinkStats", "HwgenError", "load_dir"]
'''

_VALIDATE = '''"""Run a test set through the board (written by `hwgen deploy`): accuracy, frames/s, link statistics.

    python validate.py X.npy [LABELS.npy] [--port /dev/ttyUSB0] [--baud N] [--timeout S] [--window N]
                       [--pynq] [-o Y.npy]

X.npy: float model inputs (N, ...); LABELS.npy: N integer class labels (accuracy: the argmax of
each output, or the output itself when the model ends in a label select).  Exit 2 on an error
(one line), else 0."""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main(argv=None):
    import numpy as np

    from hwgen_deploy.errors import HwgenError
    p = argparse.ArgumentParser(prog="validate.py", description="Run a test set through the board.")
    p.add_argument("inputs", help=".npy of float model inputs")
    p.add_argument("labels", nargs="?", help=".npy of integer labels (optional)")
    p.add_argument("--port", default=None, help="serial port (default: the board's usual one, see README.md)")
    p.add_argument("--baud", type=int, default=None, help="baud rate (default: board.json's)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds a frame may go unanswered (default 2)")
    p.add_argument("--window", type=int, default=None, help="frames in flight (default: the device's buffer)")
    p.add_argument("--pynq", action="store_true", help="a Zynq board: the PYNQ driver (AXI DMA) instead of the UART")
    p.add_argument("-o", "--out", help="write the outputs to this .npy")
    a = p.parse_args(argv)
    try:
        x = _load(np, a.inputs, "inputs")
        labels = None if a.labels is None else _load(np, a.labels, "labels")
        if labels is not None and len(labels) != len(x):
            raise HwgenError(f"labels {a.labels}: {len(labels)} labels for {len(x)} inputs")
        t0 = time.monotonic()
        if a.pynq:
            from hwgen_deploy.pynq_driver import PynqAccelerator
            acc = PynqAccelerator(HERE)
            y = acc.predict(x)
            stats = None
        else:
            import json
            from hwgen_deploy.driver import Accelerator
            with open(os.path.join(HERE, "board.json")) as f:
                port = a.port or json.load(f).get("port") or "/dev/ttyUSB0"
            with Accelerator(HERE, port, baud=a.baud, timeout=a.timeout, window=a.window) as acc:
                y = acc.predict(x)
                stats = acc.stats
        seconds = time.monotonic() - t0
    except HwgenError as e:
        print(f"validate.py: error: {e}", file=sys.stderr)
        return 2
    n = len(x)
    print(f"frames: {n}, {n / seconds:.1f} frames/s ({seconds:.3f} s)")
    if labels is not None:
        flat = y.reshape(n, -1)
        pred = flat[:, 0] if flat.shape[1] == 1 else flat.argmax(axis=1)
        acc_pct = 100.0 * float((pred.astype(np.int64) == labels.reshape(n).astype(np.int64)).mean()) if n else 0.0
        print(f"accuracy: {acc_pct:.2f} % ({int((pred == labels.reshape(n)).sum())} of {n})")
    if stats is not None:
        print(f"link: {stats.line()}")
    if a.out:
        np.save(a.out, y)
        print(f"outputs: {a.out}")
    return 0


def _load(np, path, what):
    from hwgen_deploy.errors import HwgenError
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise HwgenError(f"{what} {path}: cannot be read as .npy ({e})") from None


if __name__ == "__main__":
    sys.exit(main())
'''


def _readme(manifest, bdoc, board, have_bit):
    mi, mo = manifest["input"], manifest["output"]
    name = manifest.get("name", "model")
    lines = [f"# {name} on {board}: hwgen deploy", "",
             f"Written by `hwgen deploy` from the build of {name} (design id {bdoc['design_id']:#010x}). "
             "Needs Python 3 with numpy"
             + (" and pyserial (`pip install numpy pyserial`)" if board not in XILINX_BOARDS else " (on the PYNQ image)")
             + "; hwgen itself is not needed.", "",
             f"Input frames: {mi['shape']} {mi['dtype']}, {mi['words_per_frame']} words of {mi['tdata_bits']} bits; "
             f"output frames: {mo['shape']} {mo['dtype']}, {mo['words_per_frame']} words of {mo['tdata_bits']} bits.", ""]
    if board in XILINX_BOARDS:
        b = XILINX_BOARDS[board]
        lines += ["**Generated, not run here (no Vivado, no PYNQ).**", "",
                  "## Make the bitstream (Vivado)", "",
                  f"    vivado -mode batch -source bd.tcl        # part {b['part']}: writes hwgen.bit and hwgen.hwh here", "",
                  f"`bd.tcl` builds a block design: the {'Zynq-7000 processing_system7' if b['ps'] == 'ps7' else 'Zynq UltraScale+ zynq_ultra_ps_e'}, "
                  "an AXI DMA (`axi_dma_0`, simple mode) whose MM2S stream feeds the accelerator and whose S2MM "
                  "stream takes its results, `rtl/hwgen_axis_wrapper.v` (the accelerator `hwgen_top` with the "
                  "DMA's stream width and `tlast` on the last word of each output frame), the AXI interconnects, "
                  "the clock (PL clock 0) and reset; then synthesis, implementation and write_bitstream, and "
                  "copies the `.hwh` next to the `.bit`.", "",
                  "## Run on the board (PYNQ)", "",
                  "Copy this directory with hwgen.bit and hwgen.hwh to the board, then:", "",
                  "    from hwgen_deploy.pynq_driver import PynqAccelerator",
                  "    acc = PynqAccelerator('.')     # pynq.Overlay('hwgen.bit'), axi_dma_0",
                  "    y = acc.predict(x)              # float inputs -> float outputs", "",
                  "    python3 validate.py x_test.npy y_test.npy --pynq", "",
                  "The PYNQ driver packs and unpacks the words with the same code as the UART driver "
                  "(`hwgen_deploy/driver.py`, class `Codec`).", ""]
        return "\n".join(lines)
    info = UART_BOARDS.get(board, {"program": [f"openFPGALoader -b {board} {{bit}}"], "flash": None,
                                   "port": "/dev/ttyUSB0"})
    bit = bdoc["bitstream"]
    lines += ["## Program the board", ""]
    if not have_bit:
        lines += [f"**The bitstream `{bit}` was not built when this was written**: run `make -C OUT bitstream`, "
                  "then `hwgen deploy OUT` again.", ""]
    lines += [f"    {c.format(bit=bit)}" for c in info["program"]]
    if info.get("flash"):
        lines += ["", "This loads the FPGA's SRAM (lost at power-off); to keep the design, write the flash instead:", "",
                  f"    {info['flash'].format(bit=bit)}"]
    if board == "icebreaker":
        lines += ["", "Both write the SPI flash; `iceprog -S` loads the SRAM only."]
    port = info["port"]
    lines += ["", "## Run", "",
              f"Serial port: `{port}` is the usual one for the {board} (the USB bridge's UART"
              + ("; the FT2232H's second interface" if board == "icebreaker" else "") + f"), at {bdoc.get('baud')} baud "
              f"(8N1), core clock {bdoc.get('clock_hz', 0) / 1e6:g} MHz, {bdoc.get('buffer_frames', '?')} frames buffered.", "",
              f"    python3 validate.py x_test.npy y_test.npy --port {port}     # accuracy, frames/s, link stats", "",
              "From Python:", "",
              "    from driver import Accelerator",
              f"    with Accelerator('.', '{port}') as acc:",
              "        y = acc.predict(x)               # float model inputs -> float model outputs",
              "        print(acc.stats.line())", "",
              "The driver checks the board's design id first: a board running another build's bitstream is "
              "refused with one line (\"wrong bitstream\").", ""]
    return "\n".join(lines)
