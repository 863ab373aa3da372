"""Pooling on integers.

* :class:`Pool` reduces a depthwise-ordered window from a
  :class:`SlidingWindow` (``simd == pe``): per output pixel and channel group,
  K words of ``pe`` channels -> one word of ``pe`` maxima or sums.  Cycles per
  frame: ``pixels · (C / PE) · K``.
* :class:`GlobalPool` reduces a whole feature map ``(H, W, C)`` streamed
  channels-last to ``(C,)`` maxima or sums.  Cycles: ``H·W·C / PE``.

Max-pooling commutes with the non-decreasing requantisation before it and is
exact on integers; a sum is the integer numerator of an average (the
division stays in the scale of the tensor and the next quantiser).

Hardware (:mod:`hwgen.hdl.pool`): one input word per cycle; a Pool's output word is
valid 1 cycle after a group's K-th input word, a GlobalPool's words 2 cycles after each
word of the frame's last pixel (:meth:`latency`).

Cost terms (P = PE, b = output bits): const, ``lanes`` P·b (+ ``mem``, the GlobalPool's
running-reduction memory of C/PE words).
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import HwgenError
from .base import Channelwise, Layer, register
from .estimate import mem_sum, memory
from .maxplus import asap, grouped

__all__ = ["Pool", "GlobalPool", "pool_dtype"]

MODES = ("max", "sum")


def pool_dtype(mode, idt, n):
    if mode == "max":
        return idt
    return smallest_dtype(n * idt.min, n * idt.max)


def _check(layer):
    if layer.mode not in MODES:
        raise HwgenError(f"layer {layer.name}: mode must be one of {', '.join(MODES)}, not {layer.mode!r}")
    layer.check_pe()
    want = pool_dtype(layer.mode, layer.idt, layer._n)
    if layer.mode == "sum" and (want.min < layer.odt.min or want.max > layer.odt.max):
        raise HwgenError(f"layer {layer.name}: output type {layer.odt} cannot hold sums of {layer._n} {layer.idt} values")


@register
@dataclass
class Pool(Channelwise, Layer):
    kind = "Pool"

    channels: int = 1
    kernel_elems: int = 1
    mode: str = "max"
    in_dt: DType = None
    out_dt: DType = None
    spatial: tuple = ()
    pe: int = 1

    @property
    def _n(self):
        return self.kernel_elems

    @property
    def in_shape(self):
        return tuple(self.spatial) + (self.kernel_elems * self.channels,)

    @property
    def out_shape(self):
        return tuple(self.spatial) + (self.channels,)

    def validate(self):
        _check(self)

    def execute(self, x):
        x = self.check_input(x)
        lead = x.shape[:-1]
        P, C, K = self.pe, self.channels, self.kernel_elems
        win = x.reshape(lead + (C // P, K, P))
        red = win.max(axis=-2) if self.mode == "max" else win.sum(axis=-2)
        return red.reshape(lead + (C,))

    def cycles(self):
        return self.pixels * (self.channels // self.pe) * self.kernel_elems

    def latency(self):
        """Cycles from the handshake of a group's K-th input word to its output word being valid."""
        return 1

    def schedule(self, arrivals, frames):
        """One input word per cycle; an output word :meth:`latency` cycles after every K-th."""
        return grouped(arrivals, self.kernel_elems, self.latency())

    def cost_terms(self):
        b = self.odt.bits
        return {"LUT": {"const": 1, "lanes": self.pe * b}, "FF": {"const": 1, "lanes": self.pe * b},
                "BRAM18": 0, "DSP": 0}


@register
@dataclass
class GlobalPool(Channelwise, Layer):
    kind = "GlobalPool"

    channels: int = 1
    ifm: tuple = (1, 1)
    mode: str = "sum"
    in_dt: DType = None
    out_dt: DType = None
    pe: int = 1

    @property
    def _n(self):
        return int(np.prod(self.ifm))

    @property
    def in_shape(self):
        return tuple(self.ifm) + (self.channels,)

    @property
    def out_shape(self):
        return (self.channels,)

    def validate(self):
        _check(self)

    def execute(self, x):
        x = self.check_input(x)
        n = x.shape[0]
        flat = x.reshape(n, -1, self.channels)
        return flat.max(axis=1) if self.mode == "max" else flat.sum(axis=1)

    def cycles(self):
        return self._n * self.channels // self.pe

    def latency(self):
        """Cycles from the handshake of a last-pixel input word to its output word being valid."""
        return 2

    def schedule(self, arrivals, frames):
        """One input word per cycle; the C/PE output words of a frame each :meth:`latency`
        cycles after the input word of the same channel group in the frame's last pixel."""
        r = asap(arrivals[0])
        g = self.channels // self.pe
        per_frame = self.in_words
        idx = (np.arange(frames)[:, None] * per_frame + per_frame - g + np.arange(g)[None, :]).ravel()
        return [r], [r[idx] + self.latency()]

    def cost_terms(self):
        b, P = self.odt.bits, self.pe
        G = self.channels // P
        mem = mem_sum(memory(P * b, G, "auto", rom=False) if G > 1 else memory(0, 0))
        return {"LUT": {"const": 1, "lanes": P * b, "mem": mem["LUT"]},
                "FF": {"const": 1, "lanes": P * b, "mem": mem["FF"]}, "BRAM18": mem["BRAM18"], "DSP": 0}
