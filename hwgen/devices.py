"""Target devices and resource budgets for the folding search.

Capacities are in the device family's own units, the units
:func:`hwgen.dataflow.estimate.layer_resources` estimates in:

* ``LUT``: LUT6 on Xilinx 7-series, LUT4 on ECP5 and iCE40;
* ``FF``: flip-flops;
* ``BRAM18``: the family's block RAM primitives — RAMB18 (half a RAMB36) on
  Xilinx, DP16KD (18 Kib) on ECP5, 4 Kib EBR on iCE40;
* ``DSP``: DSP48E1 on Xilinx, 18×18 multipliers on ECP5, SB_MAC16 on iCE40;
* ``URAM``: only on the UltraScale+ parts (family ``xcup``): URAM288 blocks,
  288 Kib each, one 4,096-word × 72-bit port shape
  (:func:`hwgen.dataflow.estimate.uram288`).

Family ``xcup`` (UltraScale+: LUT6, RAMB18E2, DSP48E2, URAM288) is estimated as
``xilinx`` — the calibration is synth_xilinx's — except that a ROM going to block
RAM goes to URAM where that takes less silicon (:func:`hwgen.dataflow.estimate.memory`).
It is an estimate family only: the flows synthesise ``xilinx``, ``ecp5``, ``ice40``
(:data:`FAMILIES`).

A :class:`Budget` is what a folding may use: a device's capacities times a
utilisation ``margin`` (default 0.9: leave room for the shell and routing),
explicit limits (``--max-lut`` …) overriding them or standing alone.
"""

import math
from dataclasses import dataclass, field

from .errors import HwgenError

__all__ = ["FAMILIES", "ESTIMATE_FAMILIES", "DEVICES", "RESOURCES", "DEFAULT_MARGIN", "DEFAULT_DEVICE", "Budget",
           "device", "make_budget", "unit_names", "resources_of"]

#: the device families hwgen estimates, folds and synthesises for
FAMILIES = ("xilinx", "ecp5", "ice40")
#: the families hwgen estimates and folds for: those, and UltraScale+ (URAM)
ESTIMATE_FAMILIES = FAMILIES + ("xcup",)
RESOURCES = ("LUT", "FF", "BRAM18", "DSP")
DEFAULT_MARGIN = 0.9
#: the device a build without a throughput target, device or limits is folded for: the largest
#: part listed (an Alveo U250), so that a network as big as MobileNet-v1 builds by default
DEFAULT_DEVICE = "xcu250"

# name: (family, LUT, FF, block RAMs, DSP, part[, URAM])
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
    # UltraScale+ (BRAM18 = 2 x the RAMB36 count), the whole device (a shell, e.g. an Alveo
    # platform's, takes its share of it: the margin).  Sources: AMD DS962 (Alveo U200/U250
    # data sheet: U250 1,728K LUT, 3,456K FF, 2,688 BRAM36, 1,280 URAM, 12,288 DSP), DS963
    # (Alveo U280: 1,304K LUT, 2,607K FF, 2,016 BRAM36, 960 URAM, 9,024 DSP), DS891 (Zynq
    # UltraScale+ MPSoC overview, ZU7EV: 230,400 LUT, 460,800 FF, 312 BRAM36, 96 URAM, 1,728 DSP);
    # the URAM counts agree with FINN's finn/util/platforms.py (U250: 4 SLRs x 320, U280: 3 x 320).
    "xczu7ev": ("xcup", 230400, 460800, 624, 1728, "Zynq UltraScale+ ZU7EV (ZCU104)", 96),
    "xcu280": ("xcup", 1304000, 2607000, 4032, 9024, "Alveo U280 (XCU280)", 960),
    "xcu250": ("xcup", 1728000, 3456000, 5376, 12288, "Alveo U250 (XCU250)", 1280),
}

_UNITS = {"xilinx": {"LUT": "LUT", "FF": "FF", "BRAM18": "BRAM18", "DSP": "DSP"},
          "xcup": {"LUT": "LUT", "FF": "FF", "BRAM18": "BRAM18", "DSP": "DSP", "URAM": "URAM"},
          "ecp5": {"LUT": "LUT4", "FF": "FF", "BRAM18": "DP16KD", "DSP": "MULT18"},
          "ice40": {"LUT": "LUT4", "FF": "FF", "BRAM18": "EBR", "DSP": "MAC16"}}


def unit_names(family):
    """Display names of the resources on ``family`` (the four, and URAM on ``xcup``)."""
    return _UNITS.get(family, _UNITS["xilinx"])


def resources_of(family):
    """The resources ``family`` has: :data:`RESOURCES`, and ``URAM`` on ``xcup``."""
    return tuple(unit_names(family))


def device(name):
    """``{"name", "family", "LUT", "FF", "BRAM18", "DSP", "part"}`` (and ``"URAM"`` on an UltraScale+
    part) of a device in :data:`DEVICES`."""
    key = str(name).lower()
    if key not in DEVICES:
        raise HwgenError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    fam, lut, ff, bram, dsp, part, *uram = DEVICES[key]
    d = {"name": key, "family": fam, "LUT": lut, "FF": ff, "BRAM18": bram, "DSP": dsp, "part": part}
    if "URAM" in unit_names(fam):
        d["URAM"] = uram[0] if uram else 0
    return d


@dataclass
class Budget:
    """Resource limits a folding must respect, in ``family``'s units (None: unlimited)."""
    family: str = "xilinx"
    limits: dict = field(default_factory=dict)
    name: str = "limits"            # the device name or "limits"
    margin: float = 1.0

    def over(self, res):
        """``[(resource, used, limit)]`` for every limit ``res`` exceeds."""
        return [(k, res.get(k, 0), v) for k, v in self.limits.items() if v is not None and res.get(k, 0) > v]

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
        limits = {k: int(math.floor(d[k] * margin + 1e-9)) for k in resources_of(d["family"])}
        limits.update({k: v for k, v in explicit.items() if v is not None})
        return Budget(d["family"], limits, d["name"], margin)
    family = family or "xilinx"
    if family not in ESTIMATE_FAMILIES:
        raise HwgenError(f"family must be one of {', '.join(ESTIMATE_FAMILIES)}, not {family!r}")
    return Budget(family, {k: v for k, v in explicit.items() if v is not None}, "limits", 1.0)
