"""The board shell: the accelerator core on a real board, reached over the UART host link.

:class:`BoardTop` is the top module of the bitstream (``hwgen_board``,
:data:`hwgen.flows.cells.BOARD_TOP`)::

    clk_in ─ PLL ─ core clock (sync) ─────────────────────────────────────────────┐
    btn_n ─ synchroniser ┐                                                         │
    PLL LOCK ────────────┴─ power-on reset counter ─ rst (sync, active high) ──────┤
    uart_rx ─ UARTRx(divisor) ─ Link(params) ─ core_in ─ <manifest top> ─ core_out ┘
                                     └──────── UARTTx(divisor) ─ uart_tx
    led[0] heartbeat (≈1 Hz), led[1] link error (stretched ≈0.2 s), led[2:] frames done (a counter)

The core is an ``Instance`` of the build's top module (``manifest["top"]``, its ports
``manifest["ports"]``), read from ``rtl/`` by the flows: it stays a module of its own.

``pll=False`` bypasses the PLL (for simulation): ``clk_in`` drives the core clock directly and
is taken to *be* the PLL's output frequency (``clock_hz``, the one the UART divisor and the
link's INFO are computed for), so a testbench drives ``clk_in`` at the board's core clock, not
at the oscillator's.  The ports are the same in both variants.
"""

import math

from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from ..manifest import PORTS
from .boards import board as _board
from .pll import pll_for
from .protocol import LinkParams
from .uart import UARTRx, UARTTx, divisor_for

__all__ = ["BoardTop", "BAUD_STEPS", "choose_baud", "POR_CYCLES"]

#: the baud rates tried, fastest first, when a board's default is not within 2 % at its clock
BAUD_STEPS = (3_000_000, 2_000_000, 1_500_000, 1_000_000, 921_600, 500_000, 460_800, 230_400, 115_200)
POR_CYCLES = 1 << 10         # reset held this many core cycles after the PLL locks and the button is released
ERROR_LED_S = 0.2            # a link error lights its LED this long
ERROR_TICKS = 4              # … counted in this many ticks


def choose_baud(clock_hz, board, baud=None):
    """``(baud, divisor)``: ``baud`` exactly when given (a one-line error when the clock cannot make
    it), else the board's default or, when its divisor is more than 2 % off, the next slower of
    :data:`BAUD_STEPS`.  ``baud`` returned is the actual rate, ``clock_hz / divisor``."""
    if baud is not None:
        div = divisor_for(clock_hz, baud)
        return clock_hz / div, div
    for b in (board["baud"],) + tuple(s for s in BAUD_STEPS if s < board["baud"]):
        try:
            div = divisor_for(clock_hz, b)
        except HwgenError:
            continue
        return clock_hz / div, div
    raise HwgenError(f"uart: no baud rate of {', '.join(f'{s:,}' for s in BAUD_STEPS)} is within 2 % at "
                     f"{clock_hz / 1e6:g} MHz; accepted: a clock of at least {BAUD_STEPS[-1] * 4 / 1e6:g} MHz")


class _Handshake:
    """payload, valid, ready of one side of the core (plain signals: an Instance's ports)."""

    def __init__(self, width, name):
        self.payload = Signal(width, name=f"{name}_tdata")
        self.valid, self.ready = Signal(name=f"{name}_tvalid"), Signal(name=f"{name}_tready")


