"""Synthesis with yosys: each family's command, how its mapped cells are counted, and the
``synth/<family>.json`` document (:func:`summarize_synth`) made from yosys' ``stat -json``.

How each family's cells are counted is :data:`CELL_MAP`; ``flows/README.md`` shows the same
table (:data:`MAP_DOC`).
"""

from ..devices import FAMILIES
from ..errors import HwgenError

__all__ = ["SYNTH", "CELL_MAP", "CATEGORIES", "MAP_DOC", "BOARD_TOP", "expand_cells", "count_cells", "summarize_synth",
           "format_synth", "stat_modules"]

#: the top module of the board shell (board/hwgen_board.v, hwgen.shell) around the build's top
BOARD_TOP = "hwgen_board"

#: family → yosys command and flags of the two passes (hierarchy kept / flattened).
#: synth_xilinx keeps the hierarchy unless told -flatten; synth_ecp5/ice40 flatten unless -noflatten.
#: -noiopad -noclkbuf: out-of-context counts (the stream ports are not pins), as in FINN's OOC synthesis.
SYNTH = {
    "xilinx": {"command": "synth_xilinx -family xc7", "hier": "-noiopad -noclkbuf", "flat": "-noiopad -noclkbuf -flatten"},
    "ecp5": {"command": "synth_ecp5", "hier": "-noflatten", "flat": ""},
    "ice40": {"command": "synth_ice40", "hier": "-noflatten", "flat": ""},
}

#: How yosys' mapped cells are counted, per family: category → {cell type: weight}.
#: LUTRAM is in LUT sites (a RAM64X1D takes 2 LUT6; an ECP5 16×4 dual-port RAM takes 3 slices:
#: 2 in RAM mode + 1 for the write port = 6 LUT4 sites); BRAM18 in 18-Kbit equivalents (RAMB36E1 = 2,
#: ECP5 DP16KD = 1, iCE40 SB_RAM40_4K = 4/18); CARRY in carry cells (CARRY4 = 4 bits, CCU2C = 2 bits
#: on the two LUT4 of a slice, SB_CARRY = 1 bit beside its SB_LUT4); MUX are the wide-function muxes
#: (MUXF7/8, PFUMX/L6MUX21), which take no LUT. Cell types starting with a prefix in ``prefix`` count
#: in that category; ``ignore`` are constants and bookkeeping; anything else is listed under ``other``.
CELL_MAP = {
    "xilinx": {
        "LUT": {**{f"LUT{i}": 1 for i in range(1, 7)}, "LUT6_2": 1, "INV": 1},
        "LUTRAM": {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
                   "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4,
                   "RAM32M16": 8, "RAM64M8": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1},
        "FF": {"FDRE": 1, "FDSE": 1, "FDCE": 1, "FDPE": 1, "LDCE": 1, "LDPE": 1},
        "CARRY": {"CARRY4": 1, "CARRY8": 1},
        "MUX": {"MUXF7": 1, "MUXF8": 1},
        "BRAM18": {"RAMB18E1": 1, "RAMB36E1": 2, "FIFO18E1": 1, "FIFO36E1": 2},
        "DSP": {"DSP48E1": 1},
        "IO": {"IBUF": 1, "OBUF": 1, "IOBUF": 1, "OBUFT": 1, "IBUFG": 1, "BUFG": 1, "BUFGCTRL": 1, "BUFR": 1},
        "ignore": {"VCC", "GND"},
    },
    "ecp5": {
        "LUT": {"LUT4": 1},
        "LUTRAM": {"TRELLIS_DPR16X4": 6},
        "FF": {"TRELLIS_FF": 1},
        "CARRY": {"CCU2C": 1},
        "MUX": {"PFUMX": 1, "L6MUX21": 1},
        "BRAM18": {"DP16KD": 1, "PDPW16KD": 1},
        "DSP": {"MULT18X18D": 1},
        "IO": {"TRELLIS_IO": 1, "IB": 1, "OB": 1, "BB": 1, "OBZ": 1, "DCCA": 1},
        "ignore": {"VHI", "VLO"},
    },
    "ice40": {
        "LUT": {"SB_LUT4": 1},
        "LUTRAM": {},
        "FF": {},
        "prefix": {"SB_DFF": "FF"},
        "CARRY": {"SB_CARRY": 1},
        "MUX": {},
        "BRAM18": {"SB_RAM40_4K": 4 / 18},
        "DSP": {"SB_MAC16": 1},
        "IO": {"SB_IO": 1, "SB_GB": 1, "SB_GB_IO": 1},
        "ignore": {"SB_VCC", "SB_GND"},
    },
}
CATEGORIES = ("LUT", "LUTRAM", "FF", "CARRY", "MUX", "BRAM18", "DSP", "IO")
#: human-readable column of the mapping table (flows/README.md)
MAP_DOC = {
    "xilinx": {"LUT": "LUT1–LUT6, INV", "LUTRAM": "RAM32M/64M = 4, RAMxxX1D = 2 (128X1D = 4), SRL16E/SRLC32E = 1",
               "FF": "FDRE, FDSE, FDCE, FDPE", "CARRY": "CARRY4 (4 bits)", "MUX": "MUXF7, MUXF8",
               "BRAM18": "RAMB18E1 = 1, RAMB36E1 = 2", "DSP": "DSP48E1"},
    "ecp5": {"LUT": "LUT4", "LUTRAM": "TRELLIS_DPR16X4 = 6 (3 slices)", "FF": "TRELLIS_FF",
             "CARRY": "CCU2C (2 bits, 2 LUT4 sites)", "MUX": "PFUMX, L6MUX21", "BRAM18": "DP16KD = 1",
             "DSP": "MULT18X18D"},
    "ice40": {"LUT": "SB_LUT4", "LUTRAM": "—", "FF": "SB_DFF*", "CARRY": "SB_CARRY (1 bit)", "MUX": "—",
              "BRAM18": "SB_RAM40_4K = 4/18", "DSP": "SB_MAC16"},
}


