"""Implementation flows with open tools: yosys synthesis, nextpnr-ecp5/-ice40 place and route, ecppack/icepack, Vivado script.

:func:`write_flows` renders, from the Jinja2 templates in ``rtl_templates/``,
the flow files of a build directory ``OUT`` (paths relative to it, so the
directory can move)::

    OUT/Makefile                       targets synth, synth-<family>, pnr, bitstream, vivado, all, clean
    OUT/flows/synth_xilinx.ys          yosys: synth_xilinx -family xc7   (hierarchy kept, then flattened)
    OUT/flows/synth_ecp5.ys            yosys: synth_ecp5                 (… flattened inside the board shell on ECP5 boards)
    OUT/flows/synth_ice40.ys           yosys: synth_ice40                (… inside the board shell on iCE40 boards)
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
* ``pnr/<family>.json`` (:func:`summarize_pnr`): achieved Fmax against the clock
  (the PLL's output) and the utilisation, from nextpnr's ``--report``, of the
  board shell ``board/hwgen_board.v`` (:func:`hwgen.shell.write_shell`: the
  core behind the UART host link, with the board's PLL, reset and pins);
* ``bitstream/<family>.json``: the ``.bit`` (ECP5) or ``.bin`` (iCE40) file,
  its size and hash: a bitstream that runs on the board.

Rendering is deterministic: same manifest and options, same bytes.

The modules, one concept each:

* :mod:`~hwgen.flows.render`: the flow files from the templates (:func:`write_flows`);
* :mod:`~hwgen.flows.cells`: yosys' commands, the cell map and ``synth/<family>.json``;
* :mod:`~hwgen.flows.pnr`: ``pnr/<family>.json`` and ``bitstream/<family>.json``;
* :mod:`~hwgen.flows.report`: ``report.md`` re-rendered with what the tools measured;
* :mod:`~hwgen.flows.runner`: :func:`run`, a target through ``make -C OUT``;
* :mod:`~hwgen.flows.cli`: ``python -m hwgen.flows`` (``run``, ``summarize-*``), the Makefile's helper.

The layers' module names come from the build's manifest (``modules``,
:mod:`hwgen.manifest`), the device families from :data:`hwgen.devices.FAMILIES`.
"""

from ..devices import FAMILIES
from .cells import (BOARD_TOP, CATEGORIES, CELL_MAP, MAP_DOC, SYNTH, count_cells, expand_cells, format_synth,
                    stat_modules, summarize_synth)
from .cli import main as _main  # noqa: F401 - the entry point of `python -m hwgen.flows`, under its old name
from .pnr import summarize_bitstream, summarize_pnr
from ..shell.boards import BOARDS
from .render import (DEFAULT_ECP5, DEFAULT_TOOLS, DEFAULT_VIVADO_PART, FLOWS_FORMAT, TEMPLATE_DIR,
                     render_flows, write_flows)
from .report import write_synth_report
from .runner import TARGETS, run

_modules = stat_modules        # (bench/calibrate.py's name for it)

__all__ = ["write_flows", "render_flows", "run", "summarize_synth", "write_synth_report", "summarize_pnr", "summarize_bitstream",
           "expand_cells", "count_cells", "format_synth", "stat_modules", "FAMILIES", "TARGETS", "CELL_MAP", "FLOWS_FORMAT",
           "BOARD_TOP", "CATEGORIES", "MAP_DOC", "SYNTH", "BOARDS", "DEFAULT_ECP5", "DEFAULT_TOOLS", "DEFAULT_VIVADO_PART",
           "TEMPLATE_DIR"]
