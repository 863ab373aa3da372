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
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import FoldingError, HwgenError
from .base import Layer, register
from .estimate import calibrated

__all__ = ["Pool", "GlobalPool", "pool_dtype"]

MODES = ("max", "sum")


def pool_dtype(mode, idt, n):
    if mode == "max":
        return idt
    return smallest_dtype(n * idt.min, n * idt.max)


def _check(layer):
    if layer.mode not in MODES:
        raise HwgenError(f"layer {layer.name}: mode must be one of {', '.join(MODES)}, not {layer.mode!r}")
    if not isinstance(layer.pe, int) or layer.pe < 1 or layer.channels % layer.pe:
        raise FoldingError(f"layer {layer.name}: PE={layer.pe} must divide C={layer.channels}")
    want = pool_dtype(layer.mode, layer.idt, layer._n)
    if layer.mode == "sum" and (want.min < layer.odt.min or want.max > layer.odt.max):
        raise HwgenError(f"layer {layer.name}: output type {layer.odt} cannot hold sums of {layer._n} {layer.idt} values")


@register
@dataclass
class Pool(Layer):
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

    @property
    def in_lanes(self):
        return self.pe

    out_lanes = in_lanes

    @property
    def folding(self):
        return {"pe": self.pe}

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

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)


@register
@dataclass
class GlobalPool(Layer):
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

    @property
    def in_lanes(self):
        return self.pe

    out_lanes = in_lanes

    @property
    def folding(self):
        return {"pe": self.pe}

    def validate(self):
        _check(self)

    def execute(self, x):
        x = self.check_input(x)
        n = x.shape[0]
        flat = x.reshape(n, -1, self.channels)
        return flat.max(axis=1) if self.mode == "max" else flat.sum(axis=1)

    def cycles(self):
        return self._n * self.channels // self.pe

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
