"""The board without a board: the whole board top simulated in Verilator, its UART on a pseudo-terminal.

:class:`SimBoard` compiles the build's simulation top (``OUT/board/hwgen_board_sim.v``: the board
top of ``hwgen build --board …`` with its PLL bypassed — the oscillator pin is taken to run at the
PLL's output frequency, so the UART divisor and every cycle count are the board's) together with
the core's Verilog and ``sim/tb_uart_pty.cpp``, starts it, and gives the pty's name as
:attr:`SimBoard.port`.  Any program that opens a serial port opens that one: the host driver
through pyserial, as on a board.  Faults (a corrupted or dropped byte in either direction, by its
position in that direction's byte count) are injected on the line by the bridge.

``close()`` stops the simulation and returns what the bridge measured: simulated cycles, bytes
each way, the faults applied, every packet seen on each pin with the cycles it started and ended
(type, start, end), and the LEDs; :func:`link_figures` turns that into frames/s and latency in
simulated time.

The compiled bridge is cached like the compiled testbench (:mod:`hwgen.bulk`): by a hash of the
Verilog, the bridge and the tool versions, in ``OUT/sim/verilator-board/`` and the user cache.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .. import bulk, manifest as _manifest
from ..errors import HwgenError
from ..simulators import log_tail, prepare
from .protocol import DATA, RESULT

__all__ = ["SimBoard", "link_figures", "HARNESS", "BOARD_FILE", "SIM_TOP", "SIM_MODULE"]

HARNESS = "tb_uart_pty.cpp"
BOARD_FILE = "board/board.json"
SIM_TOP = "board/hwgen_board_sim.v"
SIM_MODULE = "hwgen_board_sim"          # the board top without its PLL (hwgen.shell.render)
FAULTS = ("corrupt_in", "drop_in", "corrupt_out", "drop_out")
START_TIMEOUT_S = 30.0


def _board(out):
    path = out / BOARD_FILE
    if not path.is_file() or not (out / SIM_TOP).is_file():
        raise HwgenError(f"simulated board: {out} has no {BOARD_FILE} / {SIM_TOP}; accepted: a build made with "
                         "`hwgen build … --board BOARD`")
    return json.loads(path.read_text())


class SimBoard:
    """The simulated board of build ``out_dir``, on a pty (a context manager).

    ``faults``: ``{"corrupt_in": [k, …], "drop_in": […], "corrupt_out": […], "drop_out": […]}``
    (byte positions, 0-based, in the host → board and board → host directions);
    ``max_cycles``: stop after that many simulated cycles (0: run until closed)."""

    def __init__(self, out_dir, *, faults=None, max_cycles=0, progress=False):
        self.out = Path(os.fspath(out_dir))
        self.manifest = _manifest.load(self.out)
        self.board = _board(self.out)
        self.faults = {k: sorted(int(v) for v in (faults or {}).get(k, ())) for k in FAULTS}
        bad = sorted(set(faults or {}) - set(FAULTS))
        if bad:
            raise HwgenError(f"simulated board: unknown fault {bad[0]!r}; accepted: {', '.join(FAULTS)}")
        self.max_cycles = int(max_cycles)
        self.progress = progress
        self.proc = self.tmp = self.port = None
        self.results = None

    @property
    def divisor(self):
        return int(self.board["divisor"])

    @property
    def clock_hz(self):
        return float(self.board["clock_hz"])

    def build(self):
        """Compile (or reuse) the bridge; returns its path."""
        sim = prepare("verilator")
        sources = [self.out / v for v in self.manifest["verilog"]] + [self.out / SIM_TOP]
        binary, _ = bulk.build(sim, self.out, SIM_MODULE, sources, progress=self.progress,
                               build_dir=self.out / "sim" / "verilator-board", harness=HARNESS)
        return binary

    def start(self):
        binary = self.build()
        self.tmp = Path(tempfile.mkdtemp(prefix="hwgen-simboard-"))
        cfg = [f"divisor {self.divisor}", f"pty_name {self.tmp / 'pty'}", f"results {self.tmp / 'results.json'}",
               f"max_cycles {self.max_cycles}"]
        cfg += [f"{k} {v}" for k in FAULTS for v in self.faults[k]]
        (self.tmp / "config.txt").write_text("\n".join(cfg) + "\n")
        self.log = open(self.tmp / "bridge.log", "w")
        self.proc = subprocess.Popen([str(binary), str(self.tmp / "config.txt")], cwd=self.out / "rtl",
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.tmp / "pty").is_file():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise HwgenError(f"simulated board: the bridge did not start ({log_tail(self.tmp / 'bridge.log') or 'no output'})")
            time.sleep(0.01)
        self.port = (self.tmp / "pty").read_text().strip()
        return self

    def close(self):
        """Stop the simulation; returns the bridge's results (None if it never ran)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            res = self.tmp / "results.json"
            if res.is_file():
                self.results = json.loads(res.read_text())
            self.proc = None
        if self.tmp is not None:
            for f in self.tmp.iterdir():
                f.unlink()
            self.tmp.rmdir()
            self.tmp = None
        return self.results

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


def link_figures(results, clock_hz, *, data_type=DATA, result_type=RESULT):
    """Frames/s and latency in simulated time from a bridge's ``results``: the span from the first
    DATA packet's first bit to the last RESULT's last bit; latency per frame from a DATA packet's
    start to the end of the RESULT that followed it in order (runs without faults)."""
    ins = [p for p in results["packets_in"] if p[0] == data_type]
    outs = [p for p in results["packets_out"] if p[0] == result_type]
    if not ins or not outs:
        return {"frames": 0}
    span = outs[-1][2] - ins[0][1]
    lat = [o[2] - i[1] for i, o in zip(ins, outs)]
    n = len(outs)
    return {"frames": n, "cycles": span, "seconds": span / clock_hz, "fps": n * clock_hz / span if span else None,
            "latency_cycles_min": min(lat), "latency_cycles_max": max(lat),
            "latency_us_min": min(lat) / clock_hz * 1e6, "latency_us_max": max(lat) / clock_hz * 1e6,
            "bytes_in": results["bytes_in"], "bytes_out": results["bytes_out"]}
