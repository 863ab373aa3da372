"""Hardware of the branching kinds: Duplicate (fork), AddStreams (join + add), Concat.

* :class:`DuplicateComponent` broadcasts input ``i`` to outputs ``o0 … o{n−1}``.
  Each output has an "already taken" flag: output ``k`` offers the current
  input word (``o_k.valid = i.valid & ~taken_k``) until it has taken it, and
  the input word is released (``i.ready``) once every output has taken it or
  takes it now. A slow consumer does not make a fast one wait within a word,
  and with every output ready a word passes each cycle. Purely combinational
  data path (latency 0, no storage but the ``n`` flags); ``valid`` never
  depends on ``ready``.

* :class:`AddStreamsComponent` joins ``i0`` (``a``, ``in_dt``) and ``i1``
  (``b``, ``in_dt_b``), both ``PE`` lanes, and computes per lane
  ``acc = ka·a + kb·b``, then thresholds exactly as the MVAU
  (``out_base + out_step·Σ_i [acc ≥ T[c, i]]``, channel group counter cycling
  over ``C/PE`` groups per pixel) or encodes the raw ``acc`` in ``out_dt``.
  A word pair is taken when both inputs are valid and stage S1 is free::

      S0  join handshake, threshold ROM address = channel group
      S1  input words + threshold ROM word  -> ka·a + kb·b, comparators, counts
      S2  output register

  S1 takes a word pair whenever it is empty, even while the output is
  stalled, so both stages hold data during a stall (no bubble reaches a
  consumer that then reads a burst, e.g. an MVAU starting a pixel). One word
  per cycle; the output word is valid 2 cycles after its input handshake
  with ``pipeline="none"``. Pipelined (``pipeline`` ≥ 1, the default
  "auto"), S1 only adds; the sums and the threshold ROM word are registered
  (A), the comparison bits are registered (C, with thresholds only), and the
  output register takes the code of each lane's count straight from the
  thermometer code (no adder): ``LATENCY`` 3 raw, 4 thresholded
  (:meth:`hwgen.dataflow.AddStreams.latency`). Every stage
  moves on when it is empty or the next one does, so bubbles collapse while
  the output is stalled, as S1's do unpipelined.

* :class:`ConcatComponent` reads, per pixel, ``channels_in[0]/lanes`` words
  from ``i0``, then ``channels_in[1]/lanes`` from ``i1``, … and emits them in
  that order through an output register: one word per cycle, the output word
  valid 1 cycle after its input handshake.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..dataflow.branch import AddStreams, Concat, Duplicate
from ..dataflow.pipeline import pipeline_levels
from .common import (ThresholdParams, check_layer, decode_lane, encode_value, implements, lane, scaled, select,
                     stream_signature, thermometer_encode, threshold_count, value_shape)
from .rom import rom_read_port

__all__ = ["DuplicateComponent", "AddStreamsComponent", "ConcatComponent"]


@implements(Duplicate)
class DuplicateComponent(wiring.Component):
    """Stream fork built from an IR :class:`~hwgen.dataflow.Duplicate`.

    Members
    -------
    i : ``In(stream.Signature(unsigned(lanes · bits)))``
    o0 … o{n−1} : ``Out(stream.Signature(unsigned(lanes · bits)))``
        Copies of the input stream.
    """

    def __init__(self, layer):
        check_layer(self, layer, Duplicate, "a Duplicate")
        self.layer = layer
        sig = stream_signature(layer.lanes, layer.dt)
        members = {"i": In(sig)}
        for k in range(layer.n_out):
            members[f"o{k}"] = Out(sig)
        super().__init__(members)

    @property
    def outputs(self):
        """The output streams ``[o0, o1, …]``."""
        return [getattr(self, f"o{k}") for k in range(self.layer.n_out)]

    def elaborate(self, platform):
        m = Module()
        outs = self.outputs
        n = len(outs)
        taken = [Signal(name=f"taken{k}") for k in range(n)]
        # output k has the current word, or takes it this cycle
        done = [Signal(name=f"done{k}") for k in range(n)]
        take = Signal()
        for k, o in enumerate(outs):
            m.d.comb += [
                o.payload.eq(self.i.payload),
                o.valid.eq(self.i.valid & ~taken[k]),
                done[k].eq(taken[k] | o.ready),
            ]
        m.d.comb += [
            self.i.ready.eq(Cat(*done).all()),
            take.eq(self.i.valid & self.i.ready),
        ]
        for k, o in enumerate(outs):
            with m.If(take):
                m.d.sync += taken[k].eq(0)
            with m.Elif(o.valid & o.ready):
                m.d.sync += taken[k].eq(1)
        return m


@implements(AddStreams)
class AddStreamsComponent(ThresholdParams, wiring.Component):
    """Element-wise ``ka·a + kb·b`` of two streams (+ thresholds) built from an IR
    :class:`~hwgen.dataflow.AddStreams`.

    Members
    -------
    i0 : ``In(stream.Signature(unsigned(PE · in_dt.bits)))``
        Input ``a``.
    i1 : ``In(stream.Signature(unsigned(PE · in_dt_b.bits)))``
        Input ``b``.
    o : ``Out(stream.Signature(unsigned(PE · out_dt.bits)))``
    """

    def __init__(self, layer):
        check_layer(self, layer, AddStreams, "an AddStreams")
        self.layer = layer
        #: Cycles from the input handshakes to the output word being valid (``layer.latency()``).
        self.LATENCY = layer.latency()
        super().__init__({
            "i0": In(stream_signature(layer.pe, layer.in_dt)),
            "i1": In(stream_signature(layer.pe, layer.in_dt_b)),
            "o": Out(stream_signature(layer.pe, layer.out_dt)),
        })

    @property
    def inputs(self):
        return [self.i0, self.i1]

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        PE = L.pe
        G = L.channels // PE
        adt, bdt, odt = L.in_dt, L.in_dt_b, L.out_dt
        acc_shape = value_shape(L.acc_dt)
        i0, i1, o = self.i0, self.i1, self.o

        # en: the output register advances; en1: stage S1 takes a word pair (it is empty
        # or moves on), so a bubble in S1 is filled while the output is stalled
        en, en1, take = Signal(), Signal(), Signal()
        v1 = Signal()
        thresholded = L.thresholds is not None
        pipelined = bool(pipeline_levels(L))
        if pipelined:
            # stages A (sums) and C (comparisons, with thresholds only) after S1: each moves
            # on when it is empty or the next one does, so bubbles collapse during a stall too
            vA, enA, vC, enC = Signal(), Signal(), Signal(), Signal()
            if thresholded:
                m.d.comb += [enC.eq(~vC | en), enA.eq(~vA | enC)]
            else:
                m.d.comb += enA.eq(~vA | en)
        m.d.comb += [
            en.eq(~o.valid | o.ready),
            en1.eq(~v1 | (enA if pipelined else en)),
            i0.ready.eq(en1 & i1.valid),
            i1.ready.eq(en1 & i0.valid),
            take.eq(en1 & i0.valid & i1.valid),
        ]

        # -- S0: channel group counter, threshold ROM read -------------------------------------
        group = Signal(range(G))
        with m.If(take):
            m.d.sync += group.eq(Mux(group == G - 1, 0, group + 1))

        N = L.n_thresholds
        if thresholded and N:
            tdt = self.threshold_type()
            tport = rom_read_port(m, self, "thresholds", width=PE * N * tdt.bits, depth=G, init=self.threshold_rom)
            m.d.comb += [tport.addr.eq(group), tport.en.eq(take)]

        # -- S1: input words -> sums -> counts --------------------------------------------------
        s1_a = Signal(PE * adt.bits)
        s1_b = Signal(PE * bdt.bits)
        with m.If(en1):
            m.d.sync += v1.eq(take)
        with m.If(take):
            m.d.sync += [s1_a.eq(i0.payload), s1_b.eq(i1.payload)]

        if pipelined:
            # S1 -> A: sums (and the threshold ROM word) registered; C: comparison bits;
            # then the output code straight from the thermometer code
            accs = [Signal(acc_shape, name=f"acc{p}") for p in range(PE)]
            with m.If(enA):
                m.d.sync += vA.eq(v1)
                for p, acc in enumerate(accs):
                    m.d.sync += acc.eq(scaled(decode_lane(lane(s1_a, p, adt.bits), adt), L.ka) +
                                       scaled(decode_lane(lane(s1_b, p, bdt.bits), bdt), L.kb))
            v_out = vA
            if thresholded:
                if N:
                    tword = Signal(PE * N * tdt.bits, name="thr_word")
                    with m.If(enA):
                        m.d.sync += tword.eq(tport.data)
                codes = []
                for p, acc in enumerate(accs):
                    bits = Signal(N, name=f"ge{p}")
                    if N:
                        with m.If(enC):
                            m.d.sync += bits.eq(Cat(*[acc >= decode_lane(lane(tword, p * N + k, tdt.bits), tdt)
                                                      for k in range(N)]))
                    codes.append(thermometer_encode(bits, [L.out_base + L.out_step * c for c in range(N + 1)],
                                                    odt))
                with m.If(enC):
                    m.d.sync += vC.eq(vA)
                v_out = vC
            else:
                codes = [encode_value(m, acc, odt, name=f"y{p}") for p, acc in enumerate(accs)]
            with m.If(en):
                m.d.sync += o.valid.eq(v_out)
            with m.If(en & v_out):
                m.d.sync += o.payload.eq(Cat(*codes))
            return m

        codes = []
        for p in range(PE):
            a = decode_lane(lane(s1_a, p, adt.bits), adt)
            b = decode_lane(lane(s1_b, p, bdt.bits), bdt)
            acc = Signal(acc_shape, name=f"acc{p}")
            m.d.comb += acc.eq(scaled(a, L.ka) + scaled(b, L.kb))
            if thresholded:
                thr = [decode_lane(lane(tport.data, p * N + k, tdt.bits), tdt) for k in range(N)]
                count = threshold_count(m, acc, thr, name=f"count{p}")
                codes.append(encode_value(m, L.out_base + L.out_step * count, odt, name=f"y{p}"))
            else:
                codes.append(encode_value(m, acc, odt, name=f"y{p}"))

        # -- S2: output register --------------------------------------------------------------------
        with m.If(en):
            m.d.sync += o.valid.eq(v1)
        with m.If(en & v1):
            m.d.sync += o.payload.eq(Cat(*codes))
        return m


@implements(Concat)
class ConcatComponent(wiring.Component):
    """Channel concatenation of ``k`` streams built from an IR :class:`~hwgen.dataflow.Concat`.

    Members
    -------
    i0 … i{k−1} : ``In(stream.Signature(unsigned(lanes · bits)))``
        Input ``j`` carries ``channels_in[j]`` channels per pixel.
    o : ``Out(stream.Signature(unsigned(lanes · bits)))``
    """

    def __init__(self, layer):
        check_layer(self, layer, Concat, "a Concat")
        self.layer = layer
        sig = stream_signature(layer.lanes, layer.dt)
        members = {f"i{j}": In(sig) for j in range(len(layer.channels_in))}
        members["o"] = Out(sig)
        super().__init__(members)

    @property
    def inputs(self):
        """The input streams ``[i0, i1, …]``."""
        return [getattr(self, f"i{j}") for j in range(len(self.layer.channels_in))]

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        ins, o = self.inputs, self.o
        n = len(ins)
        words = [c // L.lanes for c in L.channels_in]      # words per pixel from each input

        sel = Signal(range(n))                  # input being read
        cnt = Signal(range(max(words)))         # word within its segment of the pixel
        seg_last = Signal()
        en, valid, take = Signal(), Signal(), Signal()
        m.d.comb += [
            seg_last.eq(select(sel, [cnt == w - 1 for w in words])),
            en.eq(~o.valid | o.ready),
            valid.eq(select(sel, [s.valid for s in ins])),
            take.eq(en & valid),
        ]
        for j, s in enumerate(ins):
            m.d.comb += s.ready.eq(en & (sel == j))

        with m.If(take):
            with m.If(seg_last):
                m.d.sync += [cnt.eq(0), sel.eq(Mux(sel == n - 1, 0, sel + 1))]
            with m.Else():
                m.d.sync += cnt.eq(cnt + 1)

        with m.If(en):
            m.d.sync += o.valid.eq(valid)
        with m.If(take):
            m.d.sync += o.payload.eq(select(sel, [s.payload for s in ins]))
        return m
