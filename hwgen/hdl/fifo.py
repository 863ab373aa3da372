"""Hardware of the FIFO layer: a stream FIFO of ``depth`` words at full rate.

* ``depth == 1``: a pipeline register (``ready`` passes through combinationally);
* ``depth == 2``: a skid buffer (registered ``ready``);
* ``depth >= 3``: :class:`amaranth.lib.fifo.SyncFIFOBuffered` (memory plus output
  register; block RAM for large depths).

All three move one word per cycle in and out simultaneously. The first word
is valid on the output 1 cycle (depth 1 or 2) or 2 cycles (depth ≥ 3) after it
was accepted.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib.fifo import SyncFIFOBuffered

from ..dataflow.fifo import FIFO
from .common import LayerComponent, implements

__all__ = ["FIFOComponent"]


@implements(FIFO)
class FIFOComponent(LayerComponent):
    """Stream FIFO built from an IR :class:`~hwgen.dataflow.FIFO`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.FIFO`

    Members
    -------
    i : ``In(stream.Signature(unsigned(lanes · bits)))``
    o : ``Out(stream.Signature(unsigned(lanes · bits)))``
    """

    WHAT = "a FIFO"

    def elaborate(self, platform):
        m = Module()
        depth = self.layer.depth
        i, o = self.i, self.o

        if depth == 1:
            out_free = Signal()
            m.d.comb += [out_free.eq(~o.valid | o.ready), i.ready.eq(out_free)]
            with m.If(out_free):
                m.d.sync += o.valid.eq(i.valid)
                with m.If(i.valid):
                    m.d.sync += o.payload.eq(i.payload)

        elif depth == 2:
            skid = Signal.like(i.payload)
            skid_valid = Signal()
            out_free = Signal()
            m.d.comb += [out_free.eq(~o.valid | o.ready), i.ready.eq(~skid_valid)]
            with m.If(out_free):
                with m.If(skid_valid):
                    m.d.sync += [o.payload.eq(skid), o.valid.eq(1), skid_valid.eq(0)]
                with m.Elif(i.valid):
                    m.d.sync += [o.payload.eq(i.payload), o.valid.eq(1)]
                with m.Else():
                    m.d.sync += o.valid.eq(0)
            with m.Elif(i.valid & ~skid_valid):
                m.d.sync += [skid.eq(i.payload), skid_valid.eq(1)]

        else:
            fifo = m.submodules.fifo = SyncFIFOBuffered(width=len(i.payload), depth=depth)
            m.d.comb += [
                fifo.w_data.eq(i.payload),
                fifo.w_en.eq(i.valid),
                i.ready.eq(fifo.w_rdy),
                o.payload.eq(fifo.r_data),
                o.valid.eq(fifo.r_rdy),
                fifo.r_en.eq(o.ready),
            ]

        return m
