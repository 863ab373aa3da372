"""Thresholding: standalone per-channel requantisation.

``y[..., c] = out_base + step · Σ_i [x[..., c] ≥ T[c, i]]``; ``pe`` channels per
cycle; cycles per frame ``pixels · C / PE``.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import FoldingError, HwgenError
from .base import Layer, apply_thresholds, register
from .estimate import calibrated

__all__ = ["Thresholding"]


@register
@dataclass
class Thresholding(Layer):
    kind = "Thresholding"
    ARRAYS = ("thresholds",)

    channels: int = 0
    in_dt: DType = None
    out_dt: DType = None
    thresholds: np.ndarray = None       # (C, N) int64
    out_base: int = 0
    spatial: tuple = ()
    pe: int = 1
    mem_style: str = "auto"
    # register stages: "auto" (pipelined), "none"/0 (combinational stages) or k >= 1 (pipelined);
    # see hwgen.hdl.common.pipeline_levels
    pipeline: int | str = "auto"

    @property
    def in_shape(self):
        return tuple(self.spatial) + (self.channels,)

    out_shape = in_shape

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
    def n_thresholds(self):
        return int(self.thresholds.shape[1])

    def validate(self):
        self.check_rom_words()
        T = self.thresholds
        if T is None or T.ndim != 2 or T.shape[0] != self.channels:
            raise HwgenError(f"layer {self.name}: thresholds must have shape ({self.channels}, N)")
        if np.any(np.diff(T, axis=1) < 0):
            raise HwgenError(f"layer {self.name}: thresholds must be ascending per channel")
        if not isinstance(self.pe, int) or self.pe < 1 or self.channels % self.pe:
            raise FoldingError(f"layer {self.name}: PE={self.pe} must divide C={self.channels}")
        top = self.out_base + self.out_step * T.shape[1]
        if self.out_base < self.odt.min or top > self.odt.max:
            raise HwgenError(f"layer {self.name}: {T.shape[1]} thresholds from {self.out_base} do not fit {self.odt}")

    def execute(self, x):
        x = self.check_input(x)
        return apply_thresholds(x, self.thresholds, self.out_base, self.out_step)

    def cycles(self):
        return self.pixels * self.channels // self.pe

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
