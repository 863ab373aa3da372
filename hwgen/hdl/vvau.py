"""Hardware of the VVAU layer: depthwise (per-channel) dot products (+ thresholds).

Input order (depthwise windows from a SlidingWindow with ``simd == pe``): per
pixel, for each of the ``G = C/PE`` channel groups, ``K`` words of ``PE``
lanes; lane ``p`` of word ``(g, k)`` is channel ``g·PE + p`` at kernel position
``k``. Lane ``p`` is multiplied by its own weight ``W[g·PE + p, k]`` and summed
into accumulator ``p``; after the ``K``-th word of a group the ``PE``
accumulators are channels ``g·PE … g·PE+PE−1`` of the pixel, and one output
word carries them (thresholded as in the MVAU, or the raw accumulator).

Pipeline (every stage advances together when ``en = ~o.valid | o.ready``), with
``pipeline="none"`` (0)::

    S0  step counters (g, k), weight ROM address g·K + k; takes an input word
    S1  weight ROM word, input word      -> PE products
    S2  PE accumulators                  (+ threshold ROM word of group g)
    S3  output register: threshold counts or accumulators, encoded in the output type

Pipelined (``pipeline`` ≥ 1, the default "auto")::

    S0  step counters, weight ROM address; takes an input word
    S1  weight ROM word, input word
    R   operand registers                -> PE products
    P   product registers
    S2  PE accumulators                  (+ threshold ROM word of group g, read
                                          one stage earlier and registered)
    S3  threshold comparisons (registered bits)          — only with thresholds
    S4  output register: the thermometer code of the comparisons (or the
        accumulator) encoded in the output type

One input word per cycle, no bubble between groups, pixels or frames:
``pixels·G·K`` cycles per frame. The output word of a group is valid
``LATENCY`` cycles after the handshake of its ``K``-th input word: 3
unpipelined, 5 pipelined without thresholds, 6 with (:meth:`hwgen.dataflow.VVAU.latency`).
"""

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned

from ..dataflow.vvau import VVAU
from ..dataflow.pipeline import pipeline_levels
from .common import (LayerComponent, Pipe, ThresholdParams, accumulate_and_output, implements, lane, memory_attrs,
                     pack_rows, product)
from .rom import rom_read_port

__all__ = ["VVAUComponent"]


@implements(VVAU)
class VVAUComponent(ThresholdParams, LayerComponent):
    """Streaming depthwise vector–vector–activation unit built from an IR :class:`~hwgen.dataflow.VVAU`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.VVAU`
        The layer (validated on construction).

    Members
    -------
    i : ``In(stream.Signature(unsigned(PE · idt.bits)))``
        Depthwise window words, ``PE`` channels of one kernel position.
    o : ``Out(stream.Signature(unsigned(PE · odt.bits)))``
        Output channels, ``PE`` lanes per word.
    """

    WHAT = "a VVAU"

    # -- parameters as ROM contents ---------------------------------------------------------
    def weight_rom(self):
        """ROM words, one per ``(g, k)`` at address ``g·K + k``; lane ``p`` holds ``W[g·PE + p, k]``."""
        L = self.layer
        PE, K = L.pe, L.kernel_elems
        G = L.channels // PE
        codes = L.wdt.encode(np.asarray(L.weights, dtype=np.int64))     # (C, K)
        codes = codes.reshape(G, PE, K).transpose(0, 2, 1)               # (G, K, PE)
        return pack_rows(codes.reshape(G * K, PE), L.wdt.bits)

    # ---------------------------------------------------------------------------------------
    def elaborate(self, platform):
        L = self.layer
        m = Module()
        PE, K = L.pe, L.kernel_elems
        G = L.channels // PE
        idt, wdt = L.idt, L.wdt
        acc_dt = L.acc_dt
        acc_shape = signed(acc_dt.bits) if acc_dt.signed else unsigned(acc_dt.bits)

        en = Signal()
        take = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
            take.eq(en & self.i.valid),
        ]

        # -- S0: step counters ------------------------------------------------------------
        g = Signal(range(G))
        k = Signal(range(K))
        waddr = Signal(range(G * K))
        with m.If(take):
            m.d.sync += waddr.eq(Mux(waddr == G * K - 1, 0, waddr + 1))
            with m.If(k == K - 1):
                m.d.sync += [k.eq(0), g.eq(Mux(g == G - 1, 0, g + 1))]
            with m.Else():
                m.d.sync += k.eq(k + 1)

        wport = rom_read_port(m, self, "weights", width=PE * wdt.bits, depth=G * K, init=self.weight_rom,
                              attrs=memory_attrs(L.mem_style, "rom"))
        m.d.comb += [wport.addr.eq(waddr), wport.en.eq(en)]

        # -- S1: input word + weight word -> products ------------------------------------------
        v1, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_g = Signal(range(G))
        s1_in = Signal(PE * idt.bits)
        with m.If(en):
            m.d.sync += [v1.eq(take), s1_first.eq(k == 0), s1_last.eq(k == K - 1), s1_g.eq(g)]
        with m.If(take):
            m.d.sync += s1_in.eq(self.i.payload)

        ctrl = {"valid": v1, "first": s1_first, "last": s1_last, "g": s1_g}
        w_word, x_word, early = wport.data, s1_in, None
        k = pipeline_levels(L)
        if k:
            # operands registered (a block RAM's clock-to-output), then the products
            pipe = Pipe(m, en, **ctrl)
            w_word, x_word = pipe.register([w_word, x_word], name="opnd")
        prods = [product(lane(w_word, p, wdt.bits), wdt, lane(x_word, p, idt.bits), idt) for p in range(PE)]
        if k:
            prods = pipe.register(prods, name="prod")
            ctrl, e = pipe.ctrl, pipe.history[-2]
            early = (e["valid"], e["last"], e["g"])
        terms = []
        for p, pr in enumerate(prods):
            s = Signal(pr.shape(), name=f"{'term' if k else 'prod'}{p}")
            m.d.comb += s.eq(pr)
            terms.append(s)

        # -- accumulators, thresholds / output register ----------------------------------------
        accumulate_and_output(m, self, en=en, valid=ctrl["valid"], first=ctrl["first"], last=ctrl["last"],
                              addr=ctrl["g"], depth=G, terms=terms, acc_shape=acc_shape, early=early)
        return m
