"""The board files of a build (:func:`write_shell`): ``OUT/board/``::

    hwgen_board.v        the shell (:class:`~hwgen.shell.top.BoardTop`) with the board's PLL, module hwgen_board
    hwgen_board_sim.v    the same without PLL (clk_in is the core clock), module hwgen_board_sim
    <board>.lpf | .pcf   the pins of the shell's ports (rtl_templates/shell_<family>.*.j2)
    board.json           what the bitstream is: board, device, clocks, PLL, baud, design id, pins, LEDs

The core is not in these files: it stays ``rtl/<top>.v``, read beside them.  Same manifest, board
and options, same bytes.
"""

import hashlib
import json
import os
from pathlib import Path

from ..errors import HwgenError
from ..files import write_text
from .boards import board as _board

__all__ = ["write_shell", "render_shell", "design_id", "BOARD_FORMAT", "SHELL_TOP", "SIM_TOP", "bitstream_path"]

BOARD_FORMAT = "hwgen-board/1"
SHELL_TOP = "hwgen_board"            # = hwgen.flows.cells.BOARD_TOP
SIM_TOP = "hwgen_board_sim"


def design_id(out_dir, manifest):
    """The first 4 bytes (little-endian) of the SHA-256 of the build's Verilog files then its ROM
    files, in the manifest's order: what the link's INFO reports and the host driver checks."""
    root = Path(os.fspath(out_dir))
    h = hashlib.sha256()
    for rel in list(manifest["verilog"]) + list(manifest.get("memfiles", [])):
        try:
            h.update((root / rel).read_bytes())
        except OSError as e:
            raise HwgenError(f"shell: cannot read {rel} of the build for its design id ({e.strerror or e})") from None
    return int.from_bytes(h.digest()[:4], "little")


def bitstream_path(b, top):
    return f"bitstream/{top}.{'bit' if b['family'] == 'ecp5' else 'bin'}"


def render_shell(out_dir, manifest, board="ulx3s", *, pll=True, baud=None, buffer_frames=2, por_cycles=None):
    """The board files as ``{relative path: text}`` (see :func:`write_shell`)."""
    from amaranth.back import verilog
    from ..flows.render import _env
    from .top import POR_CYCLES, BoardTop
    b = _board(board)
    did = design_id(out_dir, manifest)
    kw = {"baud": baud, "buffer_frames": buffer_frames, "design_id": did, "por_cycles": por_cycles or POR_CYCLES}
    top = BoardTop(manifest, b, pll=pll, **kw)
    sim = BoardTop(manifest, b, pll=False, **kw)
    files = {f"board/{SHELL_TOP}.v": verilog.convert(top, name=SHELL_TOP, emit_src=False),
             f"board/{SIM_TOP}.v": verilog.convert(sim, name=SIM_TOP, emit_src=False)}
    pins = {port: dict(p) for port, p in b["pins"].items()}
    ctx = {"board": b, "pins": pins, "clock_mhz": f"{top.clock_hz / 1e6:.6g}",
           "oscillator_mhz": f"{b['oscillator_hz'] / 1e6:g}", "top": SHELL_TOP}
    pin_file = f"board/{b['name']}.{b['pin_file']}"
    files[pin_file] = _env().get_template(f"shell_{b['family']}.{b['pin_file']}.j2").render(ctx)
    doc = {
        "format": BOARD_FORMAT, "board": b["name"], "family": b["family"], "device": b["device"],
        "package": b["package"], "nextpnr_device": b["nextpnr_device"], "speed": b["speed"],
        "oscillator_hz": b["oscillator_hz"], "clock_hz": round(top.clock_hz), "clock_target_hz": float(manifest["clock_mhz"]) * 1e6,
        "pll": top.pll_params if pll else None, "uart_bridge": b["uart_bridge"], "baud": round(top.baud),
        "divisor": top.divisor, "buffer_frames": buffer_frames, "design_id": did,
        "design_id_hex": f"{did:08x}", "top": SHELL_TOP, "sim_top": SIM_TOP,
        "sim_note": f"{SIM_TOP}: no PLL; drive clk_in at clock_hz (it stands for the PLL's output)",
        "verilog": [f"board/{SHELL_TOP}.v"] + list(manifest["verilog"]), "sim_verilog": [f"board/{SIM_TOP}.v"] +
        list(manifest["verilog"]), "pin_file": pin_file, "por_cycles": top.por_cycles,
        "ports": {port: {"site": p["site"], "official": p["official"], "dir": p["dir"]} for port, p in pins.items()},
        "extras": dict(b["extras"]), "leds": top.led_meaning(), "led_active_low": b["led_active_low"],
        "link": {"in_bytes": top.link_params.in_bytes, "out_bytes": top.link_params.out_bytes,
                 "in_word_bytes": top.link_params.in_word_bytes, "out_word_bytes": top.link_params.out_word_bytes},
        "bitstream": bitstream_path(b, manifest["top"]),
    }
    files["board/board.json"] = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    return files


def write_shell(out_dir, manifest, board="ulx3s", **opts):
    """Write ``OUT/board/`` (see the module docstring) for ``board`` (a name of
    :data:`hwgen.shell.boards.BOARDS`); ``opts``: ``pll`` [True], ``baud`` [the board's, or slower
    when the clock needs it], ``buffer_frames`` [2], ``por_cycles``.  Earlier board files of another
    board are removed.  Returns the written paths, relative to ``out_dir``, sorted."""
    files = render_shell(out_dir, manifest, board, **opts)
    root = Path(os.fspath(out_dir))
    old = root / "board"
    if old.is_dir():
        for p in sorted(old.iterdir()):
            if p.is_file() and f"board/{p.name}" not in files:
                p.unlink()
    for rel, text in sorted(files.items()):
        write_text(root / rel, text)
    return sorted(files)
