"""A fake hwgen board on a fake serial port, for the driver tests.

:class:`FakeSerial` has pyserial's ``read``/``write``/``reset_input_buffer``/``in_waiting``; what
is written goes through a ``protocol.DeviceModel`` (the reference of the board's link), what it
answers comes back on ``read``.  ``faults`` ({index of a write: fault}) spoils the link the way a
real one may: ``corrupt`` (a byte of the packet flipped), ``drop_byte`` (a byte lost),
``drop_response`` (the device's answer lost), ``busy`` (NAK "frame buffer full" instead of a
result), ``duplicate`` (the answer arrives twice), ``delay`` (the answer arrives after the next
write's).  ``dead=True``: nothing ever answers.

Imports nothing of hwgen: the protocol module is passed in (the deploy test runs it next to the
deploy directory's copy, without hwgen)."""

import time


class FakeSerial:
    def __init__(self, protocol, device, *, faults=None, dead=False, poll=0.002):
        self.p, self.device, self.faults, self.dead, self.poll = protocol, device, dict(faults or {}), dead, poll
        self.rx, self.held, self.writes, self.sent, self.timeout = bytearray(), [], 0, [], poll
        self.port = "fake0"

    @property
    def in_waiting(self):
        return len(self.rx)

    def reset_input_buffer(self):
        self.rx.clear()

    def close(self):
        pass

    def write(self, data):
        data = bytes(data)
        k = self.writes
        self.writes += 1
        self.sent.append(data)
        release, self.held = self.held, []
        fault = self.faults.get(k)
        if self.dead:
            return len(data)
        b = bytearray(data)
        if fault == "corrupt":
            i = len(b) // 2
            b[i] ^= 0x04 if b[i] ^ 0x04 not in (self.p.FLAG, self.p.ESC) else 0x01
        elif fault == "drop_byte":
            del b[len(b) // 2]
        if fault == "busy":
            (kind, seq, _), = self.p.Decoder().feed(data)
            resp = self.p.packet(self.p.NAK, seq, bytes((self.p.NAK_BUSY,)))
        else:
            resp = self.device.feed(bytes(b))
        if fault == "drop_response":
            resp = b""
        elif fault == "duplicate":
            resp = resp + resp
        if fault == "delay":
            self.held.append(resp)
            resp = b""
        for r in release:
            self.rx += r
        self.rx += resp
        return len(data)

    def read(self, n=1):
        if not self.rx:
            time.sleep(self.poll)
            if self.held and not self.rx:      # nothing else comes: the held answer arrives after all
                self.rx += b"".join(self.held)
                self.held = []
            return b""
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out

    def received(self):
        """The DATA payloads the device was sent, in order (each packet's kind, seq, payload)."""
        return self.p.Decoder().feed(b"".join(self.sent))


def table_compute(table, in_word_bytes, out_word_bytes):
    """A core that looks its answers up: ``table`` maps an input frame's payload bytes to the output's."""
    def compute(words):
        key = b"".join(int(w).to_bytes(in_word_bytes, "little") for w in words)
        data = table[key]
        return [int.from_bytes(data[i:i + out_word_bytes], "little") for i in range(0, len(data), out_word_bytes)]
    return compute
