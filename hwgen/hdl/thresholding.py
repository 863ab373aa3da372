"""Hardware of the Thresholding layer: standalone per-channel requantisation.

Each word carries ``PE`` channels of one pixel; a channel-group counter cycles
through ``C/PE`` groups per pixel and addresses the threshold ROM (one word per
group, ``PE·N`` thresholds). Output lane ``p`` is
``out_base + out_step · Σ_i [x_p ≥ T[g·PE + p, i]]`` in the output type.

Pipeline (advancing together when ``en = ~o.valid | o.ready``), with
``pipeline="none"`` (0)::

    S0  input handshake, threshold ROM address = channel group
    S1  input word + threshold ROM word            -> comparators, counts
    S2  output register

Pipelined (``pipeline`` ≥ 1, the default "auto")::

    S0  input handshake, threshold ROM address = channel group
    S1  input word, threshold ROM word
    R   both registered (a block RAM's clock-to-output)  -> comparators
    C   comparison bits (a thermometer code per lane)
    S2  output register: the code of each lane's count, from the thermometer code
        directly (no adder)

One word per cycle; the first output word is valid ``LATENCY`` cycles after
the first input handshake: 2 unpipelined, 4 pipelined (:meth:`hwgen.dataflow.Thresholding.latency`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal

from ..dataflow.thresholding import Thresholding
from ..dataflow.pipeline import pipeline_levels
from .common import (LayerComponent, Pipe, ThresholdParams, decode_lane, encode_value, implements, lane, memory_attrs,
                     thermometer_encode, threshold_count)
from .rom import rom_read_port

__all__ = ["ThresholdingComponent"]


@implements(Thresholding)
class ThresholdingComponent(ThresholdParams, LayerComponent):
    """Streaming multi-threshold unit built from an IR :class:`~hwgen.dataflow.Thresholding`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.Thresholding`
        The layer (validated on construction).

    Members
    -------
    i : ``In(stream.Signature(unsigned(PE · idt.bits)))``
    o : ``Out(stream.Signature(unsigned(PE · odt.bits)))``
    """

    WHAT = "a Thresholding"

    def threshold_range(self):
        """The compared value is the input itself."""
        return self.layer.idt.min, self.layer.idt.max

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        PE, N = L.pe, L.n_thresholds
        G = L.channels // PE
        idt, odt = L.idt, L.odt
        tdt = self.threshold_type()

        en = Signal()
        take = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
            take.eq(en & self.i.valid),
        ]

        # -- S0: channel group counter, threshold ROM read ---------------------------
        group = Signal(range(G))
        with m.If(take):
            m.d.sync += group.eq(Mux(group == G - 1, 0, group + 1))

        if N:
            tport = rom_read_port(m, self, "thresholds", width=PE * N * tdt.bits, depth=G, init=self.threshold_rom,
                                  attrs=memory_attrs(L.mem_style, "rom"))
            m.d.comb += [tport.addr.eq(group), tport.en.eq(take)]

        # -- S1: input word -------------------------------------------------------
        v1 = Signal()
        s1_in = Signal(PE * idt.bits)
        with m.If(en):
            m.d.sync += v1.eq(self.i.valid)
        with m.If(take):
            m.d.sync += s1_in.eq(self.i.payload)

        if pipeline_levels(L):
            pipe = Pipe(m, en, valid=v1)
            x_word, t_word = pipe.register([s1_in, tport.data if N else Const(0, 1)], name="opnd")
            bits = pipe.register([
                Cat(*[decode_lane(lane(x_word, p, idt.bits), idt) >=
                      decode_lane(lane(t_word, p * N + k, tdt.bits), tdt) for k in range(N)])
                for p in range(PE)], name="ge")
            codes = [thermometer_encode(b, [L.out_base + L.out_step * c for c in range(N + 1)], odt) for b in bits]
            with m.If(en):
                m.d.sync += self.o.valid.eq(pipe["valid"])
            with m.If(en & pipe["valid"]):
                m.d.sync += self.o.payload.eq(Cat(*codes))
            return m

        codes = []
        for p in range(PE):
            x = decode_lane(lane(s1_in, p, idt.bits), idt)
            thr = [decode_lane(lane(tport.data, p * N + k, tdt.bits), tdt) for k in range(N)] if N else []
            count = threshold_count(m, x, thr, name=f"count{p}")
            codes.append(encode_value(m, L.out_base + L.out_step * count, odt, name=f"y{p}"))

        # -- S2: output register ------------------------------------------------------
        with m.If(en):
            m.d.sync += self.o.valid.eq(v1)
        with m.If(en & v1):
            m.d.sync += self.o.payload.eq(Cat(*codes))

        return m
