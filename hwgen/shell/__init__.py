"""Board shells: what a board needs around the accelerator core (host link, clocks, reset, LEDs).

* :mod:`hwgen.shell.uart`: the UART of the host link (8N1), with its reference model;
* :mod:`hwgen.shell.protocol`: the host link's framed protocol (hwgen-link/1), its reference;
* :mod:`hwgen.shell.link`: the link's hardware end (UART bytes ↔ the core's streams);
* :mod:`hwgen.shell.boards`: the boards (ULX3S 12F/25F/45F/85F, iCEBreaker): device, oscillator, pins;
* :mod:`hwgen.shell.pll`: PLL settings from the oscillator to the build's clock (EHXPLLL, SB_PLL40_PAD);
* :mod:`hwgen.shell.top`: :class:`~hwgen.shell.top.BoardTop`, the shell's top module (hwgen_board);
* :mod:`hwgen.shell.render`: :func:`write_shell`, a build's ``board/`` files (shell Verilog, pins, board.json);
* :mod:`hwgen.shell.simboard`: :class:`~hwgen.shell.simboard.SimBoard`, the board top in Verilator with its
  UART on a pseudo-terminal (``sim/tb_uart_pty.cpp``), for the host driver to open through pyserial.
"""

from .boards import BOARD_NAMES, BOARDS, DEFAULT_BOARD
from .render import design_id, render_shell, write_shell

__all__ = ["BOARDS", "BOARD_NAMES", "DEFAULT_BOARD", "write_shell", "render_shell", "design_id"]
