"""The host link's framed protocol (hwgen-link/1): the reference both ends are checked against.

Bytes on the UART are grouped into *packets* by HDLC-style byte stuffing: every packet is sent
between two :data:`FLAG` bytes (``0x7E``); inside a packet a byte equal to ``FLAG`` or :data:`ESC`
(``0x7D``) is sent as ``ESC``, ``byte ^ 0x20``.  A receiver that loses its place (a corrupted,
dropped or inserted byte) is back in step at the next ``FLAG``: no length field is trusted and no
error needs more than one packet to recover from.  Both directions stream: stuffing and
un-stuffing need no look-ahead, so the hardware never buffers a packet to send it.

A packet, un-stuffed, is ``type`` (1 byte), ``seq`` (1 byte), ``payload``, ``crc`` (2 bytes,
big-endian): CRC-16/CCITT-FALSE (:func:`crc16`: polynomial 0x1021, initial 0xFFFF, no reflection,
no final XOR) over type, seq and payload.  The CRC over the whole packet, crc included, is 0 —
the check a receiver makes at the closing ``FLAG``.

Host to device:

* :data:`DATA` — payload: one input frame, its stream words in order, each word
  ``tdata_bits / 8`` bytes little-endian (the word's bits as ``manifest.json``'s ``input`` says,
  :func:`hwgen.streams.pack`);  the payload length is fixed by the design, any other is an error;
* :data:`INFO` — empty payload: asks the device who it is.

Device to host, one response per packet it could read:

* :data:`RESULT` — ``seq`` of the DATA packet; payload: the output frame's words likewise;
  results come back in the order their DATA packets were accepted;
* :data:`NAK` — ``seq`` as received (best effort: it may itself be corrupted); payload: one byte,
  the reason (:data:`NAK_CODES`); the frame was dropped, nothing of it reached the core;
* :data:`INFO_REPLY` — payload :data:`INFO_FORMAT` (see :class:`LinkParams`).

The device checks the CRC before a frame reaches the core (frames are held in a buffer of
``buffer_frames`` frames and released whole), so a corrupted frame is never computed.  A DATA
packet that finds no room in the buffer is dropped with NAK :data:`NAK_BUSY`; the host keeps at
most ``buffer_frames`` frames unanswered to avoid that, and resends a frame that got a NAK or no
answer in time (results carry ``seq``, so a late duplicate is recognised and dropped).

Order: RESULTs come in the order their frames were accepted; a NAK or INFO_REPLY is sent as soon
as its packet ends, so it may overtake RESULTs of frames still in the core (:class:`DeviceModel`
answers strictly in packet order: compare RESULTs with RESULTs and NAKs with NAKs).

At the closing FLAG the device checks, in this order: a UART framing error inside the packet
(NAK_LINE), fewer than 4 bytes or an ESC just before the FLAG (NAK_LENGTH), the type (NAK_TYPE),
the length for that type (NAK_LENGTH), the CRC (NAK_CRC), room in the buffer (NAK_BUSY).
"""

import struct
from dataclasses import dataclass

from ..errors import HwgenError

__all__ = ["FLAG", "ESC", "DATA", "INFO", "RESULT", "NAK", "INFO_REPLY", "NAK_CRC", "NAK_LENGTH", "NAK_BUSY",
           "NAK_TYPE", "NAK_LINE", "NAK_CODES", "MAGIC", "VERSION", "INFO_FORMAT", "crc16", "stuff", "packet",
           "Decoder", "LinkParams", "DeviceModel", "words_to_bytes", "bytes_to_words"]

FLAG, ESC = 0x7E, 0x7D
DATA, INFO = 0x01, 0x02
RESULT, NAK, INFO_REPLY = 0x81, 0x82, 0x83
NAK_CRC, NAK_LENGTH, NAK_BUSY, NAK_TYPE, NAK_LINE = 1, 2, 3, 4, 5
NAK_CODES = {NAK_CRC: "CRC mismatch", NAK_LENGTH: "wrong packet length", NAK_BUSY: "frame buffer full",
             NAK_TYPE: "unknown packet type", NAK_LINE: "UART framing error"}
