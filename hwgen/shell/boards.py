"""The boards a shell can be built for: their FPGA, oscillator, UART bridge and pins.

Each entry of :data:`BOARDS` names the device as nextpnr takes it, the oscillator, the USB-UART
bridge and its default baud rate, and the pins of the shell's ports (the same port names on every
board; the pin file of the board maps them):

* ``clk_in`` — the oscillator; ``btn_n`` — a push button, low when pressed (the reset);
* ``uart_rx`` — FPGA input, the bridge's TXD; ``uart_tx`` — FPGA output, the bridge's RXD;
* ``led`` — the LEDs (``led_active_low``: lit by a 0);
* ``extras`` — outputs the board needs held at a level (ULX3S ``wifi_gpio0`` high: the ESP32
  would otherwise reset the board).

Pins as the boards' official constraint files give them (``official``: the name there):
the ULX3S v2.x/v3.x ``ulx3s_v20.lpf`` (emard/ulx3s, ``doc/constraints``) and the iCEBreaker
``icebreaker.pcf`` (YosysHQ/icestorm, ``examples/icebreaker``).
"""

from ..errors import HwgenError

__all__ = ["BOARDS", "board", "BOARD_NAMES", "DEFAULT_BOARD"]

DEFAULT_BOARD = "ulx3s"


def _ulx3s(size):
    return {
        "name": "ulx3s" if size == "85k" else f"ulx3s-{size[:-1]}f",
        "family": "ecp5", "device": f"LFE5U-{size[:-1].upper()}F", "nextpnr_device": size, "package": "CABGA381",
        "speed": 6, "pin_file": "lpf", "oscillator_hz": 25_000_000, "uart_bridge": "FT231X", "baud": 3_000_000,
        "led_active_low": False,
        "pins": {
            "clk_in": {"site": "G2", "official": "clk_25mhz", "dir": "in", "pull": "NONE"},
            "btn_n": {"site": "D6", "official": "btn[0]", "dir": "in", "pull": "UP"},
            "uart_rx": {"site": "M1", "official": "ftdi_txd", "dir": "in", "pull": "UP"},
            "uart_tx": {"site": "L4", "official": "ftdi_rxd", "dir": "out", "pull": "UP"},
            **{f"led[{i}]": {"site": s, "official": f"led[{i}]", "dir": "out", "pull": "NONE"}
               for i, s in enumerate(("B2", "C2", "C1", "D2", "D1", "E2", "E1", "H3"))},
            "wifi_gpio0": {"site": "L2", "official": "wifi_gpio0", "dir": "out", "pull": "NONE"},
        },
        "leds": 8, "extras": {"wifi_gpio0": 1},
    }


BOARDS = {b["name"]: b for b in (
    _ulx3s("85k"), _ulx3s("12k"), _ulx3s("25k"), _ulx3s("45k"),
    {
        "name": "icebreaker", "family": "ice40", "device": "iCE40UP5K", "nextpnr_device": "up5k", "package": "sg48",
        "speed": None, "pin_file": "pcf", "oscillator_hz": 12_000_000, "uart_bridge": "FT2232H", "baud": 3_000_000,
        "led_active_low": True,
        "pins": {
            "clk_in": {"site": "35", "official": "CLK", "dir": "in"},
            "btn_n": {"site": "10", "official": "BTN_N", "dir": "in"},
            "uart_rx": {"site": "6", "official": "RX", "dir": "in"},
            "uart_tx": {"site": "9", "official": "TX", "dir": "out"},
            "led[0]": {"site": "11", "official": "LEDR_N", "dir": "out"},
            "led[1]": {"site": "37", "official": "LEDG_N", "dir": "out"},
        },
        "leds": 2, "extras": {},
    },
)}
BOARD_NAMES = tuple(BOARDS)


def board(name):
    """The :data:`BOARDS` entry ``name`` (a one-line :class:`HwgenError` naming the boards otherwise)."""
    if isinstance(name, dict):
        return name
    if name not in BOARDS:
        raise HwgenError(f"board must be one of {', '.join(BOARDS)}, not {name!r}")
    return BOARDS[name]
