"""Target devices and resource budgets for the folding search.

Capacities are in the device family's own units, the units
:func:`hwgen.dataflow.estimate.layer_resources` estimates in:

* ``LUT``: LUT6 on Xilinx 7-series, LUT4 on ECP5 and iCE40;
* ``FF``: flip-flops;
* ``BRAM18``: the family's block RAM primitives — RAMB18 (half a RAMB36) on
  Xilinx, DP16KD (18 Kib) on ECP5, 4 Kib EBR on iCE40;
* ``DSP``: DSP48E1 on Xilinx, 18×18 multipliers on ECP5, SB_MAC16 on iCE40.

A :class:`Budget` is what a folding may use: a device's capacities times a
utilisation ``margin`` (default 0.9: leave room for the shell and routing),
explicit limits (``--max-lut`` …) overriding them or standing alone.
"""

import math
from dataclasses import dataclass, field

from .errors import HwgenError

__all__ = ["FAMILIES", "DEVICES", "RESOURCES", "DEFAULT_MARGIN", "Budget", "device", "make_budget", "unit_names"]

#: the device families hwgen estimates, folds and synthesises for
FAMILIES = ("xilinx", "ecp5", "ice40")
RESOURCES = ("LUT", "FF", "BRAM18", "DSP")
DEFAULT_MARGIN = 0.9

# name: (family, LUT, FF, block RAMs, DSP, part)
DEVICES = {
    "xc7z010": ("xilinx", 17600, 35200, 120, 80, "Zynq-7010"),
    "xc7z020": ("xilinx", 53200, 106400, 280, 220, "Zynq-7020 (PYNQ-Z1/Z2)"),
    "xc7a35t": ("xilinx", 20800, 41600, 100, 90, "Artix-7 35T"),
    "xc7a100t": ("xilinx", 63400, 126800, 270, 240, "Artix-7 100T"),
    "ecp5-12k": ("ecp5", 12288, 12288, 32, 28, "LFE5U-12F"),
    "ecp5-25k": ("ecp5", 24288, 24288, 56, 28, "LFE5U-25F"),
    "ecp5-45k": ("ecp5", 43848, 43848, 108, 72, "LFE5U-45F"),
    "ecp5-85k": ("ecp5", 83640, 83640, 208, 156, "LFE5U-85F"),
    "ice40-up5k": ("ice40", 5280, 5280, 30, 8, "iCE40 UltraPlus 5K"),
    "ice40-hx8k": ("ice40", 7680, 7680, 32, 0, "iCE40 HX8K"),
}

_UNITS = {"xilinx": {"LUT": "LUT", "FF": "FF", "BRAM18": "BRAM18", "DSP": "DSP"},
          "ecp5": {"LUT": "LUT4", "FF": "FF", "BRAM18": "DP16KD", "DSP": "MULT18"},
          "ice40": {"LUT": "LUT4", "FF": "FF", "BRAM18": "EBR", "DSP": "MAC16"}}


def unit_names(family):
    """Display names of the four resources on ``family``."""
    return _UNITS.get(family, _UNITS["xilinx"])


def device(name):
    """``{"name", "family", "LUT", "FF", "BRAM18", "DSP", "part"}`` of a device in :data:`DEVICES`."""
    key = str(name).lower()
    if key not in DEVICES:
        raise HwgenError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    fam, lut, ff, bram, dsp, part = DEVICES[key]
    return {"name": key, "family": fam, "LUT": lut, "FF": ff, "BRAM18": bram, "DSP": dsp, "part": part}


@dataclass
class Budget:
    """Resource limits a folding must respect, in ``family``'s units (None: unlimited)."""
    family: str = "xilinx"
    limits: dict = field(default_factory=dict)
    name: str = "limits"            # the device name or "limits"
    margin: float = 1.0

    def over(self, res):
        """``[(resource, used, limit)]`` for every limit ``res`` exceeds."""
        return [(k, res[k], v) for k, v in self.limits.items() if v is not None and res[k] > v]

    def fits(self, res):
        return not self.over(res)

    def describe(self):
        u = unit_names(self.family)
        lim = ", ".join(f"{v:,} {u[k]}" for k, v in self.limits.items() if v is not None)
        if self.name == "limits":
            return f"the limits ({lim})"
        return f"{self.name} at {self.margin * 100:g} % ({lim})"

    def describe_over(self, res):
        u = unit_names(self.family)
        return ", ".join(f"{used:,} {u[k]} > {lim:,}" for k, used, lim in self.over(res))


def make_budget(device_name=None, *, max_lut=None, max_ff=None, max_bram=None, max_dsp=None,
                margin=DEFAULT_MARGIN, family=None):
    """A :class:`Budget` from a device name and/or explicit limits, or None when neither is given.

    The device's capacities are scaled by ``margin``; explicit limits are taken as given
    and replace the device's for that resource.  Without a device the family is
    ``family`` (default xilinx)."""
    explicit = {"LUT": max_lut, "FF": max_ff, "BRAM18": max_bram, "DSP": max_dsp}
    for k, v in explicit.items():
        flag = {"LUT": "--max-lut", "FF": "--max-ff", "BRAM18": "--max-bram", "DSP": "--max-dsp"}[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise HwgenError(f"{flag} must be a non-negative integer, not {v!r}")
    if device_name is None and all(v is None for v in explicit.values()):
        return None
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 < margin <= 1:
        raise HwgenError(f"--margin must be a number in (0, 1], not {margin!r}")
    if device_name is not None:
        d = device(device_name)
        if family is not None and family != d["family"]:
            raise HwgenError(f"family of {d['name']} is {d['family']}, not {family!r}")
        limits = {k: int(math.floor(d[k] * margin + 1e-9)) for k in RESOURCES}
        limits.update({k: v for k, v in explicit.items() if v is not None})
        return Budget(d["family"], limits, d["name"], margin)
    family = family or "xilinx"
    if family not in FAMILIES:
        raise HwgenError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    return Budget(family, {k: v for k, v in explicit.items() if v is not None}, "limits", 1.0)