MAGIC = b"HWGN"
VERSION = 1
#: INFO_REPLY payload: magic, version, input bytes/frame, output bytes/frame, buffer frames,
#: design id, clock Hz, baud — little-endian
INFO_FORMAT = "<4sBHHBIII"


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data`` (bytes), continuing from ``crc``; ``crc16(b"123456789") == 0x29B1``."""
    for byte in bytes(data):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def stuff(data):
    """``data`` with every FLAG and ESC byte escaped (``ESC, byte ^ 0x20``)."""
    out = bytearray()
    for byte in bytes(data):
        if byte in (FLAG, ESC):
            out += bytes((ESC, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def packet(kind, seq, payload=b""):
    """The bytes on the line of one packet: FLAG, stuffed (kind, seq, payload, CRC), FLAG."""
    if not (0 <= kind < 256 and 0 <= seq < 256):
        raise HwgenError(f"link: packet type {kind!r} and seq {seq!r} must be bytes (0..255)")
    body = bytes((kind, seq)) + bytes(payload)
    return bytes((FLAG,)) + stuff(body + crc16(body).to_bytes(2, "big")) + bytes((FLAG,))


class _Unstuffer:
    """The receiving end's un-stuffing: :meth:`_packets` yields ``(body, escaped)`` for each packet a
    FLAG closes (``escaped``: an ESC came just before the FLAG); bytes before the first FLAG are
    not in a packet, and two FLAGs in a row are idle."""

    def __init__(self):
        self.buf, self.escaped, self.synced = bytearray(), False, False

    def _pending(self):
        return bool(self.buf or self.escaped)

    def _packets(self, data):
        for byte in bytes(data):
            if byte == FLAG:
                if self.synced and self._pending():
                    yield bytes(self.buf), self.escaped
                self.buf, self.escaped, self.synced = bytearray(), False, True
                self._closed()
            elif not self.synced:
                continue                                  # before the first FLAG: not in a packet
            elif self.escaped:
                self.buf.append(byte ^ 0x20)
                self.escaped = False
            elif byte == ESC:
                self.escaped = True
            else:
                self.buf.append(byte)

    def _closed(self):
        """A FLAG ended a packet (or idle time): reset what a subclass keeps per packet."""


class Decoder(_Unstuffer):
    """Bytes from the line in, packets out: ``feed(data)`` returns a list of
    ``(kind, seq, payload)`` for the good packets completed by ``data``, and counts the bad ones
    in :attr:`errors` (a CRC mismatch, a packet shorter than 4 bytes, an ESC before a FLAG).
    Empty packets (two FLAGs in a row) are idle, not errors."""

    def __init__(self):
        super().__init__()
        self.errors = 0

    def feed(self, data):
        done = []
        for body, escaped in self._packets(data):
            if escaped or len(body) < 4 or crc16(body) != 0:
                self.errors += 1
            else:
                done.append((body[0], body[1], body[2:-2]))
        return done


def words_to_bytes(words, word_bytes):
    """Stream words (ints) → payload bytes, ``word_bytes`` little-endian bytes per word."""
    return b"".join(int(w).to_bytes(word_bytes, "little") for w in words)


def bytes_to_words(data, word_bytes):
    """Inverse of :func:`words_to_bytes`."""
    data = bytes(data)
    if len(data) % word_bytes:
        raise HwgenError(f"link: {len(data)} payload bytes are not a whole number of {word_bytes}-byte words")
    return [int.from_bytes(data[i:i + word_bytes], "little") for i in range(0, len(data), word_bytes)]


@dataclass(frozen=True)
class LinkParams:
    """What both ends of a link agree on: the core's stream words (``in_bits``/``out_bits`` tdata
    bits, multiples of 8; ``in_words``/``out_words`` words per frame), the frames the device's
    input buffer holds, a design id (the driver refuses a device whose id differs from its
    build's), the core clock and the baud rate."""
    in_bits: int
    in_words: int
    out_bits: int
    out_words: int
    buffer_frames: int = 2
    design_id: int = 0
    clock_hz: int = 0
    baud: int = 0

    def __post_init__(self):
        for k in ("in_bits", "out_bits"):
            v = getattr(self, k)
            if not (isinstance(v, int) and v > 0 and v % 8 == 0):
                raise HwgenError(f"link: {k} must be a positive multiple of 8 (tdata bits), not {v!r}")
        for k in ("in_words", "out_words", "buffer_frames"):
            v = getattr(self, k)
            if not (isinstance(v, int) and v > 0):
                raise HwgenError(f"link: {k} must be a positive integer, not {v!r}")
        if self.in_bytes > 0xFFFF or self.out_bytes > 0xFFFF or self.buffer_frames > 255:
            raise HwgenError(f"link: frames of {self.in_bytes} input / {self.out_bytes} output bytes and "
                             f"{self.buffer_frames} buffered frames; accepted: at most 65535 bytes and 255 frames")

    @classmethod
    def from_manifest(cls, manifest, **kw):
        i, o = manifest["input"], manifest["output"]
        return cls(int(i["tdata_bits"]), int(i["words_per_frame"]), int(o["tdata_bits"]), int(o["words_per_frame"]),
                   **kw)

    @property
    def in_word_bytes(self):
        return self.in_bits // 8

    @property
    def out_word_bytes(self):
        return self.out_bits // 8

    @property
    def in_bytes(self):
        return self.in_word_bytes * self.in_words

    @property
    def out_bytes(self):
        return self.out_word_bytes * self.out_words

    def info_payload(self):
        return struct.pack(INFO_FORMAT, MAGIC, VERSION, self.in_bytes, self.out_bytes, self.buffer_frames,
                           self.design_id & 0xFFFFFFFF, self.clock_hz & 0xFFFFFFFF, self.baud & 0xFFFFFFFF)

    @staticmethod
    def parse_info(payload):
        """``INFO_REPLY`` payload → dict (magic checked); raises :class:`HwgenError` naming what came."""
        if len(payload) != struct.calcsize(INFO_FORMAT) or payload[:4] != MAGIC:
            raise HwgenError(f"link: the device's INFO reply {bytes(payload[:16]).hex()} is not a hwgen-link/1 "
                             "device's (wrong bitstream, or not a hwgen board?)")
        magic, version, ib, ob, frames, did, clk, baud = struct.unpack(INFO_FORMAT, payload)
        return {"version": version, "in_bytes": ib, "out_bytes": ob, "buffer_frames": frames, "design_id": did,
                "clock_hz": clk, "baud": baud}


class DeviceModel(_Unstuffer):
    """The device end in Python, byte for byte as the hardware answers (the hardware tests
    compare with it): ``feed(data)`` takes line bytes, returns the line bytes of the answers.
    ``compute(words) -> words`` is the core (one frame); the model's buffer never fills (the
    hardware's may: NAK_BUSY is timing, not function).  ``line_error()`` marks a UART framing
    error in the packet being received."""

    def __init__(self, params, compute):
        super().__init__()
        self.p, self.compute, self.bad_line = params, compute, False

    def line_error(self):
        self.bad_line = True

    def _answer(self, body, escaped):
        p = self.p
        if self.bad_line:
            return packet(NAK, body[1] if len(body) > 1 else 0, bytes((NAK_LINE,)))
        if escaped or len(body) < 4:
            return packet(NAK, body[1] if len(body) > 1 else 0, bytes((NAK_LENGTH,)))
        kind, seq = body[0], body[1]
        if kind == DATA:
            if len(body) != p.in_bytes + 4:
                return packet(NAK, seq, bytes((NAK_LENGTH,)))
            if crc16(body) != 0:
                return packet(NAK, seq, bytes((NAK_CRC,)))
            out = self.compute(bytes_to_words(body[2:-2], p.in_word_bytes))
            return packet(RESULT, seq, words_to_bytes(out, p.out_word_bytes))
        if kind == INFO:
            if len(body) != 4:
                return packet(NAK, seq, bytes((NAK_LENGTH,)))
            if crc16(body) != 0:
                return packet(NAK, seq, bytes((NAK_CRC,)))
            return packet(INFO_REPLY, seq, p.info_payload())
        return packet(NAK, seq, bytes((NAK_TYPE,)))

    def _pending(self):
        return super()._pending() or self.bad_line

    def _closed(self):
        self.bad_line = False

    def feed(self, data):
        return b"".join(self._answer(body, escaped) for body, escaped in self._packets(data))
