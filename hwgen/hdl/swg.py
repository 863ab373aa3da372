"""Hardware of the SlidingWindow layer: an im2col generator with a circular line buffer.

Geometry: input ``(IH, IW, C)`` in words of ``SIMD`` lanes (``CF = C/SIMD``
words per pixel); output, per output pixel ``(oy, ox)``, the ``KH·KW·CF`` words
of its window in the order ``(kh, kw, cf)`` or, with ``depthwise``,
``(cf, kh, kw)``; out-of-image positions are the pad value and read no memory.

Two independent processes share one simple dual-port memory of ``R`` rows of
``IW·CF`` words (input rows only, no padding stored; ``R`` from
:func:`buffer_rows`):

* the **writer** stores every input word at the next address of the circular
  buffer (rows of consecutive frames follow each other, so global row ``g``
  sits in slot ``g mod R``);
* the **reader** walks ``(oy, ox, kh, kw, cf)`` (or the depthwise order),
  keeps the address of the current row and column incrementally (no
  multiplier) and issues one word per cycle: a pad word, or a memory read.

Both are coupled by one counter ``D`` = rows completely written − ``need``,
where ``need`` is the first input row the current output row still uses
(``max(0, oy·SH − PT)``, rows of consecutive frames counted on): the writer
runs while ``D < R`` (the slot it writes holds a row below ``need``); the
reader issues the word of input row ``iy`` when it is a pad position, or
``iy − need < D``, or ``iy`` is the row being written and the word's column
index is below the writer's. When the reader completes an output row,
``need`` advances (by ``SH``, less near the top padding, and to the next
frame's first row after the last output row) and ``D`` drops by as much. The
reader never waits for a whole row or frame: it emits windows of a row as
soon as their words have arrived, while the writer already fills the rows of
the next output row, or of the next frame.

Pipeline (output side advances when ``en = ~o.valid | o.ready``), with
``pipeline="none"`` (0)::

    S0  reader counters, address, availability        -> memory read (none for a pad)
    S1  o.valid register; o.payload = the memory's read register, or the pad word

Pipelined (``pipeline`` ≥ 1, the default "auto"), the read address (row
address + column index, an adder) is registered first::

    S0  reader counters, availability                 -> read address
    SA  read address register                         -> memory read (none for a pad)
    S1  o.valid register; o.payload = the memory's read register, or the pad word

and the writer then runs while ``Dw < R``, ``Dw`` being ``D`` except that a
completed output row's rows are released only when its last read has been
done (one ``en`` step after its issue), so no pending read loses its word.

The writer takes an input word in the cycle ``i.valid & (D < R)`` and the
reader may issue a read of it in the next cycle: a window word is valid on
the output 2 cycles (3 pipelined: 1 + :meth:`hwgen.dataflow.SlidingWindow.latency`) after the handshake of the
last input word it needs (pad words need none). Steady state: ``max(out_words, in_words)`` cycles per
frame, with no bubble between frames, given ``R`` from :func:`buffer_rows`.

Memory: ``R·IW·C/SIMD`` words of ``SIMD·bits``; ``R`` is usually ``KH + 1`` to
``KH + 3`` (CNV's 32×32×64 3×3 layer: 6 rows = 384 words; a 3×3 kernel with
'same' padding: 4 rows), and two frames' rows when the kernel covers the
whole input.
"""

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..dataflow.swg import SlidingWindow, _geometry, buffer_rows
from ..dataflow.pipeline import pipeline_levels
from .common import check_layer, implements, memory_attrs, stream_signature

__all__ = ["SlidingWindowComponent", "buffer_rows"]