def stat_modules(stat):
    """``{module: {cell type: count}}`` of a yosys ``stat -json`` document (leading ``\\`` dropped)."""
    if not isinstance(stat, dict) or "modules" not in stat:
        raise HwgenError("synth: not a yosys `stat -json` document (no \"modules\")")
    return {k.lstrip("\\"): {t.lstrip("\\"): int(n) for t, n in (m.get("num_cells_by_type") or {}).items()}
            for k, m in stat["modules"].items()}


def expand_cells(modules, name, _seen=()):
    """Cell counts of module ``name`` with every submodule instance replaced by its own (recursive) counts."""
    if name in _seen:
        raise HwgenError(f"synth: module {name} instantiates itself")
    out = {}
    for t, n in modules[name].items():
        sub = expand_cells(modules, t, _seen + (name,)) if t in modules else {t: 1}
        for tt, nn in sub.items():
            out[tt] = out.get(tt, 0) + n * nn
    return out


def count_cells(cells, family):
    """Resource categories (:data:`CATEGORIES` and ``other``) of a ``{cell type: count}`` dict."""
    m = CELL_MAP[family]
    res = {c: 0 for c in CATEGORIES}
    other = {}
    for t, n in sorted(cells.items()):
        if t in m["ignore"] or t.startswith("$scopeinfo"):
            continue
        for cat in CATEGORIES:
            if t in m[cat]:
                res[cat] += n * m[cat][t]
                break
        else:
            pre = [c for p, c in m.get("prefix", {}).items() if t.startswith(p)]
            if pre:
                res[pre[0]] += n
            else:
                other[t] = other.get(t, 0) + n
    for c in CATEGORIES:
        res[c] = round(res[c], 2) if isinstance(res[c], float) and res[c] != int(res[c]) else int(res[c])
    res["other"] = other
    return res


