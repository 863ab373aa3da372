"""Hardware of the MVAU layer: folded integer matrix × vector (+ thresholds).

Folding: per pixel the unit steps through ``NF = MH/PE`` neuron folds, each
made of ``SF = MW/SIMD`` synapse folds, one ``(nf, sf)`` step per clock. The
input word of step ``(0, sf)`` is taken from the input stream (and kept in an
input buffer of ``SF`` words); steps ``(nf > 0, sf)`` re-read it from the
buffer. After the last synapse fold of neuron fold ``nf`` the ``PE``
accumulators hold channels ``nf·PE … nf·PE+PE−1`` of the pixel; the output
word carries them (thresholded, or the raw accumulator).

Pipeline (every stage advances together when ``en = ~o.valid | o.ready``), with
``pipeline="none"`` (0)::

    S0  step counters (nf, sf), weight ROM address; takes an input word when nf == 0
    S1  weight ROM word, input word (fresh or buffered)   -> products, adder tree
    S2  PE accumulators                                   (+ threshold ROM word)
    S3  output register: threshold counts or accumulators, encoded in the output type

Pipelined with ``pipeline = k`` ≥ 1 (the default "auto" is
:data:`hwgen.dataflow.pipeline.DEFAULT_PIPELINE`)::

    S0  as above
    S1  weight ROM word, input word (fresh or buffered)
    R   operand registers (weight word, input word)       -> products
    P   product registers (XNOR bits for BIPOLAR × BIPOLAR)
    T…  adder tree, a register every k levels (:meth:`MVAUComponent.tree_splits`)
    S2  PE accumulators — the accumulator's adder is the last level of the
        last tree stage                  (+ threshold ROM word, read one stage
                                          earlier and registered)
    S3  threshold comparisons (registered bits)          — only with thresholds
    S4  output register: the thermometer code of the comparisons mapped to the
        output code directly (no adder), or the raw accumulator

The first output word is valid ``LATENCY`` cycles after the input handshake
of the ``SF``-th input word (3 unpipelined; :meth:`hwgen.dataflow.MVAU.latency`).
Steady state: exactly ``NF·SF`` cycles per pixel, with no bubble between
pixels or frames while the input has data and the output is ready.
"""

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from ..dataflow.mvau import MVAU
from ..dataflow.pipeline import pipeline_levels
from .common import (LayerComponent, Pipe, ThresholdParams, accumulate_and_output, implements, lane, memory_attrs,
                     pack_rows, pipelined_tree_sums, product, tree_sum)
from .rom import rom_read_port

__all__ = ["MVAUComponent"]


