"""Hardware of the LabelSelect layer: indices of the ``k`` largest of ``C`` values.

The frame streams in as ``G = C/PE`` words of ``PE`` lanes; lane ``p`` of word
``g`` is value ``g·PE + p``. Each lane keeps its own sorted list of its
``L = min(k, G)`` largest values with their indices (register entries: valid,
value, index; largest first, equal values in arrival order, i.e. lower index
first). A word inserts each lane's value into that lane's list (one
comparator per entry, one insertion per lane and cycle: no chain across
lanes). The word that completes a frame writes the updated lists into a
second set of registers, the *drain* lists, which the output side empties
while the next frame streams in: each output word is the head with the
largest value over the ``PE`` drain lists (ties: lower index), found by a
comparator tree, and that head is popped. ``k`` output words per frame of one
lane of ``odt`` bits (largest first), exactly ``LabelSelect.execute``.

The last word of a frame waits (``i.ready`` low) only while the previous
frame's drain lists still have more than one word to send (the last one may
leave in the same cycle), so a frame takes ``max(C/PE, k)`` cycles
(``LabelSelect.cycles()``). The first output word of a frame is valid 2
cycles after the handshake of its last input word; the ``k`` words follow
back to back while the output is ready.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..dataflow.labelselect import LabelSelect
from .common import check_layer, implements, decode_lane, lane, stream_signature, value_shape

__all__ = ["LabelSelectComponent"]


class _Entry:
    """A list entry: ``valid``, ``value``, ``index`` signals (or expressions)."""

    def __init__(self, valid, value, index):
        self.valid, self.value, self.index = valid, value, index

    @classmethod
    def signals(cls, vshape, ibits, name):
        return cls(Signal(name=f"{name}_v"), Signal(vshape, name=f"{name}_x"),
                   Signal(ibits, name=f"{name}_i"))

    def eq(self, other):
        return [self.valid.eq(other.valid), self.value.eq(other.value), self.index.eq(other.index)]

    @staticmethod
    def mux(c, a, b):
        """``a`` if ``c`` else ``b`` (field by field)."""
        return _Entry(Mux(c, a.valid, b.valid), Mux(c, a.value, b.value), Mux(c, a.index, b.index))


@implements(LabelSelect)
class LabelSelectComponent(wiring.Component):
    """Streaming top-k index unit built from an IR :class:`~hwgen.dataflow.LabelSelect`.

    Members
    -------
    i : ``In(stream.Signature(unsigned(PE · in_dt.bits)))``
        ``C`` values per frame, ``PE`` lanes per word.
    o : ``Out(stream.Signature(unsigned(odt.bits)))``
        ``k`` indices per frame, one per word, largest value first.
    """

    def __init__(self, layer):
        check_layer(self, layer, LabelSelect, "a LabelSelect")
        self.layer = layer
        super().__init__({
            "i": In(stream_signature(layer.in_lanes, layer.idt)),
            "o": Out(stream_signature(layer.out_lanes, layer.odt)),
        })

    def elaborate(self, platform):
        Ly = self.layer
        m = Module()
        C, K, PE = Ly.channels, Ly.k, Ly.pe
        G = C // PE
        L = min(K, G)                       # entries per lane list
        idt = Ly.idt
        ib = Ly.odt.bits
        vshape = value_shape(idt)
        i, o = self.i, self.o

        # -- input side -------------------------------------------------------------------------
        base = Signal(range(C))             # index of lane 0 of the current word: g·PE
        first, last = Signal(), Signal()
        remaining = Signal(range(K + 1))    # words of the drain lists still to send
        en_out, pop, drain_free, take, xfer = Signal(), Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            first.eq(base == 0),
            last.eq(base == C - PE),
            en_out.eq(~o.valid | o.ready),
            pop.eq(en_out & (remaining != 0)),
            drain_free.eq((remaining == 0) | ((remaining == 1) & en_out)),
            i.ready.eq(~last | drain_free),
            take.eq(i.valid & i.ready),
            xfer.eq(take & last),
        ]
        with m.If(take):
            m.d.sync += base.eq(Mux(last, 0, base + PE))

        lists, drains, inserted = [], [], []
        for p in range(PE):
            x = Signal(vshape, name=f"x{p}")
            m.d.comb += x.eq(decode_lane(lane(i.payload, p, idt.bits), idt))
            idx = Signal(ib, name=f"idx{p}")
            m.d.comb += idx.eq(base + p)
            new = _Entry(Const(1), x, idx)
            if G > 1:
                cur = [_Entry.signals(vshape, ib, f"list{p}_{j}") for j in range(L)]
                # at the first word of a frame the list starts empty
                old = [_Entry(cur[j].valid & ~first, cur[j].value, cur[j].index) for j in range(L)]
            else:
                cur, old = [], [_Entry(Const(0), Const(0, vshape), Const(0, ib)) for _ in range(L)]
            # entries that stay ahead of x: valid and >= x (a prefix of the sorted list)
            ahead = [Signal(name=f"ahead{p}_{j}") for j in range(L)]
            for j in range(L):
                m.d.comb += ahead[j].eq(old[j].valid & (old[j].value >= x))
            nxt = []
            for j in range(L):
                e = _Entry.signals(vshape, ib, f"ins{p}_{j}")
                behind = new if j == 0 else _Entry.mux(ahead[j - 1], new, old[j - 1])
                m.d.comb += e.eq(_Entry.mux(ahead[j], old[j], behind))
                nxt.append(e)
            with m.If(take & ~last):
                for c, e in zip(cur, nxt):
                    m.d.sync += c.eq(e)
            lists.append(cur)
            inserted.append(nxt)
            drains.append([_Entry.signals(vshape, ib, f"drain{p}_{j}") for j in range(L)])

        # -- output side: the largest head over the drain lists ----------------------------------
        nodes = [(_Entry(d[0].valid, d[0].value, d[0].index), p) for p, d in enumerate(drains)]
        level = 0
        while len(nodes) > 1:
            nxt_nodes = []
            for n in range(0, len(nodes) - 1, 2):
                (a, pa), (b, pb) = nodes[n], nodes[n + 1]
                # b wins over a: valid and larger, or equal with a lower index
                bwins = Signal(name=f"bwins{level}_{n // 2}")
                m.d.comb += bwins.eq(b.valid & (~a.valid | (b.value > a.value) |
                                                ((b.value == a.value) & (b.index < a.index))))
                w = _Entry.signals(vshape, ib, f"best{level}_{n // 2}")
                m.d.comb += w.eq(_Entry.mux(bwins, b, a))
                lane_sig = Signal(range(PE), name=f"bestlane{level}_{n // 2}")
                m.d.comb += lane_sig.eq(Mux(bwins, pb, pa))
                nxt_nodes.append((w, lane_sig))
            if len(nodes) % 2:
                nxt_nodes.append(nodes[-1])
            nodes, level = nxt_nodes, level + 1
        best, best_lane = nodes[0]
        best_lane = Const(best_lane, range(PE)) if isinstance(best_lane, int) else best_lane

        for p, d in enumerate(drains):
            with m.If(xfer):
                for c, e in zip(d, inserted[p]):
                    m.d.sync += c.eq(e)
            with m.Elif(pop & (best_lane == p)):
                for j in range(L):
                    m.d.sync += d[j].eq(d[j + 1] if j + 1 < L else _Entry(Const(0), d[j].value, d[j].index))

        with m.If(xfer):
            m.d.sync += remaining.eq(K)
        with m.Elif(pop):
            m.d.sync += remaining.eq(remaining - 1)

        with m.If(en_out):
            m.d.sync += o.valid.eq(remaining != 0)
        with m.If(pop):
            m.d.sync += o.payload.eq(best.index)
        return m

