"""Hardware of the WidthConverter layer: ``lanes_in`` → ``lanes_out`` lanes per word.

Values are unchanged; only the grouping of the lane sequence into words
changes. Both lane counts divide ``C``, hence so does ``L = lcm(lanes_in,
lanes_out)``, and the lane sequence splits into blocks of ``L`` lanes. Two
``L``-lane banks are used ping-pong: the write side fills one bank with
``L/lanes_in`` input words while the read side emits the other as
``L/lanes_out`` output words, so the converter runs at full rate
(``max(C/lanes_in, C/lanes_out)`` cycles per pixel) for any ratio (e.g. 3 → 2).
``ready`` and ``valid`` both come from registers (bank-full flags).

The first output word is valid ``L/lanes_in`` cycles after the first input
handshake. Equal lane counts give a plain wire-through.
"""

import math

from amaranth.hdl import Module, Mux, Signal

from ..dataflow.fifo import WidthConverter
from .common import LayerComponent, implements

__all__ = ["WidthConverterComponent"]


@implements(WidthConverter)
class WidthConverterComponent(LayerComponent):
    """Stream width converter built from an IR :class:`~hwgen.dataflow.WidthConverter`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.WidthConverter`

    Members
    -------
    i : ``In(stream.Signature(unsigned(lanes_in · bits)))``
    o : ``Out(stream.Signature(unsigned(lanes_out · bits)))``
    """

    WHAT = "a WidthConverter"

    def elaborate(self, platform):
        m = Module()
        L = self.layer
        a, b, w = L.lanes_in, L.lanes_out, L.dt.bits
        i, o = self.i, self.o

        if a == b:
            m.d.comb += [o.payload.eq(i.payload), o.valid.eq(i.valid), i.ready.eq(o.ready)]
            return m

        lcm = math.lcm(a, b)
        n_wr, n_rd = lcm // a, lcm // b
        banks = [Signal(lcm * w, name=f"bank{k}") for k in range(2)]
        full = [Signal(name=f"full{k}") for k in range(2)]
        wb, rb = Signal(), Signal()                     # bank being written / read
        wi, ri = Signal(range(n_wr)), Signal(range(n_rd))  # word index within the bank

        accept, take = Signal(), Signal()
        m.d.comb += [
            i.ready.eq(~Mux(wb, full[1], full[0])),
            accept.eq(i.valid & i.ready),
            o.valid.eq(Mux(rb, full[1], full[0])),
            take.eq(o.valid & o.ready),
        ]

        # write side
        for k, bank in enumerate(banks):
            for j in range(n_wr):
                with m.If(accept & (wb == k) & (wi == j)):
                    m.d.sync += bank[j * a * w:(j + 1) * a * w].eq(i.payload)
        with m.If(accept):
            with m.If(wi == n_wr - 1):
                m.d.sync += [wi.eq(0), wb.eq(~wb)]
            with m.Else():
                m.d.sync += wi.eq(wi + 1)

        # read side. The output word is one continuous expression (a mux of two
        # word selects), never a comb assignment under If/Switch: Amaranth emits
        # those as an ``always @*`` process, which a 4-state simulator with
        # SystemVerilog semantics (Icarus -g2012) only evaluates after one of
        # its inputs changes, so o.payload would read X until then (e.g. for a
        # whole first bank of zero words).
        words = [bank.word_select(ri, b * w) if n_rd > 1 else bank for bank in banks]
        m.d.comb += o.payload.eq(Mux(rb, words[1], words[0]))
        with m.If(take):
            with m.If(ri == n_rd - 1):
                m.d.sync += [ri.eq(0), rb.eq(~rb)]
            with m.Else():
                m.d.sync += ri.eq(ri + 1)

        # bank-full flags: a bank is completed by the writer or drained by the reader,
        # never both in one cycle (the writer needs it empty, the reader full)
        for k in range(2):
            with m.If(accept & (wi == n_wr - 1) & (wb == k)):
                m.d.sync += full[k].eq(1)
            with m.Elif(take & (ri == n_rd - 1) & (rb == k)):
                m.d.sync += full[k].eq(0)

        return m
