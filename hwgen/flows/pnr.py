"""Place and route with nextpnr-ecp5 and ecppack: the ``pnr/ecp5.json`` document
(:func:`summarize_pnr`, from nextpnr's ``--report``) and ``bitstream/ecp5.json``
(:func:`summarize_bitstream`).  The bitstream is a place-and-route/timing/utilisation
artefact, not a board product (see ``rtl_templates/board_wrapper.v.j2``).
"""

import hashlib
import os
from pathlib import Path

from ..errors import HwgenError
from .cells import BOARD_TOP

__all__ = ["summarize_pnr", "summarize_bitstream", "PNR_FORMAT", "BITSTREAM_FORMAT"]

PNR_FORMAT = "hwgen-pnr/1"
BITSTREAM_FORMAT = "hwgen-bitstream/1"


def summarize_pnr(report, *, device, package, speed, clock_mhz, seed=None):
    """The ``pnr/ecp5.json`` document from nextpnr's ``--report`` JSON."""
    if not isinstance(report, dict) or "fmax" not in report:
        raise HwgenError("pnr: not a nextpnr --report document (no \"fmax\")")
    clocks = {k: {"achieved_mhz": round(float(v["achieved"]), 2), "constraint_mhz": round(float(v["constraint"]), 2)}
              for k, v in sorted(report["fmax"].items())}
    if not clocks:
        raise HwgenError("pnr: nextpnr reported no clock (is clk connected?)")
    fmax = min(c["achieved_mhz"] for c in clocks.values())
    util = {k: {"used": int(v["used"]), "available": int(v["available"])}
            for k, v in sorted(report.get("utilization", {}).items())
            if int(v["used"]) or k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D")}
    crit = None
    for p in report.get("critical_paths", []):
        if p.get("from", "").startswith("posedge") and p.get("to", "").startswith("posedge") and p.get("path"):
            steps = p["path"]
            crit = {"delay_ns": round(sum(float(s.get("delay", 0)) for s in steps), 3),
                    "from": steps[0].get("from", {}).get("cell"), "to": steps[-1].get("to", {}).get("cell"),
                    "logic_levels": sum(1 for s in steps if s.get("type") == "logic")}
            break
    return {"format": PNR_FORMAT, "tool": "nextpnr-ecp5", "device": str(device), "package": str(package),
            "speed": str(speed), "seed": seed, "clock_mhz": float(clock_mhz), "fmax_mhz": fmax,
            "timing_met": fmax >= float(clock_mhz), "clocks": clocks, "utilization": util,
            "critical_path": crit}


def summarize_bitstream(bit_path, pnr, board):
    """The ``bitstream/ecp5.json`` document: the ``.bit`` file, its size and hash, next to ``pnr``'s Fmax."""
    data = Path(bit_path).read_bytes()
    return {"format": BITSTREAM_FORMAT, "bitstream": os.fspath(bit_path), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "board": board, "top": BOARD_TOP,
            "fmax_mhz": pnr.get("fmax_mhz"), "clock_mhz": pnr.get("clock_mhz"),
            "note": "place-and-route/timing/utilisation artefact, not a board product: s_axis is fed by an "
                    "LFSR and m_axis folded into one LED (flows/board_wrapper.v)"}