@implements(MVAU)
class MVAUComponent(ThresholdParams, LayerComponent):
    """Streaming matrix–vector–activation unit built from an IR :class:`~hwgen.dataflow.MVAU`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.MVAU`
        The layer (validated on construction).

    Members
    -------
    i : ``In(stream.Signature(unsigned(SIMD · idt.bits)))``
        Input elements, ``SIMD`` lanes per word.
    o : ``Out(stream.Signature(unsigned(PE · odt.bits)))``
        Output channels, ``PE`` lanes per word.
    """

    WHAT = "an MVAU"

    def tree_splits(self):
        """Adder-tree levels after which the dot products are registered (pipelined only;
        the layer's :meth:`~hwgen.dataflow.MVAU.tree_splits`)."""
        return self.layer.tree_splits()

    # -- parameters as ROM contents (numpy, fast for large layers) --------------
    def weight_rom(self):
        """ROM words, one per ``(nf, sf)`` at address ``nf·SF + sf``; lane ``p·SIMD + s``
        holds ``W[nf·PE + p, sf·SIMD + s]``."""
        L = self.layer
        PE, SIMD = L.pe, L.simd
        NF, SF = L.mh // PE, L.mw // SIMD
        codes = L.wdt.encode(np.asarray(L.weights, dtype=np.int64))    # (MH, MW)
        codes = codes.reshape(NF, PE, SF, SIMD).transpose(0, 2, 1, 3)   # (NF, SF, PE, SIMD)
        return pack_rows(codes.reshape(NF * SF, PE * SIMD), L.wdt.bits)

    # ---------------------------------------------------------------------------
    def elaborate(self, platform):
        L = self.layer
        m = Module()
        PE, SIMD = L.pe, L.simd
        NF, SF = L.mh // PE, L.mw // SIMD
        idt, wdt = L.idt, L.wdt
        acc_dt = L.acc_dt
        acc_shape = signed(acc_dt.bits) if acc_dt.signed else unsigned(acc_dt.bits)
        in_width = SIMD * idt.bits

        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)

        # -- S0: step counters --------------------------------------------------
        nf = Signal(range(NF))
        sf = Signal(range(SF))
        waddr = Signal(range(NF * SF))
        need_input = Signal()
        fire = Signal()
        take = Signal()
        m.d.comb += [
            need_input.eq(nf == 0),
            self.i.ready.eq(en & need_input),
            fire.eq(en & (~need_input | self.i.valid)),
            take.eq(fire & need_input),
        ]
        with m.If(fire):
            m.d.sync += waddr.eq(Mux(waddr == NF * SF - 1, 0, waddr + 1))
            with m.If(sf == SF - 1):
                m.d.sync += [sf.eq(0), nf.eq(Mux(nf == NF - 1, 0, nf + 1))]
            with m.Else():
                m.d.sync += sf.eq(sf + 1)

        wport = rom_read_port(m, self, "weights", width=PE * SIMD * wdt.bits, depth=NF * SF, init=self.weight_rom,
                              attrs=memory_attrs(L.mem_style, "rom"))
        m.d.comb += [wport.addr.eq(waddr), wport.en.eq(en)]

        # -- S1: weight word + input word ----------------------------------------
        v1 = Signal()
        s1_first = Signal()
        s1_last = Signal()
        s1_nf = Signal(range(NF))
        s1_fresh = Signal()
        s1_in = Signal(in_width)
        with m.If(en):
            m.d.sync += [
                v1.eq(fire),
                s1_first.eq(sf == 0),
                s1_last.eq(sf == SF - 1),
                s1_nf.eq(nf),
                s1_fresh.eq(need_input),
            ]
        with m.If(take):
            m.d.sync += s1_in.eq(self.i.payload)

        if NF > 1:
            ibuf = m.submodules.inbuf = Memory(shape=unsigned(in_width), depth=SF, init=[])
            ibuf_w = ibuf.write_port()
            ibuf_r = ibuf.read_port(domain="sync")
            m.d.comb += [
                ibuf_w.addr.eq(sf), ibuf_w.data.eq(self.i.payload), ibuf_w.en.eq(take),
                ibuf_r.addr.eq(sf), ibuf_r.en.eq(en),
            ]
            x_word = Signal(in_width)
            m.d.comb += x_word.eq(Mux(s1_fresh, s1_in, ibuf_r.data))
        else:
            x_word = s1_in

        w_word = wport.data
        k = pipeline_levels(L)
        xnor = L.xnor
        if k == 0:
            dots = []
            for p in range(PE):
                if xnor:
                    # XNOR-popcount: Σ ±1 = 2·#agree − SIMD
                    agree = ~(w_word[p * SIMD:(p + 1) * SIMD] ^ x_word)
                    dot = (tree_sum(list(agree)) << 1) - SIMD
                else:
                    dot = tree_sum([
                        product(lane(w_word, p * SIMD + s, wdt.bits), wdt, lane(x_word, s, idt.bits), idt)
                        for s in range(SIMD)])
                d = Signal(dot.shape(), name=f"dot{p}")
                m.d.comb += d.eq(dot)
                dots.append(d)
            ctrl = {"valid": v1, "first": s1_first, "last": s1_last, "nf": s1_nf}
            early = None
        else:
            # products registered, then the adder tree cut every k levels (the accumulator's
            # adder, and for XNOR-popcount the final 2·#agree − SIMD, count as levels)
            pipe = Pipe(m, en, valid=v1, first=s1_first, last=s1_last, nf=s1_nf)
            # operands registered first: a block RAM's clock-to-output takes most of a cycle
            w_word, x_word = pipe.register([w_word, x_word], name="opnd")
            if xnor:
                prods = [list(~(w_word[p * SIMD:(p + 1) * SIMD] ^ x_word)) for p in range(PE)]
            else:
                prods = [[product(lane(w_word, p * SIMD + s, wdt.bits), wdt, lane(x_word, s, idt.bits), idt)
                          for s in range(SIMD)] for p in range(PE)]
            flat = pipe.register([v for vec in prods for v in vec], name="prod")
            prods = [flat[p * SIMD:(p + 1) * SIMD] for p in range(PE)]
            sums = pipelined_tree_sums(pipe, prods, self.tree_splits(), name="sum")
            if xnor:
                sums = [(t << 1) - SIMD for t in sums]
            dots = []
            for p, t in enumerate(sums):
                d = Signal(t.shape(), name=f"dot{p}")
                m.d.comb += d.eq(t)
                dots.append(d)
            ctrl, e = pipe.ctrl, pipe.history[-2]
            early = (e["valid"], e["last"], e["nf"])

        # -- accumulators, thresholds / output register ----------------------------------------
        accumulate_and_output(m, self, en=en, valid=ctrl["valid"], first=ctrl["first"], last=ctrl["last"],
                              addr=ctrl["nf"], depth=NF, terms=dots, acc_shape=acc_shape, early=early)

        return m
