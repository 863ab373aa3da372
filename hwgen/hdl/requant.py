"""Hardware of the Requant layer: exact per-channel fixed-point requantisation.

Each word carries ``PE`` channels of one pixel; a channel-group counter cycles
through ``G = C/PE`` groups per pixel. Output lane ``p`` of group ``g``
(channel ``c = g·PE + p``) is ::

    y = clip(floor((x·M[c] + B[c]) / 2^S), lo, hi)

encoded in the output type. Every datapath width is exact: the product, the
sum and the shifted sum are sized per lane from the ranges they take over all
values of the input type (``x·M`` and ``x·M + B`` are linear in ``x``, so the
ends of the input range bound them), so nothing that can occur is truncated.
A lane whose ``M`` (or ``B``) is the same in every channel group uses a
constant; the others are read from a ROM word per channel group (no ROM when
every lane is constant, e.g. ``C == PE``).

Pipeline (advancing together when ``en = ~o.valid | o.ready``), with
``pipeline="none"`` (0)::

    S0  input handshake, ROM address = channel group
    S1  input word + ROM word (M, B)         -> products x·M
    S2  products + biases                    -> add, arithmetic shift by S, clip, encode
    S3  output register

Pipelined (``pipeline`` ≥ 1, the default "auto"), the input and ROM words are
registered after S1 (R) before the products, and the sums after S2 (S) before
the shift, clip and encoding.

One word per cycle; the first output word is valid ``LATENCY`` cycles after
the first input handshake: 3 unpipelined, 5 pipelined (:meth:`hwgen.dataflow.Requant.latency`).
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal

from ..dataflow.requant import Requant
from ..dtypes import smallest_dtype
from ..dataflow.pipeline import pipeline_levels
from .common import LayerComponent, Pipe, decode_lane, encode_value, implements, lane, memory_attrs, value_shape
from .rom import rom_read_port

__all__ = ["RequantComponent"]


def _range(values):
    values = [int(v) for v in values]
    return min(values), max(values)


@implements(Requant)
class RequantComponent(LayerComponent):
    """Streaming fixed-point requantiser built from an IR :class:`~hwgen.dataflow.Requant`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.Requant`
        The layer (validated on construction).

    Members
    -------
    i : ``In(stream.Signature(unsigned(PE · idt.bits)))``
    o : ``Out(stream.Signature(unsigned(PE · odt.bits)))``
    """

    WHAT = "a Requant"

    # -- per-lane parameters and exact widths (plain Python ints) ----------------
    def lane_params(self):
        """One dict per lane ``p``: ``mult``/``bias`` (lists over the channel groups of
        the channels ``g·PE + p``), their types, the ranges of ``x·M``, ``x·M + B`` and
        of the shifted sum, and whether ``M``/``B`` are constant over the groups."""
        L = self.layer
        PE, G = L.pe, L.channels // L.pe
        M = [int(v) for v in np.asarray(L.mult).ravel()]
        B = [int(v) for v in np.asarray(L.bias).ravel()]
        xl, xh = L.idt.min, L.idt.max
        lanes = []
        for p in range(PE):
            mult = [M[g * PE + p] for g in range(G)]
            bias = [B[g * PE + p] for g in range(G)]
            prod = _range([m * xl for m in mult] + [m * xh for m in mult])
            acc = _range([m * xl + b for m, b in zip(mult, bias)] + [m * xh + b for m, b in zip(mult, bias)])
            lanes.append({
                "mult": mult, "bias": bias,
                "mdt": smallest_dtype(*_range(mult)), "bdt": smallest_dtype(*_range(bias)),
                "pdt": smallest_dtype(*prod), "sdt": smallest_dtype(*acc),
                "q": (acc[0] >> L.shift, acc[1] >> L.shift),
                "mconst": len(set(mult)) == 1, "bconst": len(set(bias)) == 1,
            })
        return lanes

    def rom_fields(self):
        """``(kind, lane, dtype, offset)`` of every ROM field (``kind`` ``"mult"`` or
        ``"bias"``), in bit order, and the ROM word width."""
        fields, offset = [], 0
        for kind in ("mult", "bias"):
            for p, lp in enumerate(self.lane_params()):
                if not lp[kind[0] + "const"]:
                    dt = lp[kind[0] + "dt"]
                    fields.append((kind, p, dt, offset))
                    offset += dt.bits
        return fields, offset

    def rom(self):
        """ROM words, one per channel group ``g``: field ``(kind, p)`` holds the code of
        ``M[g·PE + p]`` or ``B[g·PE + p]`` in its type."""
        lanes = self.lane_params()
        fields, _ = self.rom_fields()
        G = self.layer.channels // self.layer.pe
        words = []
        for g in range(G):
            word = 0
            for kind, p, dt, offset in fields:
                word |= int(dt.encode(lanes[p][kind][g])) << offset
            words.append(word)
        return words

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        PE, G, S = L.pe, L.channels // L.pe, int(L.shift)
        idt, odt = L.idt, L.odt
        lanes = self.lane_params()
        fields, rom_width = self.rom_fields()

        en = Signal()
        take = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
            take.eq(en & self.i.valid),
        ]

        # -- S0: channel group counter, parameter ROM read -------------------------------
        rom_data = None
        if fields:
            group = Signal(range(G))
            with m.If(take):
                m.d.sync += group.eq(Mux(group == G - 1, 0, group + 1))
            pport = rom_read_port(m, self, "params", width=rom_width, depth=G, init=self.rom,
                                  attrs=memory_attrs(getattr(L, "mem_style", "auto"), "rom"))
            m.d.comb += [pport.addr.eq(group), pport.en.eq(take)]
            rom_data = pport.data

        def param(kind, p):
            """``M``/``B`` of lane ``p`` in the current group: a constant or a ROM field."""
            lp = lanes[p]
            dt = lp[kind[0] + "dt"]
            if lp[kind[0] + "const"]:
                return Const(lp[kind][0], value_shape(dt))
            (offset,) = [o for k, q, _, o in fields if k == kind and q == p]
            return decode_lane(rom_data[offset:offset + dt.bits], dt)

        # -- S1: input word; products x·M --------------------------------------------
        v1 = Signal()
        s1_in = Signal(PE * idt.bits)
        with m.If(en):
            m.d.sync += v1.eq(self.i.valid)
        with m.If(take):
            m.d.sync += s1_in.eq(self.i.payload)

        k = pipeline_levels(L)
        if k:
            # R: the input word and the ROM word registered (a block RAM's clock-to-output)
            pipe = Pipe(m, en, valid=v1)
            regs = pipe.register([s1_in] + ([rom_data] if rom_data is not None else []), name="opnd")
            s1_in, v1 = regs[0], pipe["valid"]
            if rom_data is not None:
                rom_data = regs[1]

        # -- S2: products and ROM biases ------------------------------------------------
        v2 = Signal()
        with m.If(en):
            m.d.sync += v2.eq(v1)
        if k:
            # S: the sums registered
            v_s = Signal()
            with m.If(en):
                m.d.sync += v_s.eq(v2)
        codes = []
        for p in range(PE):
            lp = lanes[p]
            x = decode_lane(lane(s1_in, p, idt.bits), idt)
            prod = Signal(value_shape(lp["pdt"]), name=f"prod{p}")
            with m.If(en & v1):
                m.d.sync += prod.eq(x * param("mult", p))     # exact: x·M lies in pdt's range
            if lp["bconst"]:
                bias = param("bias", p)
            else:
                bias = Signal(value_shape(lp["bdt"]), name=f"bias{p}")
                with m.If(en & v1):
                    m.d.sync += bias.eq(param("bias", p))

            # add (exact in sdt), floor shift, clip (only the ends that can be reached)
            acc = Signal(value_shape(lp["sdt"]), name=f"acc{p}")
            if k:
                with m.If(en & v2):
                    m.d.sync += acc.eq(prod + bias)
            else:
                m.d.comb += acc.eq(prod + bias)
            q = acc.shift_right(S) if S else acc
            qlo, qhi = lp["q"]
            y = q
            if qhi > L.hi:
                y = Mux(q > L.hi, L.hi, y)
            if qlo < L.lo:
                y = Mux(q < L.lo, L.lo, y)
            codes.append(encode_value(m, y, odt, name=f"y{p}"))

        # -- S3: output register --------------------------------------------------------
        v_out = v_s if k else v2
        with m.If(en):
            m.d.sync += self.o.valid.eq(v_out)
        with m.If(en & v_out):
            m.d.sync += self.o.payload.eq(Cat(*codes))

        return m
