"""VVAU: vector–vector unit of a depthwise convolution (+ thresholds).

Input: per output pixel, a depthwise-ordered window from a
:class:`SlidingWindow` with ``simd == pe``: words of ``pe`` channels, the K
kernel positions of a channel group before the next group.  Output channel
``c`` = ``Σ_k W[c, k] · x[k, c]``, then thresholds as in the MVAU.
Cycles per frame: ``pixels · (C / PE) · K``.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import FoldingError, HwgenError
from .base import Layer, apply_thresholds, register
from .estimate import calibrated

__all__ = ["VVAU"]


@register
@dataclass
class VVAU(Layer):
    kind = "VVAU"
    ARRAYS = ("weights", "thresholds")

    channels: int = 0
    kernel_elems: int = 1            # K = KH·KW
    in_dt: DType = None
    wdt: DType = None
    out_dt: DType = None
    weights: np.ndarray = None       # (C, K)
    thresholds: np.ndarray = None    # (C, N) or None
    out_base: int = 0
    spatial: tuple = ()
    pe: int = 1
    mem_style: str = "auto"
    # register stages of the datapath: "auto" (the default of hwgen.hdl.common.DEFAULT_PIPELINE),
    # "none"/0 (combinational stages) or k >= 1 (adder levels per stage); see hwgen.hdl.common.pipeline_levels
    pipeline: int | str = "auto"

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

    @property
    def out_step(self):
        return 2 if self.odt.name == "BIPOLAR" else 1

    @property
    def acc_range(self):
        W = self.weights.astype(np.int64)
        a, b = W * self.idt.min, W * self.idt.max
        return int(np.minimum(a, b).sum(1).min()), int(np.maximum(a, b).sum(1).max())

    @property
    def channel_acc_range(self):
        W = self.weights.astype(np.int64)
        a, b = W * self.idt.min, W * self.idt.max
        return np.minimum(a, b).sum(1), np.maximum(a, b).sum(1)

    @property
    def acc_dt(self):
        return smallest_dtype(*self.acc_range)

    @property
    def n_thresholds(self):
        return 0 if self.thresholds is None else int(self.thresholds.shape[1])

    def validate(self):
        self.check_rom_words()
        if self.weights is None or self.weights.shape != (self.channels, self.kernel_elems):
            raise HwgenError(f"layer {self.name}: weights must have shape ({self.channels}, {self.kernel_elems})")
        if not self.wdt.allowed(self.weights):
            raise HwgenError(f"layer {self.name}: weights outside {self.wdt}")
        if not isinstance(self.pe, int) or self.pe < 1 or self.channels % self.pe:
            raise FoldingError(f"layer {self.name}: PE={self.pe} must divide C={self.channels}")
        if self.thresholds is not None:
            T = self.thresholds
            if T.ndim != 2 or T.shape[0] != self.channels or np.any(np.diff(T, axis=1) < 0):
                raise HwgenError(f"layer {self.name}: thresholds must be ascending, of shape ({self.channels}, N)")

    def _unfold(self, x):
        """Depthwise window order -> (..., K, C)."""
        lead = x.shape[:-1]
        P, C, K = self.pe, self.channels, self.kernel_elems
        return x.reshape(lead + (C // P, K, P)).swapaxes(-3, -2).reshape(lead + (K, C))

    def execute(self, x):
        x = self.check_input(x)
        win = self._unfold(x)
        acc = (win * self.weights.T).sum(axis=-2)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.out_base, self.out_step)

    def cycles(self):
        return self.pixels * (self.channels // self.pe) * self.kernel_elems

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
