"""Place and route with nextpnr-ecp5 / nextpnr-ice40 and ecppack / icepack: the
``pnr/<family>.json`` document (:func:`summarize_pnr`, from nextpnr's ``--report``) and
``bitstream/<family>.json`` (:func:`summarize_bitstream`).  What is placed is the board shell
(``board/hwgen_board.v``, :mod:`hwgen.shell`): the core behind the UART host link, with the
board's PLL and pins; the bitstream runs on that board.
"""

import hashlib
import os
from pathlib import Path

from ..errors import HwgenError
from .cells import BOARD_TOP

__all__ = ["summarize_pnr", "summarize_bitstream", "PNR_FORMAT", "BITSTREAM_FORMAT"]

PNR_FORMAT = "hwgen-pnr/1"
BITSTREAM_FORMAT = "hwgen-bitstream/1"


#: utilisation entries kept even when nothing of them is used
_KEEP = {"ecp5": ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"),
         "ice40": ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP", "ICESTORM_SPRAM")}


def summarize_pnr(report, *, device, package, speed, clock_mhz, seed=None, family="ecp5", board=None):
    """The ``pnr/<family>.json`` document from nextpnr's ``--report`` JSON.  ``fmax_mhz`` is the
    slowest clock's; with the board shell that is the core clock (the PLL's output), the only one."""
    if not isinstance(report, dict) or "fmax" not in report:
        raise HwgenError("pnr: not a nextpnr --report document (no \"fmax\")")
    clocks = {k: {"achieved_mhz": round(float(v["achieved"]), 2), "constraint_mhz": round(float(v["constraint"]), 2)}
              for k, v in sorted(report["fmax"].items())}
    if not clocks:
        raise HwgenError("pnr: nextpnr reported no clock (is clk connected?)")
    fmax = min(c["achieved_mhz"] for c in clocks.values())
    util = {k: {"used": int(v["used"]), "available": int(v["available"])}
            for k, v in sorted(report.get("utilization", {}).items())
            if int(v["used"]) or k in _KEEP.get(family, ())}
    crit = None
    for p in report.get("critical_paths", []):
        if p.get("from", "").startswith("posedge") and p.get("to", "").startswith("posedge") and p.get("path"):
            steps = p["path"]
            crit = {"delay_ns": round(sum(float(s.get("delay", 0)) for s in steps), 3),
                    "from": steps[0].get("from", {}).get("cell"), "to": steps[-1].get("to", {}).get("cell"),
                    "logic_levels": sum(1 for s in steps if s.get("type") == "logic")}
            break
    return {"format": PNR_FORMAT, "tool": f"nextpnr-{family}", "family": family, "board": board,
            "device": str(device), "package": str(package), "speed": None if speed in (None, "") else str(speed),
            "seed": seed, "clock_mhz": float(clock_mhz), "fmax_mhz": fmax,
            "timing_met": fmax >= float(clock_mhz), "clocks": clocks, "utilization": util,
            "critical_path": crit}


def summarize_bitstream(bit_path, pnr, board):
    """The ``bitstream/<family>.json`` document: the ``.bit``/``.bin`` file, its size and hash, next to
    ``pnr``'s Fmax."""
    data = Path(bit_path).read_bytes()
    return {"format": BITSTREAM_FORMAT, "bitstream": os.fspath(bit_path), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "board": board, "top": BOARD_TOP,
            "fmax_mhz": pnr.get("fmax_mhz"), "clock_mhz": pnr.get("clock_mhz"),
            "note": f"the board shell (board/{BOARD_TOP}.v: PLL, reset, UART host link around the core) for "
                    f"the {board}; board/board.json says its clock, baud rate, pins and LEDs"}