@implements(SlidingWindow)
class SlidingWindowComponent(wiring.Component):
    """Streaming window generator built from an IR :class:`~hwgen.dataflow.SlidingWindow`.

    Parameters
    ----------
    layer : :class:`hwgen.dataflow.SlidingWindow`
        The layer (validated on construction).

    Members
    -------
    i : ``In(stream.Signature(unsigned(SIMD · dt.bits)))``
        Input feature map, channels-last, ``SIMD`` lanes per word.
    o : ``Out(stream.Signature(unsigned(SIMD · dt.bits)))``
        Windows, ``SIMD`` lanes per word, in the layer's window order.

    Attributes
    ----------
    rows : int
        Rows of the line buffer (:func:`buffer_rows`).
    depth : int
        Words of the line buffer, ``rows · IW · C/SIMD``.
    """

    def __init__(self, layer):
        check_layer(self, layer, SlidingWindow, "a SlidingWindow")
        self.layer = layer
        self.rows = buffer_rows(layer)
        ih, iw, cf, *_ = _geometry(layer)
        self.depth = self.rows * iw * cf
        super().__init__({
            "i": In(stream_signature(layer.in_lanes, layer.idt)),
            "o": Out(stream_signature(layer.out_lanes, layer.odt)),
        })

    def pad_word(self):
        """The output word of a pad position: every lane the code of ``pad_value``."""
        L = self.layer
        code = int(L.dt.encode([L.pad_value])[0]) if any(L.pad) else 0
        word = 0
        for s in range(L.simd):
            word |= code << (s * L.dt.bits)
        return word

    def elaborate(self, platform):
        L = self.layer
        m = Module()
        IH, IW, CF, KH, KW, SH, SW, PT, PL, OH, OW = _geometry(L)
        R, DEPTH = self.rows, self.depth
        IWCF = IW * CF
        width = L.simd * L.dt.bits
        padded = any(L.pad)

        def wrap(x):
            """x mod DEPTH for 0 <= x < 2·DEPTH."""
            return Mux(x >= DEPTH, x - DEPTH, x)

        mem = m.submodules.buffer = Memory(shape=unsigned(width), depth=DEPTH, init=[],
                                           attrs=memory_attrs(L.mem_style, "ram"))
        wport = mem.write_port()
        rport = mem.read_port(domain="sync")

        # -- writer ---------------------------------------------------------------------
        # D = rows completely written - need (may be negative while the reader skips rows
        # that are still to come, e.g. with a stride larger than the kernel)
        D = Signal(range(-IH - 1, R + 2))
        widx = Signal(range(IWCF))          # column word index within the row being written
        waddr = Signal(range(DEPTH))
        write = Signal()
        row_written = Signal()
        m.d.comb += [
            row_written.eq(write & (widx == IWCF - 1)),
            wport.addr.eq(waddr),
            wport.data.eq(self.i.payload),
            wport.en.eq(write),
        ]
        with m.If(write):
            m.d.sync += [
                widx.eq(Mux(widx == IWCF - 1, 0, widx + 1)),
                waddr.eq(Mux(waddr == DEPTH - 1, 0, waddr + 1)),
            ]

        # -- reader counters ------------------------------------------------------------------
        oy, ox = Signal(range(OH)), Signal(range(OW))
        kh, kw, cf = Signal(range(KH)), Signal(range(KW)), Signal(range(CF))
        top_max = (OH - 1) * SH - PT
        left_max = (OW - 1) * SW - PL
        top = Signal(range(-PT - 1, top_max + SH + 2), init=-PT)            # oy·SH − PT
        left = Signal(range(-PL - 1, left_max + SW + 2), init=-PL)          # ox·SW − PL
        cbase = Signal(range(-PL * CF - 1, (left_max + SW + 1) * CF + 1), init=-PL * CF)  # left·CF
        kwoff = Signal(range((KW - 1) * CF + 1))                            # kw·CF
        iy = Signal(range(-PT - 1, top_max + KH + 1), init=-PT)             # top + kh
        ix = Signal(range(-PL - 1, left_max + KW + 1), init=-PL)            # left + kw
        colidx = Signal(range(-PL * CF - 1, (left_max + KW) * CF + 1), init=-PL * CF)  # ix·CF + cf
        rel = Signal(range(-PT - 1, KH + 1), init=-PT)                      # iy − need
        need_base = Signal(range(DEPTH))    # buffer address of row `need`
        rowaddr = Signal(range(DEPTH))      # buffer address of row iy (when iy >= 0)

        cf_l, kw_l, kh_l = Signal(), Signal(), Signal()
        ox_l, oy_l = Signal(), Signal()
        m.d.comb += [cf_l.eq(cf == CF - 1), kw_l.eq(kw == KW - 1), kh_l.eq(kh == KH - 1),
                     ox_l.eq(ox == OW - 1), oy_l.eq(oy == OH - 1)]
        if L.depthwise:
            inc_kw, inc_kh, inc_cf = Const(1), kw_l, kw_l & kh_l
        else:
            inc_cf, inc_kw, inc_kh = Const(1), cf_l, cf_l & kw_l
        win_end, row_end = Signal(), Signal()
        m.d.comb += [win_end.eq(cf_l & kw_l & kh_l), row_end.eq(cf_l & kw_l & kh_l & ox_l)]

        def nxt(sig, inc, last, first, step):
            n = Signal.like(sig, name=f"{sig.name}_next")
            m.d.comb += n.eq(Mux(inc, Mux(last, first, sig + step), sig))
            return n

        cf_n = nxt(cf, inc_cf, cf_l, 0, 1)
        kw_n = nxt(kw, inc_kw, kw_l, 0, 1)
        kwoff_n = nxt(kwoff, inc_kw, kw_l, 0, CF)
        kh_n = nxt(kh, inc_kh, kh_l, 0, 1)
        ox_n = nxt(ox, win_end, ox_l, 0, 1)
        left_n = nxt(left, win_end, ox_l, -PL, SW)
        cbase_n = nxt(cbase, win_end, ox_l, -PL * CF, SW * CF)
        oy_n = nxt(oy, row_end, oy_l, 0, 1)
        top_n = nxt(top, row_end, oy_l, -PT, SH)

        # rows `need` advances by when output row oy is complete: SH, less near the top
        # padding (need = max(0, top) with top = oy·SH − PT), and after the last output row
        # up to the next frame's first row
        part = SH - PT % SH if PT % SH else 0           # the one step from top < 0 to top > 0
        end = IH - max(0, top_max)
        d_rows = Signal(range(max(IH, SH) + 1))
        d_addr = Signal(range(DEPTH))
        m.d.comb += [
            d_rows.eq(Mux(oy_l, end, Mux(top >= 0, SH, Mux(top > -SH, part, 0)))),
            d_addr.eq(Mux(oy_l, (end % R) * IWCF,
                          Mux(top >= 0, (SH % R) * IWCF, Mux(top > -SH, (part % R) * IWCF, 0)))),
        ]
        need_base_n = Signal.like(need_base)
        m.d.comb += need_base_n.eq(Mux(row_end, wrap(need_base + d_addr), need_base))

        # -- availability and issue -----------------------------------------------------------
        en = Signal()
        pad = Signal()
        avail = Signal()
        step = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            pad.eq((iy < 0) | (iy >= IH) | (ix < 0) | (ix >= IW)),
            avail.eq(pad | (rel < D) | ((rel == D) & (colidx < widx))),
            step.eq(en & avail),
        ]
        with m.If(step):
            m.d.sync += [
                cf.eq(cf_n), kw.eq(kw_n), kwoff.eq(kwoff_n), kh.eq(kh_n),
                ox.eq(ox_n), left.eq(left_n), cbase.eq(cbase_n),
                oy.eq(oy_n), top.eq(top_n),
                iy.eq(top_n + kh_n),
                ix.eq(left_n + kw_n),
                colidx.eq(cbase_n + kwoff_n + cf_n),
                rel.eq(kh_n + Mux(top_n < 0, top_n, 0)),
                need_base.eq(need_base_n),
                # the row address restarts at `need` with every kh = 0 and moves one row
                # down per kh step from an image row (rows above the image share row 0's)
                rowaddr.eq(Mux(kh_n == 0, need_base_n,
                               Mux(inc_kh & (iy >= 0), wrap(rowaddr + IWCF), rowaddr))),
            ]
        # D's three possible changes are summed from registers beside the availability test and
        # only selected by it: the compare → issue → subtract → D loop had two carry chains
        D_up, D_down, D_both = Signal.like(D), Signal.like(D), Signal.like(D)
        m.d.comb += [D_up.eq(D + 1), D_down.eq(D - d_rows), D_both.eq(D + 1 - d_rows)]
        row_done = Signal()
        m.d.comb += row_done.eq(step & row_end)
        m.d.sync += D.eq(Mux(row_written, Mux(row_done, D_both, D_up), Mux(row_done, D_down, D)))

        if pipeline_levels(L):
            # SA: the read address registered (no adder before the memory), the read one cycle
            # later. The writer's view of the free rows, Dw, releases a completed output row's
            # rows only when its last read is done (the reader's D at the issue), so no slot is
            # overwritten while a read of it is pending.
            Dw = Signal.like(D, name="Dw")
            sa_valid, sa_pad, sa_rowend = Signal(), Signal(), Signal()
            sa_addr = Signal(range(2 * DEPTH))
            sa_drows = Signal.like(d_rows)
            with m.If(en):
                m.d.sync += [sa_valid.eq(step), sa_pad.eq(pad), sa_rowend.eq(step & row_end),
                             sa_addr.eq(rowaddr + colidx), sa_drows.eq(d_rows)]
            Dw_up, Dw_down, Dw_both = Signal.like(Dw), Signal.like(Dw), Signal.like(Dw)
            m.d.comb += [Dw_up.eq(Dw + 1), Dw_down.eq(Dw - sa_drows), Dw_both.eq(Dw + 1 - sa_drows)]
            freed = Signal()
            m.d.comb += freed.eq(en & sa_rowend)
            m.d.sync += Dw.eq(Mux(row_written, Mux(freed, Dw_both, Dw_up), Mux(freed, Dw_down, Dw)))
            m.d.comb += [
                self.i.ready.eq(Dw < R),
                write.eq(self.i.valid & (Dw < R)),
                rport.addr.eq(sa_addr),
                rport.en.eq(en & ~sa_pad),
            ]
            issued, issued_pad = sa_valid, sa_pad
        else:
            m.d.comb += [
                self.i.ready.eq(D < R),
                write.eq(self.i.valid & (D < R)),
                rport.addr.eq(rowaddr + colidx),
                rport.en.eq(en & ~pad),
            ]
            issued, issued_pad = step, pad

        # -- output register ---------------------------------------------------------------
        s1_pad = Signal()
        with m.If(en):
            m.d.sync += [self.o.valid.eq(issued), s1_pad.eq(issued_pad)]
        if padded:
            m.d.comb += self.o.payload.eq(Mux(s1_pad, self.pad_word(), rport.data))
        else:
            m.d.comb += self.o.payload.eq(rport.data)
        return m