class BoardTop(wiring.Component):
    """The shell of ``manifest``'s core on ``board`` (a name of :data:`hwgen.shell.boards.BOARDS`).

    ``pll``: instantiate the board's PLL (False: ``clk_in`` is the core clock, see the module
    docstring); ``baud``: the UART rate (default: the board's, or slower if the clock needs it);
    ``buffer_frames``: frames the link buffers; ``design_id``: what the link's INFO reports;
    ``por_cycles``: the power-on reset's length in core cycles.

    Computed at construction (with or without PLL): :attr:`pll_params` (the board's PLL settings),
    :attr:`clock_hz` (the actual core clock, the PLL's output), :attr:`baud` (actual),
    :attr:`divisor`, :attr:`link_params` (:class:`~hwgen.shell.protocol.LinkParams`).
    """

    def __init__(self, manifest, board="ulx3s", *, pll=True, baud=None, buffer_frames=2, design_id=0,
                 por_cycles=POR_CYCLES):
        self.board = _board(board)
        self.manifest = manifest
        self.use_pll = bool(pll)
        try:
            target_hz = float(manifest["clock_mhz"]) * 1e6
        except (KeyError, TypeError, ValueError):
            raise HwgenError(f"shell: the manifest's clock_mhz must be a number, not "
                             f"{manifest.get('clock_mhz')!r}") from None
        b = self.board
        self.pll_params = pll_for(b["family"], b["oscillator_hz"], target_hz)
        self.clock_hz = self.pll_params["clock_hz"]
        self.baud, self.divisor = choose_baud(self.clock_hz, b, baud)
        if not isinstance(por_cycles, int) or por_cycles < 1:
            raise HwgenError(f"shell: por_cycles must be a positive integer, not {por_cycles!r}")
        self.por_cycles = por_cycles
        self.link_params = LinkParams.from_manifest(manifest, buffer_frames=buffer_frames, design_id=design_id,
                                                    clock_hz=round(self.clock_hz), baud=round(self.baud))
        self.heartbeat_bits = max(2, round(self.clock_hz).bit_length() - 1)      # its top bit toggles at ≈0.5-1 Hz
        ticks = max(2, self.clock_hz * ERROR_LED_S / ERROR_TICKS)
        self.tick_bits = min(self.heartbeat_bits, max(1, round(math.log2(ticks))))
        members = {"clk_in": In(1), "btn_n": In(1, init=1), "uart_rx": In(1, init=1), "uart_tx": Out(1, init=1),
                   "led": Out(b["leds"])}
        for name in b["extras"]:
            members[name] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        b, p = self.board, self.pll_params
        clk, lock = Signal(), Signal()
        if not self.use_pll:
            m.d.comb += [clk.eq(self.clk_in), lock.eq(1)]
        elif b["family"] == "ecp5":
            mhz = f"{p['input_hz'] / 1e6:g}", f"{p['clock_hz'] / 1e6:.6g}"
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=mhz[0], a_FREQUENCY_PIN_CLKOP=mhz[1], a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD", p_CLKI_DIV=p["CLKI_DIV"],
                p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"], p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
                p_CLKOP_FPHASE=p["CLKOP_FPHASE"], p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
                i_RST=Const(0), i_STDBY=Const(0), i_CLKI=self.clk_in, o_CLKOP=clk, i_CLKFB=clk,
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1), i_PHASESTEP=Const(1),
                i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0), o_LOCK=lock)
        else:
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_DIVR=Const(p["DIVR"], 4), p_DIVF=Const(p["DIVF"], 7),
                p_DIVQ=Const(p["DIVQ"], 3), p_FILTER_RANGE=Const(p["FILTER_RANGE"], 3),
                i_PACKAGEPIN=self.clk_in, i_RESETB=Const(1), i_BYPASS=Const(0), o_PLLOUTGLOBAL=clk, o_LOCK=lock)

        # the core clock; the power-on reset runs in a domain of its own, never reset
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]
        btn = Signal(2, init=0b11)
        lock_s = Signal(2)
        por = Signal(range(self.por_cycles + 1))
        m.d.por += [btn.eq((btn << 1) | self.btn_n), lock_s.eq((lock_s << 1) | lock)]
        with m.If(~btn[1] | ~lock_s[1]):
            m.d.por += por.eq(0)
        with m.Elif(por != self.por_cycles):
            m.d.por += por.eq(por + 1)
        rst = Signal()
        m.d.comb += [rst.eq(por != self.por_cycles), ResetSignal("sync").eq(rst)]

        # the host link: UART in, Link, UART out
        from .link import Link
        m.submodules.uart_rx = rx = UARTRx(self.divisor)
        m.submodules.uart_tx = tx = UARTTx(self.divisor)
        m.submodules.link = link = Link(self.link_params)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx), link.rx_error.eq(rx.framing_error | rx.overrun)]
        wiring.connect(m, rx.o, link.rx)
        wiring.connect(m, link.tx, tx.i)

        # the accelerator core, a module of its own
        ports = self.manifest.get("ports", {})
        pin, pout = ports.get("in", PORTS["in"]), ports.get("out", PORTS["out"])
        # register slices between the link and the core, both ways: no combinational path runs from
        # the link's byte-level state into the core's handshakes (it was the critical path: 87 MHz)
        from amaranth.lib.fifo import SyncFIFOBuffered
        m.submodules.slice_in = sin = SyncFIFOBuffered(width=self.link_params.in_bits, depth=2)
        m.submodules.slice_out = sout = SyncFIFOBuffered(width=self.link_params.out_bits, depth=2)
        m.d.comb += [sin.w_data.eq(link.core_in.payload), sin.w_en.eq(link.core_in.valid),
                     link.core_in.ready.eq(sin.w_rdy),
                     link.core_out.payload.eq(sout.r_data), link.core_out.valid.eq(sout.r_rdy),
                     sout.r_en.eq(link.core_out.ready)]
        ci = _Handshake(self.link_params.in_bits, "core_s_axis")
        co = _Handshake(self.link_params.out_bits, "core_m_axis")
        m.d.comb += [ci.payload.eq(sin.r_data), ci.valid.eq(sin.r_rdy), sin.r_en.eq(ci.ready),
                     sout.w_data.eq(co.payload), sout.w_en.eq(co.valid), co.ready.eq(sout.w_rdy)]
        m.submodules.core = Instance(
            self.manifest["top"],
            **{f"i_{ports.get('clk', PORTS['clk']).split()[0]}": ClockSignal("sync"),
               f"i_{ports.get('rst', PORTS['rst']).split()[0]}": ResetSignal("sync"),
               f"i_{pin[0]}": ci.payload, f"i_{pin[1]}": ci.valid, f"o_{pin[2]}": ci.ready,
               f"o_{pout[0]}": co.payload, f"o_{pout[1]}": co.valid, f"i_{pout[2]}": co.ready})

        # LEDs: heartbeat, link error (stretched), frames done (a counter)
        beat = Signal(self.heartbeat_bits + 1)
        m.d.sync += beat.eq(beat + 1)
        # the error LED counts ERROR_TICKS ticks of 2**tick_bits cycles (taken from the heartbeat
        # counter), so its stretch costs a few flip-flops, not a long counter on the critical path
        tick_bit, tick_prev, tick = beat[self.tick_bits - 1], Signal(), Signal()
        m.d.sync += tick_prev.eq(tick_bit)
        m.d.comb += tick.eq(tick_prev & ~tick_bit)
        err = Signal(range(ERROR_TICKS + 2))
        with m.If(link.link_error):
            m.d.sync += err.eq(ERROR_TICKS + 1)
        with m.Elif(tick & (err != 0)):
            m.d.sync += err.eq(err - 1)
        n_leds = len(self.led)
        frames = Signal(max(1, n_leds - 2))
        with m.If(link.frame_done):
            m.d.sync += frames.eq(frames + 1)
        lit = Signal(n_leds)
        m.d.comb += lit[0].eq(beat[-1])
        if n_leds > 1:
            m.d.comb += lit[1].eq(err != 0)
        if n_leds > 2:
            m.d.comb += lit[2:].eq(frames)
        m.d.comb += self.led.eq(~lit if self.board["led_active_low"] else lit)
        for name, level in self.board["extras"].items():
            m.d.comb += getattr(self, name).eq(level)
        return m

    def led_meaning(self):
        """``{led index: meaning}`` for board.json."""
        n = len(self.led)
        out = {"0": "heartbeat (toggles about once a second)"}
        if n > 1:
            out["1"] = f"link error (a bad packet or a UART framing error; lit {ERROR_LED_S:g} s)"
        for i in range(2, n):
            out[str(i)] = f"frames done, bit {i - 2} of a counter"
        if self.board["led_active_low"]:
            out = {k: v + "; active low" for k, v in out.items()}
        return out
