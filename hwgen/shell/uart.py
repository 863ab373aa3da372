"""A UART for the board shells: 8 data bits, no parity, 1 stop bit (8N1), LSB first.

* :class:`UARTTx` takes bytes on a stream and drives the ``tx`` line: idle high, a start bit
  (0), the 8 data bits, a stop bit (1), each bit ``divisor`` clock cycles long;
* :class:`UARTRx` watches the ``rx`` line (through a two-flop synchroniser), finds a start
  bit's falling edge, checks it is still low half a bit later (else a glitch: ignored),
  samples each data bit in its middle and the stop bit; a byte with a good stop bit is
  offered on its output stream, one with a low stop bit raises ``framing_error`` for a
  cycle and is dropped, as is a byte arriving while the last one has not been taken
  (``overrun`` for a cycle).

The reference model beside them: :func:`line` (the levels of the line, cycle by cycle, for
some bytes) and :func:`decode` (the bytes a sampling receiver reads from such levels).
``divisor`` is the clock frequency over the baud rate, rounded (:func:`divisor_for`).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError

__all__ = ["UARTTx", "UARTRx", "divisor_for", "line", "decode", "MIN_DIVISOR"]

MIN_DIVISOR = 4         # fewer clock cycles per bit leave no room to find a bit's middle


def divisor_for(clock_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clock_hz``: an integer ≥ :data:`MIN_DIVISOR` whose rate is
    within 2 % of ``baud`` (a receiver sampling mid-bit tolerates about 4 % over ten bits)."""
    if not baud > 0 or not clock_hz > 0:
        raise HwgenError(f"uart: clock {clock_hz!r} Hz and baud rate {baud!r} must be positive numbers")
    div = round(clock_hz / baud)
    if div < MIN_DIVISOR:
        raise HwgenError(f"uart: {baud:,.0f} baud at {clock_hz / 1e6:g} MHz is {clock_hz / baud:.2f} clock cycles per "
                         f"bit; accepted: at least {MIN_DIVISOR} (a slower baud rate or a faster clock)")
    err = abs(clock_hz / div - baud) / baud
    if err > 0.02:
        raise HwgenError(f"uart: {baud:,.0f} baud at {clock_hz / 1e6:g} MHz: the nearest divisor {div} gives "
                         f"{clock_hz / div:,.0f} baud, {err:.1%} off; accepted: within 2 %")
    return div


def _check_divisor(divisor, component=None):
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        if component is not None:
            component._MustUse__silence = True         # a refused component is not an unused one
        raise HwgenError(f"uart: divisor must be an integer ≥ {MIN_DIVISOR} (clock cycles per bit), not {divisor!r}")


def line(data, divisor, gaps=None):
    """Line levels, one per clock cycle, sending bytes ``data`` 8N1 at ``divisor`` cycles per bit;
    ``gaps[k]``: idle cycles (high) before byte ``k`` (default none)."""
    _check_divisor(divisor)
    levels = []
    for k, byte in enumerate(data):
        levels += [1] * (gaps[k] if gaps else 0)
        for bit in [0] + [(int(byte) >> i) & 1 for i in range(8)] + [1]:
            levels += [bit] * divisor
    return levels


def decode(levels, divisor):
    """The bytes a receiver sampling each bit in its middle reads from ``levels`` (a list of 0/1
    per cycle), and the number of framing errors (stop bit low), as ``(bytes, errors)``."""
    _check_divisor(divisor)
    out, errors, t, n = [], 0, 1, len(levels)
    while t < n:
        if levels[t - 1] == 1 and levels[t] == 0:           # a falling edge: a start bit begins at t
            mid = t + divisor // 2
            if mid + 9 * divisor >= n:
                break
            if levels[mid] == 0:
                bits = [levels[mid + (i + 1) * divisor] for i in range(8)]
                if levels[mid + 9 * divisor] == 1:
                    out.append(sum(b << i for i, b in enumerate(bits)))
                else:
                    errors += 1
                t = mid + 9 * divisor                         # look for the next edge from the stop bit
                continue
        t += 1
    return bytes(out), errors


class UARTTx(wiring.Component):
    """Bytes on ``i`` out as 8N1 frames on ``tx`` at ``divisor`` clock cycles per bit.

    Members
    -------
    i : ``In(stream.Signature(8))`` — taken when the transmitter is idle
    tx : ``Out(1)`` — the line, high when idle
    """

    def __init__(self, divisor):
        _check_divisor(divisor, self)
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10)                  # stop, data[7:0], start: sent LSB first
        bits = Signal(range(11))            # bits left to send
        count = Signal(range(self.divisor))
        m.d.comb += self.i.ready.eq(bits == 0)
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [shift.eq((1 << 9) | (self.i.payload << 1)), bits.eq(10), count.eq(0)]
        with m.Else():
            m.d.comb += self.tx.eq(shift[0])
            with m.If(count == self.divisor - 1):
                m.d.sync += [count.eq(0), shift.eq(shift >> 1), bits.eq(bits - 1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m                            # idle (bits == 0): tx keeps its reset value, 1


class UARTRx(wiring.Component):
    """8N1 frames on ``rx`` in as bytes on ``o``, at ``divisor`` clock cycles per bit.

    Members
    -------
    rx : ``In(1)`` — the line (asynchronous: synchronised here), high when idle
    o : ``Out(stream.Signature(8))`` — each good byte, held until taken
    framing_error : ``Out(1)`` — one cycle: a byte's stop bit was low (the byte is dropped)
    overrun : ``Out(1)`` — one cycle: a byte arrived before the last one was taken (dropped)
    """

    def __init__(self, divisor):
        _check_divisor(divisor, self)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)), "framing_error": Out(1),
                          "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        sync1 = Signal(init=1)
        level = Signal(init=1)              # rx after two flops
        prev = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), level.eq(sync1), prev.eq(level)]
        count = Signal(range(div))
        bit = Signal(range(10))             # 0: start, 1-8: data, 9: stop
        data = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(prev & ~level):                     # falling edge: a start bit
                    m.d.sync += [count.eq(0), bit.eq(0)]
                    m.next = "start"
            with m.State("start"):                            # to the middle of the start bit
                # the edge was seen one cycle after level fell: its middle is div//2 - 1 cycles on
                with m.If(count == div // 2 - 1):
                    m.d.sync += count.eq(0)
                    with m.If(level):
                        m.next = "idle"                       # a glitch, not a start bit
                    with m.Else():
                        m.next = "bits"
                with m.Else():
                    m.d.sync += count.eq(count + 1)
            with m.State("bits"):                             # one bit period from middle to middle
                with m.If(count == div - 1):
                    m.d.sync += [count.eq(0), bit.eq(bit + 1)]
                    with m.If(bit == 8):                      # the stop bit
                        m.next = "idle"
                        with m.If(~level):
                            m.d.comb += self.framing_error.eq(1)
                        with m.Elif(self.o.valid & ~self.o.ready):
                            m.d.comb += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(data), self.o.valid.eq(1)]
                    with m.Else():
                        m.d.sync += data.eq((level << 7) | (data >> 1))
                with m.Else():
                    m.d.sync += count.eq(count + 1)
        return m