def summarize_synth(family, hier_stat, flat_stat, report, top="hwgen_top", board_top=BOARD_TOP, modules=None):
    """The ``synth/<family>.json`` document from yosys' two ``stat -json`` outputs and ``report.json``.

    ``hier_stat``: statistics of the pass that keeps the hierarchy (one module per layer);
    ``flat_stat``: of the flattened pass (``top`` alone, or ``top`` kept inside ``board_top``).
    ``modules``: ``{layer name: Verilog module name}``, the manifest's ``modules``
    (:func:`hwgen.manifest.layer_modules`); without it (a manifest of an older build) a layer's
    module is taken as ``<top>.<layer name>``, right for every name that is a Verilog identifier
    (a layer whose module is not in the netlist is listed with zeros, its cells under ``glue``).
    """
    if family not in FAMILIES:
        raise HwgenError(f"synth: family must be one of {', '.join(FAMILIES)}, not {family!r}")
    hier, flat = stat_modules(hier_stat), stat_modules(flat_stat)
    for what, mods in (("hierarchical", hier), ("flattened", flat)):
        if top not in mods:
            raise HwgenError(f"synth-{family}: the {what} statistics have no module {top} "
                             f"(modules: {', '.join(sorted(mods)) or 'none'})")
    layers, claimed = [], set()
    for layer in report.get("layers", []):
        mod = (modules or {}).get(layer["name"]) or f"{top}.{layer['name']}"
        entry = {"name": layer["name"], "kind": layer.get("kind", ""), "module": mod if mod in hier else None,
                 "estimate": layer.get("resources", {})}
        cells = expand_cells(hier, mod) if mod in hier else {}
        claimed.add(mod)
        entry["synth"] = count_cells(cells, family)
        entry["cells"] = dict(sorted(cells.items()))
        layers.append(entry)
    # what the top module holds itself (and any submodule that is no layer of the report)
    glue = {}
    for t, n in hier[top].items():
        sub = {} if t in claimed else (expand_cells(hier, t) if t in hier else {t: 1})
        for tt, nn in sub.items():
            glue[tt] = glue.get(tt, 0) + n * nn
    total_flat = expand_cells(flat, top)
    doc = {
        "format": "hwgen-synth/1", "family": family, "command": SYNTH[family]["command"],
        "tool": hier_stat.get("creator", ""), "top": top,
        "total": count_cells(total_flat, family),
        "total_hierarchical": count_cells(expand_cells(hier, top), family),
        "estimate": report.get("resources", {}),
        "glue": count_cells(glue, family),
        "layers": layers,
        "cells": dict(sorted(total_flat.items())),
    }
    if board_top in flat:
        wrapper = {t: n for t, n in flat[board_top].items() if t != top}
        doc["wrapper"] = count_cells(wrapper, family)
    return doc


def format_synth(doc):
    """A text table of one ``synth/<family>.json``: estimated vs synthesised per layer and total."""
    head = f"{'layer':<14} {'kind':<15} {'LUT est':>8} {'LUT syn':>8} {'LUTRAM':>7} {'FF est':>7} {'FF syn':>7} " \
           f"{'CARRY':>6} {'BRAM18 e/s':>11} {'DSP e/s':>8}"
    rows = [f"{doc['family']} ({doc['command']})", head, "-" * len(head)]

    def row(name, kind, e, s):
        rows.append(f"{name:<14} {kind:<15} {e.get('LUT', 0):>8,} {s['LUT']:>8,} {s['LUTRAM']:>7,} {e.get('FF', 0):>7,} "
                    f"{s['FF']:>7,} {s['CARRY']:>6,} {str(e.get('BRAM18', 0)) + '/' + str(s['BRAM18']):>11} "
                    f"{str(e.get('DSP', 0)) + '/' + str(s['DSP']):>8}")
    for l in doc["layers"]:
        row(l["name"], l["kind"], l["estimate"], l["synth"])
    row("(glue)", "", {}, doc["glue"])
    row("total", "flattened", doc["estimate"], doc["total"])
    return "\n".join(rows)
