"""The board shell's protocol engine: the device end of hwgen-link/1 (:mod:`hwgen.shell.protocol`)
between the UART and the accelerator core's streams.

* :class:`LinkRx` takes bytes from the UART receiver, one a cycle (``rx.ready`` is always high):
  it hunts for the first FLAG after reset, un-stuffs, counts the bytes of each packet (saturating)
  and runs the CRC-16 over all of them, the two CRC bytes included (0 at the closing FLAG for a
  good packet; :func:`crc_step`, one byte a cycle, combinational).  A DATA packet's payload bytes
  are gathered into ``in_bits``-bit words (little-endian) and written into the frame buffer at a
  *tentative* write pointer; at the closing FLAG the packet is checked in
  :mod:`~hwgen.shell.protocol`'s order (line error, short or ESC before the FLAG, type, length,
  CRC, room) and either the frame is *committed* (the committed pointer moves up to the tentative
  one, its seq goes into the seq FIFO) or the tentative writes are rolled back and a NAK (or, for
  an INFO request, an INFO_REPLY) is queued in the answer FIFO.  So nothing of a bad frame ever
  reaches the core.  Room is decided at a DATA packet's first payload byte: fewer than
  ``buffer_frames`` frames held (a frame is held until its last word has been handed to the core)
  and a free seq FIFO entry; else the packet's bytes are not written and it ends in NAK_BUSY (if
  nothing earlier in the check order went wrong).
* The frame buffer is one :class:`~amaranth.lib.memory.Memory` (block RAM) of ``buffer_frames ×
  in_words`` words rounded up to a power of two, a ring with pointers one bit wider than its
  address; its synchronous read port feeds ``core_in`` through the port's own data register.
* :class:`LinkTx` sends whole packets, one after the other: queued answers first (a NAK or
  INFO_REPLY may overtake RESULTs, as the protocol allows), else a RESULT when the core offers an
  output word (its seq from the seq FIFO).  Each packet is FLAG, the stuffed body and CRC, FLAG —
  the bytes :func:`~hwgen.shell.protocol.packet` gives.  A RESULT's bytes are taken straight from
  ``core_out.payload``: the word is acknowledged (``core_out.ready``) with its last byte, so a busy
  UART holds the core back and no word is buffered or dropped.  The INFO_REPLY payload is a small
  ROM.
* :class:`Link` joins them; ``frame_done`` pulses as a RESULT's closing FLAG is handed to ``tx``,
  ``link_error`` as a NAK is decided (for LEDs).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .protocol import (DATA, ESC, FLAG, INFO, INFO_REPLY, NAK, NAK_BUSY, NAK_CRC, NAK_LENGTH, NAK_LINE, NAK_TYPE,
                       RESULT, LinkParams)

__all__ = ["Link", "LinkRx", "LinkTx", "crc_step", "ANSWER_DEPTH"]

#: answers (NAK, INFO_REPLY) waiting to be sent; one arriving when all are taken is dropped: the
#: host gets no answer, times out and resends (it happens only if the host sends many short bad
#: packets or INFO requests faster than the answers go out)
ANSWER_DEPTH = 4
_INFO_CODE = 0          # in the answer FIFO: code 0 is an INFO_REPLY, the NAK codes are 1-5
#: seq FIFO entries beyond buffer_frames, for frames already in the core whose results are not yet
#: sent; a DATA packet finding the seq FIFO full is NAK_BUSY like one finding the buffer full
_SEQ_SPARE = 2


def crc_step(m, crc, byte):
    """CRC-16/CCITT-FALSE of one more ``byte`` after ``crc``: combinational logic in ``m``
    (:func:`hwgen.shell.protocol.crc16` bit by bit, unrolled), its result a signal.  Each bit
    step goes through a signal of its own: as one expression the tree would grow 3× a step."""
    c = Signal(16)
    m.d.comb += c.eq(crc ^ (byte << 8))
    for _ in range(8):
        n = Signal(16)
        m.d.comb += n.eq(Mux(c[15], (c << 1)[:16] ^ 0x1021, (c << 1)[:16]))
        c = n
    return c


class _FrameBuffer:
    """Depth and pointer widths of the frame ring."""

    def __init__(self, p):
        n = p.buffer_frames * p.in_words
        self.abits = max(1, (n - 1).bit_length())
        self.depth = 1 << self.abits


def _check_params(params, component):
    if not isinstance(params, LinkParams):
        component._MustUse__silence = True
        raise TypeError(f"link: params must be a hwgen.shell.protocol.LinkParams, not {params!r}")


class LinkRx(wiring.Component):
    """Line bytes in; frames into the buffer's write port, committed seqs out, answers out.

    Members
    -------
    rx : ``In(stream.Signature(8))`` — bytes from the UART receiver (always taken)
    rx_error : ``In(1)`` — a cycle: the UART lost a byte (framing error, overrun)
    frames : ``In(range(buffer_frames + 1))`` — frames in the buffer (committed, not all handed out)
    seq_room : ``In(1)`` — the seq FIFO can take one more
    wr_addr, wr_data, wr_en : the buffer's write port
    wr_commit : ``Out(abits + 1)`` — the committed write pointer (the words before it are frames)
    commit : ``Out(1)`` — a cycle: a frame was committed, its seq on ``seq``
    seq : ``Out(8)``
    answer : ``Out(stream.Signature(11))`` — ``Cat(code, seq)``: a NAK code, or 0 for INFO_REPLY;
      ``answer.ready`` low drops the answer
    nak : ``Out(1)`` — a cycle: a NAK was decided
    """

    def __init__(self, params):
        _check_params(params, self)
        self.p = p = params
        self.buf = _FrameBuffer(p)
        super().__init__({
            "rx": In(stream.Signature(8)), "rx_error": In(1),
            "frames": In(range(p.buffer_frames + 1)), "seq_room": In(1),
            "wr_addr": Out(self.buf.abits), "wr_data": Out(p.in_bits), "wr_en": Out(1),
            "wr_commit": Out(self.buf.abits + 1), "commit": Out(1), "seq": Out(8),
            "answer": Out(stream.Signature(11)), "nak": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.p
        data_len = p.in_bytes + 4                     # type, seq, payload, crc
        synced = Signal()                             # a FLAG has been seen since reset
        escaped = Signal()                            # the last byte was ESC
        bad_line = Signal()                           # a UART error since the packet's opening FLAG
        busy = Signal()                               # this DATA packet found no room: not written
        count = Signal(range(data_len + 2))           # bytes un-stuffed, saturating at data_len + 1
        kind = Signal(8)
        seq = Signal(8)
        crc = Signal(16, init=0xFFFF)
        wr_tent = Signal(self.buf.abits + 1)          # tentative write pointer
        word_byte = Signal(range(p.in_word_bytes))    # byte of the word being gathered
        gather = Signal(max(p.in_bits - 8, 1))        # its earlier bytes, the first at bit 0

        m.d.comb += [self.rx.ready.eq(1), self.seq.eq(seq), self.wr_addr.eq(wr_tent[:self.buf.abits])]

        # (an error pulse in the cycle of a FLAG is the next packet's: the UART reports a byte's
        # error at its stop bit, long after the byte before it was taken)
        with m.If(self.rx_error):
            m.d.sync += bad_line.eq(1)

        # one data byte of the packet (after un-stuffing)
        byte = Signal(8)
        take = Signal()
        with m.If(self.rx.valid & synced & (self.rx.payload != FLAG)):
            with m.If(escaped):
                m.d.comb += [byte.eq(self.rx.payload ^ 0x20), take.eq(1)]
                m.d.sync += escaped.eq(0)
            with m.Elif(self.rx.payload == ESC):
                m.d.sync += escaped.eq(1)
            with m.Else():
                m.d.comb += [byte.eq(self.rx.payload), take.eq(1)]

        crc_next = crc_step(m, crc, byte)
        payload_byte = (kind == DATA) & (count >= 2) & (count < 2 + p.in_bytes)
        room = (self.frames < p.buffer_frames) & self.seq_room
        with m.If(take):
            m.d.sync += crc.eq(crc_next)
            with m.If(count != data_len + 1):
                m.d.sync += count.eq(count + 1)
            with m.If(count == 0):
                m.d.sync += kind.eq(byte)
            with m.If(count == 1):
                m.d.sync += seq.eq(byte)
            with m.If(count == 2):
                m.d.sync += busy.eq(~room)
            writable = Mux(count == 2, room, ~busy)
            with m.If(payload_byte & writable):
                if p.in_word_bytes > 1:
                    m.d.sync += gather.eq(Cat(gather[8:], byte))
                with m.If(word_byte == p.in_word_bytes - 1):
                    m.d.sync += [word_byte.eq(0), wr_tent.eq(wr_tent + 1)]
                    m.d.comb += [self.wr_en.eq(1),
                                 self.wr_data.eq(Cat(gather, byte) if p.in_word_bytes > 1 else byte)]
                with m.Else():
                    m.d.sync += word_byte.eq(word_byte + 1)

        # the closing FLAG: the answer, in the protocol's check order
        code = Signal(3)
        with m.If(self.rx.valid & (self.rx.payload == FLAG)):
            m.d.sync += [synced.eq(1), escaped.eq(0), bad_line.eq(self.rx_error), busy.eq(0), count.eq(0),
                         crc.eq(0xFFFF), word_byte.eq(0), wr_tent.eq(self.wr_commit)]  # rolled back unless committed
            with m.If(synced & ((count != 0) | escaped | bad_line)):
                with m.If(bad_line):
                    m.d.comb += code.eq(NAK_LINE)
                with m.Elif(escaped | (count < 4)):
                    m.d.comb += code.eq(NAK_LENGTH)
                with m.Elif(kind == DATA):
                    with m.If(count != data_len):
                        m.d.comb += code.eq(NAK_LENGTH)
                    with m.Elif(crc != 0):
                        m.d.comb += code.eq(NAK_CRC)
                    with m.Elif(busy):
                        m.d.comb += code.eq(NAK_BUSY)
                    with m.Else():
                        m.d.comb += self.commit.eq(1)
                        m.d.sync += [self.wr_commit.eq(wr_tent), wr_tent.eq(wr_tent)]
                with m.Elif(kind == INFO):
                    with m.If(count != 4):
                        m.d.comb += code.eq(NAK_LENGTH)
                    with m.Elif(crc != 0):
                        m.d.comb += code.eq(NAK_CRC)
                    with m.Else():
                        m.d.comb += code.eq(_INFO_CODE)
                with m.Else():
                    m.d.comb += code.eq(NAK_TYPE)
                # offered for this one cycle only: if the answer FIFO is full the answer is dropped
                with m.If(~self.commit):
                    m.d.comb += [self.answer.valid.eq(1), self.nak.eq(code != _INFO_CODE),
                                 self.answer.payload.eq(Cat(code, Mux(count > 1, seq, 0)))]
        return m


class LinkTx(wiring.Component):
    """Answers and core output words in, packets out on ``tx``.

    Members
    -------
    answer : ``In(stream.Signature(11))`` — ``Cat(code, seq)`` from the answer FIFO (0: INFO_REPLY)
    seq : ``In(stream.Signature(8))`` — from the seq FIFO: the seq of the next RESULT
    core_out : ``In(stream.Signature(out_bits))`` — the core's output words
    tx : ``Out(stream.Signature(8))`` — bytes to the UART transmitter
    frame_done : ``Out(1)`` — a cycle: a RESULT's closing FLAG was handed to ``tx``
    """

    def __init__(self, params):
        _check_params(params, self)
        self.p = params
        super().__init__({
            "answer": In(stream.Signature(11)), "seq": In(stream.Signature(8)),
            "core_out": In(stream.Signature(params.out_bits)), "tx": Out(stream.Signature(8)),
            "frame_done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.p
        info = p.info_payload()
        m.submodules.info_rom = rom = Memory(shape=8, depth=len(info), init=info)
        rom_rd = rom.read_port(domain="comb")

        is_result = Signal()                          # the packet being sent is a RESULT (else an answer)
        code = Signal(3)                              # an answer's NAK code, or _INFO_CODE
        seq = Signal(8)
        crc = Signal(16)
        pos = Signal(range(max(p.out_bytes, len(info), 1) + 2))     # body byte: 0 type, 1 seq, 2... payload
        word_byte = Signal(range(p.out_word_bytes))  # byte of the RESULT's current output word
        esc_sent = Signal()                           # the ESC of a stuffed byte has gone; its second half next

        last = Mux(is_result, 1 + p.out_bytes, Mux(code == _INFO_CODE, 1 + len(info), 2))
        kind = Mux(is_result, RESULT, Mux(code == _INFO_CODE, INFO_REPLY, NAK))
        m.d.comb += rom_rd.addr.eq(pos - 2)

        # the byte to send in the body and CRC states (b, b_ok), stuffed on its way to tx
        b = Signal(8)
        crc_next = crc_step(m, crc, b)
        b_ok = Signal()
        stuffing = Signal()
        special = (b == FLAG) | (b == ESC)
        with m.If(stuffing):
            m.d.comb += [self.tx.valid.eq(b_ok),
                         self.tx.payload.eq(Mux(esc_sent, b ^ 0x20, Mux(special, ESC, b)))]
        sent = self.tx.valid & self.tx.ready
        done = stuffing & sent & (esc_sent | ~special)         # b has gone whole
        with m.If(stuffing & sent):
            m.d.sync += esc_sent.eq(~esc_sent & special)

        with m.FSM():
            with m.State("idle"):
                with m.If(self.answer.valid):
                    m.d.comb += self.answer.ready.eq(1)
                    m.d.sync += [is_result.eq(0), code.eq(self.answer.payload[:3]),
                                 seq.eq(self.answer.payload[3:])]
                    m.next = "open"
                with m.Elif(self.core_out.valid & self.seq.valid):
                    m.d.comb += self.seq.ready.eq(1)
                    m.d.sync += [is_result.eq(1), seq.eq(self.seq.payload)]
                    m.next = "open"
                m.d.sync += [pos.eq(0), word_byte.eq(0), crc.eq(0xFFFF)]
            with m.State("open"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(FLAG)]
                with m.If(self.tx.ready):
                    m.next = "body"
            with m.State("body"):
                m.d.comb += [stuffing.eq(1), b_ok.eq(1)]
                with m.If(pos == 0):
                    m.d.comb += b.eq(kind)
                with m.Elif(pos == 1):
                    m.d.comb += b.eq(seq)
                with m.Elif(is_result):
                    m.d.comb += [b.eq(self.core_out.payload.word_select(word_byte, 8)), b_ok.eq(self.core_out.valid)]
                    with m.If(done):
                        m.d.sync += word_byte.eq(Mux(word_byte == p.out_word_bytes - 1, 0, word_byte + 1))
                        m.d.comb += self.core_out.ready.eq(word_byte == p.out_word_bytes - 1)
                with m.Elif(code == _INFO_CODE):
                    m.d.comb += b.eq(rom_rd.data)
                with m.Else():
                    m.d.comb += b.eq(code)
                with m.If(done):
                    m.d.sync += [crc.eq(crc_next), pos.eq(pos + 1)]
                    with m.If(pos == last):
                        m.next = "crc_hi"
            with m.State("crc_hi"):
                m.d.comb += [stuffing.eq(1), b_ok.eq(1), b.eq(crc[8:])]
                with m.If(done):
                    m.next = "crc_lo"
            with m.State("crc_lo"):
                m.d.comb += [stuffing.eq(1), b_ok.eq(1), b.eq(crc[:8])]
                with m.If(done):
                    m.next = "close"
            with m.State("close"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(FLAG)]
                with m.If(self.tx.ready):
                    m.d.comb += self.frame_done.eq(is_result)
                    m.next = "idle"
        return m


class Link(wiring.Component):
    """The device end of hwgen-link/1 between the UART and the core (see the module docstring).

    Members
    -------
    rx : ``In(stream.Signature(8))`` — bytes from :class:`~hwgen.shell.uart.UARTRx` (always taken)
    rx_error : ``In(1)`` — a cycle: the UART receiver's framing error or overrun
    tx : ``Out(stream.Signature(8))`` — bytes to :class:`~hwgen.shell.uart.UARTTx`
    core_in : ``Out(stream.Signature(in_bits))`` — good frames' words to the core
    core_out : ``In(stream.Signature(out_bits))`` — the core's output words
    frame_done : ``Out(1)`` — a cycle: a RESULT packet has been handed to ``tx`` whole
    link_error : ``Out(1)`` — a cycle: a NAK was decided (queued, or dropped if the answer FIFO is full)
    """

    def __init__(self, params: LinkParams):
        _check_params(params, self)
        self.params = params
        super().__init__({
            "rx": In(stream.Signature(8)),
            "rx_error": In(1),
            "tx": Out(stream.Signature(8)),
            "core_in": Out(stream.Signature(params.in_bits)),
            "core_out": In(stream.Signature(params.out_bits)),
            "frame_done": Out(1),
            "link_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.rx = rx = LinkRx(p)
        m.submodules.tx = tx = LinkTx(p)
        buf = rx.buf
        m.submodules.buffer = mem = Memory(shape=p.in_bits, depth=buf.depth, init=[])
        m.submodules.answers = answers = SyncFIFO(width=11, depth=ANSWER_DEPTH)
        m.submodules.seqs = seqs = SyncFIFO(width=8, depth=p.buffer_frames + _SEQ_SPARE)

        wiring.connect(m, wiring.flipped(self.rx), rx.rx)
        wiring.connect(m, tx.tx, wiring.flipped(self.tx))
        wiring.connect(m, wiring.flipped(self.core_out), tx.core_out)
        wiring.connect(m, rx.answer, answers.w_stream)
        wiring.connect(m, answers.r_stream, tx.answer)
        wiring.connect(m, seqs.r_stream, tx.seq)
        m.d.comb += [rx.rx_error.eq(self.rx_error), self.frame_done.eq(tx.frame_done), self.link_error.eq(rx.nak),
                     seqs.w_en.eq(rx.commit), seqs.w_data.eq(rx.seq), rx.seq_room.eq(seqs.w_rdy)]

        wp = mem.write_port()
        m.d.comb += [wp.addr.eq(rx.wr_addr), wp.data.eq(rx.wr_data), wp.en.eq(rx.wr_en)]

        # read side: the read port's data register is core_in's payload; it is refilled (en) when
        # empty or being taken
        rp = mem.read_port()
        rd = Signal(buf.abits + 1)
        out_valid = Signal()
        out_word = Signal(range(p.in_words))         # word of its frame core_in offers
        frames = Signal(range(p.buffer_frames + 1))
        m.d.comb += [rp.addr.eq(rd[:buf.abits]), rp.en.eq(~out_valid | self.core_in.ready),
                     self.core_in.valid.eq(out_valid), self.core_in.payload.eq(rp.data), rx.frames.eq(frames)]
        with m.If(rp.en):
            m.d.sync += out_valid.eq(rd != rx.wr_commit)
            with m.If(rd != rx.wr_commit):
                m.d.sync += rd.eq(rd + 1)
        # a frame is released when its last word has been taken (so it no longer occupies the ring)
        release = self.core_in.valid & self.core_in.ready & (out_word == p.in_words - 1)
        with m.If(self.core_in.valid & self.core_in.ready):
            m.d.sync += out_word.eq(Mux(release, 0, out_word + 1))
        m.d.sync += frames.eq(frames + rx.commit - release)
        return m

