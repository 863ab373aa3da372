"""MVAU: matrix–vector–activation unit (integer matrix × vector + thresholds).

``acc[p, c] = Σ_j W[c, j] · x[p, j]`` for every pixel ``p`` (one pixel for a
fully connected layer), then, when thresholds are present,
``y = out_base + step · Σ_i [acc ≥ T[c, i]]`` (step 2 for a BIPOLAR output,
else 1); without thresholds the accumulator itself is the output.

Folding: ``pe`` output channels and ``simd`` input elements per cycle; the
input stream carries ``simd`` lanes, the output stream ``pe`` lanes. Cycles per
frame: ``(MH/PE)·(MW/SIMD)·pixels``.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import FoldingError, HwgenError
from .base import Layer, apply_thresholds, register
from .estimate import calibrated

__all__ = ["MVAU", "accumulator_range"]


def accumulator_range(weights, idt):
    """Exact per-channel (min, max) of ``W @ x`` over every x of type ``idt``."""
    W = np.asarray(weights, dtype=np.int64)
    lo_x, hi_x = idt.min, idt.max
    a, b = W * lo_x, W * hi_x
    return np.minimum(a, b).sum(axis=1), np.maximum(a, b).sum(axis=1)


@register
@dataclass
class MVAU(Layer):
    kind = "MVAU"
    ARRAYS = ("weights", "thresholds")

    mw: int = 0
    mh: int = 0
    in_dt: DType = None
    wdt: DType = None
    out_dt: DType = None
    weights: np.ndarray = None          # (MH, MW) int64
    thresholds: np.ndarray = None       # (MH, N) int64, ascending per row, or None
    out_base: int = 0
    spatial: tuple = ()
    pe: int = 1
    simd: int = 1
    mem_style: str = "auto"
    # register stages of the datapath: "auto" (the default of hwgen.hdl.common.DEFAULT_PIPELINE),
    # "none"/0 (combinational stages) or k >= 1 (adder levels per stage); see hwgen.hdl.common.pipeline_levels
    pipeline: int | str = "auto"

    # ---------------------------------------------------------------
    @property
    def in_shape(self):
        return tuple(self.spatial) + (self.mw,)

    @property
    def out_shape(self):
        return tuple(self.spatial) + (self.mh,)

    @property
    def in_lanes(self):
        return self.simd

    @property
    def out_lanes(self):
        return self.pe

    @property
    def folding(self):
        return {"pe": self.pe, "simd": self.simd}

    @property
    def out_step(self):
        return 2 if self.odt.name == "BIPOLAR" else 1

    @property
    def acc_range(self):
        lo, hi = accumulator_range(self.weights, self.idt)
        return int(lo.min()), int(hi.max())

    @property
    def acc_dt(self):
        return smallest_dtype(*self.acc_range)

    @property
    def n_thresholds(self):
        return 0 if self.thresholds is None else int(self.thresholds.shape[1])

    # ---------------------------------------------------------------
    def validate(self):
        self.check_rom_words()
        W = self.weights
        if W is None or W.shape != (self.mh, self.mw):
            raise HwgenError(f"layer {self.name}: weights must have shape ({self.mh}, {self.mw}), not {None if W is None else W.shape}")
        if not self.wdt.allowed(W):
            raise HwgenError(f"layer {self.name}: weights outside {self.wdt}")
        for p, n, what in ((self.pe, self.mh, "MH"), (self.simd, self.mw, "MW")):
            if not isinstance(p, int) or p < 1 or n % p:
                pname = "PE" if what == "MH" else "SIMD"
                raise FoldingError(f"layer {self.name}: {pname}={p} must divide {what}={n}")
        if self.thresholds is not None:
            T = self.thresholds
            if T.ndim != 2 or T.shape[0] != self.mh:
                raise HwgenError(f"layer {self.name}: thresholds must have shape ({self.mh}, N), not {T.shape}")
            if np.any(np.diff(T, axis=1) < 0):
                raise HwgenError(f"layer {self.name}: thresholds must be ascending per channel")
            top = self.out_base + self.out_step * T.shape[1]
            if self.out_base < self.odt.min or top > self.odt.max:
                raise HwgenError(f"layer {self.name}: {T.shape[1]} thresholds from {self.out_base} do not fit {self.odt}")
        else:
            lo, hi = self.acc_range
            if lo < self.odt.min or hi > self.odt.max:
                raise HwgenError(f"layer {self.name}: output type {self.odt} cannot hold the accumulator range [{lo}, {hi}]")

    def execute(self, x):
        x = self.check_input(x)
        acc = x @ self.weights.T
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.out_base, self.out_step)

    def cycles(self):
        return (self.mh // self.pe) * (self.mw // self.simd) * self.pixels

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
