"""Hardware of the pooling layers: Pool (windowed) and GlobalPool (whole feature map).

Both reduce ``PE`` lanes independently with ``max`` or ``sum`` on the decoded
integer values; the reduction is held in the type
:func:`hwgen.dataflow.pool.pool_dtype` (the input type for ``max``, the
smallest type of ``n`` summed inputs for ``sum``) and the result is encoded in
the layer's output type (which may be wider).

* :class:`PoolComponent` consumes depthwise window words (per pixel, for each
  of the ``C/PE`` channel groups, ``K`` words of ``PE`` lanes) and emits one
  word per group. One register per lane; the reduction of a group's first
  ``K−1`` words is kept in it, and the ``K``-th word goes straight into the
  output register. One word per cycle: ``pixels·(C/PE)·K`` cycles per frame;
  the output word is valid 1 cycle after the handshake of its ``K``-th word.

* :class:`GlobalPoolComponent` consumes a feature map ``(H, W, C)``
  channels-last (per pixel ``G = C/PE`` words) and emits ``G`` words of
  ``PE`` per-channel maxima or sums. Group ``g``'s partial result lives in
  word ``g`` of a small memory (a register when ``G == 1``), read one cycle
  ahead and written back as the next word of that group cannot arrive before
  it (``G ≥ 2``). During the last pixel every input word completes a group and
  its output word follows 2 cycles after the handshake, so the next frame's
  input streams on with no pause: ``H·W·C/PE`` cycles per frame.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..dataflow.pool import GlobalPool, Pool, pool_dtype
from .common import check_layer, implements, decode_lane, encode_value, lane, stream_signature, value_shape

__all__ = ["PoolComponent", "GlobalPoolComponent"]


def _reduce(mode, acc, x):
    """max or sum of two Amaranth values."""
    if mode == "max":
        return Mux(x > acc, x, acc)
    return acc + x


class _PoolBase(wiring.Component):
    def __init__(self, layer, cls, what):
        check_layer(self, layer, cls, what)
        self.layer = layer
        super().__init__({
            "i": In(stream_signature(layer.in_lanes, layer.idt)),
            "o": Out(stream_signature(layer.out_lanes, layer.odt)),
        })

    @property
    def acc_dtype(self):
        """Type of the running reduction (:func:`~hwgen.dataflow.pool.pool_dtype`)."""
        L = self.layer
        return pool_dtype(L.mode, L.idt, L._n)


@implements(Pool)
class PoolComponent(_PoolBase):
    """Streaming window reduction (max or sum) built from an IR :class:`~hwgen.dataflow.Pool`.

    Members
    -------
    i : ``In(stream.Signature(unsigned(PE · idt.bits)))``
        Depthwise window words, ``PE`` channels of one kernel position.
    o : ``Out(stream.Signature(unsigned(PE · odt.bits)))``
    """

    def __init__(self, layer):
        super().__init__(layer, Pool, "a Pool")

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        PE, K = L.pe, L.kernel_elems
        idt, odt = L.idt, L.odt
        shape = value_shape(self.acc_dtype)

        en, take = Signal(), Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
            take.eq(en & self.i.valid),
        ]
        k = Signal(range(K))
        first, last = Signal(), Signal()
        m.d.comb += [first.eq(k == 0), last.eq(k == K - 1)]
        with m.If(take):
            m.d.sync += k.eq(Mux(last, 0, k + 1))

        codes = []
        for p in range(PE):
            x = decode_lane(lane(self.i.payload, p, idt.bits), idt)
            acc = Signal(shape, name=f"acc{p}")
            red = Signal(shape, name=f"red{p}")
            m.d.comb += red.eq(Mux(first, x, _reduce(L.mode, acc, x)))
            with m.If(take):
                m.d.sync += acc.eq(red)
            codes.append(encode_value(m, red, odt, name=f"y{p}"))

        with m.If(en):
            m.d.sync += self.o.valid.eq(take & last)
        with m.If(take & last):
            m.d.sync += self.o.payload.eq(Cat(*codes))
        return m


@implements(GlobalPool)
class GlobalPoolComponent(_PoolBase):
    """Streaming global reduction (max or sum over H·W) built from an IR
    :class:`~hwgen.dataflow.GlobalPool`.

    Members
    -------
    i : ``In(stream.Signature(unsigned(PE · idt.bits)))``
        Feature map, channels-last, ``PE`` channels per word.
    o : ``Out(stream.Signature(unsigned(PE · odt.bits)))``
        ``C/PE`` words of ``PE`` per-channel results.
    """

    def __init__(self, layer):
        super().__init__(layer, GlobalPool, "a GlobalPool")

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        PE = L.pe
        G = L.channels // PE
        N = L._n                                    # pixels per frame
        idt, odt = L.idt, L.odt
        adt = self.acc_dtype
        shape = value_shape(adt)
        aw = shape.width

        en, take = Signal(), Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
            take.eq(en & self.i.valid),
        ]

        # -- S0: group and pixel counters -----------------------------------------------------
        g = Signal(range(G))
        n = Signal(range(N))
        with m.If(take):
            m.d.sync += g.eq(Mux(g == G - 1, 0, g + 1))
            with m.If(g == G - 1):
                m.d.sync += n.eq(Mux(n == N - 1, 0, n + 1))

        # -- S1: input word, stored partial result of its group -> new partial result -----------
        v1, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_g = Signal(range(G))
        s1_in = Signal(PE * idt.bits)
        with m.If(en):
            m.d.sync += [v1.eq(take), s1_first.eq(n == 0), s1_last.eq(n == N - 1), s1_g.eq(g)]
        with m.If(take):
            m.d.sync += s1_in.eq(self.i.payload)

        new = Signal(PE * aw)
        if G > 1:
            mem = m.submodules.partial = Memory(shape=unsigned(PE * aw), depth=G, init=[])
            rport = mem.read_port(domain="sync")
            wport = mem.write_port()
            m.d.comb += [
                rport.addr.eq(g), rport.en.eq(en),
                wport.addr.eq(s1_g), wport.data.eq(new), wport.en.eq(en & v1),
            ]
            old = rport.data
        else:
            old = Signal(PE * aw)
            with m.If(en & v1):
                m.d.sync += old.eq(new)

        codes, lanes = [], []
        for p in range(PE):
            x = decode_lane(lane(s1_in, p, idt.bits), idt)
            acc = lane(old, p, aw).as_signed() if shape.signed else lane(old, p, aw)
            red = Signal(shape, name=f"red{p}")
            m.d.comb += red.eq(Mux(s1_first, x, _reduce(L.mode, acc, x)))
            lanes.append(red.as_unsigned())
            codes.append(encode_value(m, red, odt, name=f"y{p}"))
        m.d.comb += new.eq(Cat(*lanes))

        # -- S2: output register (last pixel only) -------------------------------------------------
        with m.If(en):
            m.d.sync += self.o.valid.eq(v1 & s1_last)
        with m.If(en & v1 & s1_last):
            m.d.sync += self.o.payload.eq(Cat(*codes))
        return m
