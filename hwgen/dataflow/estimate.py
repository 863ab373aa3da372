"""Resource estimates per FPGA family, on top of each layer kind's ``resources()``.

``layer.resources()`` estimates what yosys ``synth_xilinx`` maps a layer to (LUT6,
FF, BRAM18, DSP48).  Other families are derived here: ECP5 and iCE40 count LUT4s
(and their block RAM / multiplier primitives); the factors are fitted in
``bench/calibrate.py``.
"""

import math

__all__ = ["FAMILIES", "layer_resources", "graph_resources"]

FAMILIES = ("xilinx", "ecp5", "ice40")

# LUT4 per LUT6 and FF ratio per family (placeholder until bench/calibrate.py fits them).
_FACTORS = {
    "xilinx": {"LUT": 1.0, "FF": 1.0},
    "ecp5": {"LUT": 1.6, "FF": 1.0},
    "ice40": {"LUT": 1.6, "FF": 1.0},
}
# block RAM primitives per BRAM18 (ECP5 DP16KD 18 Kib; iCE40 EBR 4 Kib)
_BRAM = {"xilinx": 1.0, "ecp5": 1.0, "ice40": 4.5}


def _check(family):
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")


def layer_resources(layer, family="xilinx"):
    """``{"LUT", "FF", "BRAM18", "DSP"}`` of ``layer`` on ``family`` (LUT: the family's LUTs;
    BRAM18: its block RAM primitives)."""
    _check(family)
    r = dict(layer.resources())
    if family == "xilinx":
        return r
    f = _FACTORS[family]
    return {"LUT": int(math.ceil(r["LUT"] * f["LUT"])), "FF": int(math.ceil(r["FF"] * f["FF"])),
            "BRAM18": int(math.ceil(r["BRAM18"] * _BRAM[family])), "DSP": r["DSP"]}


def graph_resources(graph, family="xilinx"):
    tot = {"LUT": 0, "FF": 0, "BRAM18": 0, "DSP": 0}
    for l in graph.layers:
        for k, v in layer_resources(l, family).items():
            tot[k] += v
    return tot
