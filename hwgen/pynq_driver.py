"""The PYNQ driver of a hwgen accelerator on a Zynq board (PYNQ-Z1, PYNQ-Z2, ZCU104).

Generated, not run here (no Vivado, no PYNQ): ``hwgen deploy OUT --board pynq-z2`` writes a
Vivado block design (``bd.tcl``: the processing system, an AXI DMA whose MM2S stream feeds the
accelerator's ``s_axis`` and whose S2MM stream takes its ``m_axis``; ``hwgen_axis_wrapper``
widens the words to the DMA's stream width and marks the last word of every output frame with
``tlast``).  On the board::

    from hwgen_deploy.pynq_driver import PynqAccelerator
    acc = PynqAccelerator(".")              # loads hwgen.bit (+ hwgen.hwh) with pynq.Overlay
    y = acc.predict(x)

The words are the UART driver's (:class:`hwgen.driver.Codec`: head, :func:`hwgen.streams.pack`,
words little-endian), each in ``dma_bits / 8`` bytes, the DMA stream's width (a power of two,
at least 32 bits).  One MM2S transfer sends a batch's input frames; one S2MM transfer per frame
takes each output frame (the DMA ends a receive at ``tlast``).
"""

import os

import numpy as np

from .driver import Codec, load_dir
from .errors import HwgenError

__all__ = ["PynqAccelerator", "dma_bits", "DMA_NAME", "BITFILE"]

DMA_NAME = "axi_dma_0"
BITFILE = "hwgen.bit"
_BATCH_BYTES = 1 << 22          # input bytes per MM2S transfer (well below the DMA's 2^26 - 1 limit)


def dma_bits(tdata_bits):
    """The AXI DMA stream width for ``tdata_bits``-bit words: a power of two from 32 to 1024."""
    bits = 32
    while bits < int(tdata_bits):
        bits *= 2
    if bits > 1024:
        raise HwgenError(f"PYNQ: stream words of {tdata_bits} bits are wider than the AXI DMA's 1024-bit stream; "
                         "fold the first and last layers with fewer lanes")
    return bits


class PynqAccelerator:
    """A hwgen accelerator behind an AXI DMA on a PYNQ board: ``path`` the deploy directory
    (``manifest.json``, ``board.json``); ``bitfile`` defaults to its ``hwgen.bit``;
    ``overlay``: an already loaded ``pynq.Overlay``."""

    def __init__(self, path=".", bitfile=None, *, overlay=None, dma=DMA_NAME):
        self.manifest, self.board, self.path = load_dir(path)
        self.codec = Codec(self.manifest)
        try:
            import pynq
        except ImportError:
            raise HwgenError("PYNQ: the pynq package is not installed; run this on the board's PYNQ image") from None
        self._pynq = pynq
        self.in_bytes = dma_bits(self.codec.in_bits) // 8
        self.out_bytes = dma_bits(self.codec.out_bits) // 8
        if overlay is None:
            bit = bitfile or os.path.join(self.path, BITFILE)
            if not os.path.isfile(bit):
                raise HwgenError(f"PYNQ: bitstream {bit} not found; make it with `vivado -mode batch -source bd.tcl` "
                                 "and copy hwgen.bit and hwgen.hwh next to this driver")
            overlay = pynq.Overlay(bit)
        self.overlay = overlay
        try:
            self.dma = getattr(overlay, dma)
        except AttributeError:
            raise HwgenError(f"PYNQ: the overlay has no {dma}; is it the bitstream bd.tcl made?") from None
        self.frames = 0

    def predict(self, x):
        """Float model inputs → float model outputs, in input order."""
        return self.codec.to_floats(self.predict_int(self.codec.to_ints(x)))

    def predict_int(self, frames_int):
        """Integer input frames → integer output frames."""
        return self.codec.values(self.run_words(self.codec.frames(frames_int)))

    def run_words(self, frames):
        """Lists of input stream words, one per frame → lists of output stream words."""
        c, pynq = self.codec, self._pynq
        frame_in = c.in_words * self.in_bytes
        frame_out = c.out_words * self.out_bytes
        per = max(1, _BATCH_BYTES // frame_in)
        obuf = pynq.allocate(shape=(frame_out,), dtype=np.uint8)
        out = []
        for a in range(0, len(frames), per):
            batch = frames[a:a + per]
            data = b"".join(Codec.to_bytes(words, self.in_bytes) for words in batch)
            ibuf = pynq.allocate(shape=(len(data),), dtype=np.uint8)
            ibuf[:] = np.frombuffer(data, dtype=np.uint8)
            _flush(ibuf)
            self.dma.sendchannel.transfer(ibuf)
            for _ in batch:
                self.dma.recvchannel.transfer(obuf)
                self.dma.recvchannel.wait()
                _invalidate(obuf)
                out.append(Codec.from_bytes(np.asarray(obuf).tobytes(), self.out_bytes, c.out_bits))
            self.dma.sendchannel.wait()
            _free(ibuf)
        _free(obuf)
        self.frames += len(frames)
        return out


def _flush(buf):
    f = getattr(buf, "flush", None)
    if f is not None:
        f()


def _invalidate(buf):
    f = getattr(buf, "invalidate", None)
    if f is not None:
        f()


def _free(buf):
    f = getattr(buf, "freebuffer", None)
    if f is not None:
        f()
