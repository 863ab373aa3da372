"""Requant: a proven-exact fixed-point requantiser for wide outputs.

``y[..., c] = clip(floor((x·M[c] + B[c]) / 2^S), lo, hi)`` — used instead of
thresholds where an output has more than 255 levels; lowering proves, level
by level, that it equals the segment's threshold function over the whole
input range before choosing it.  ``pe`` channels per cycle; cycles per frame
``pixels · C / PE``.  ``x·M + B`` stays below 2^100 (checked in ``validate``):
exact products wider than 64 bits are allowed where the proof needs them.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import FoldingError, HwgenError
from .base import Layer, register
from .estimate import calibrated

__all__ = ["Requant", "requant_reference"]


def requant_reference(x, mult, bias, shift, lo, hi):
    """Exact integer reference, in Python integers (products may exceed 64 bits)."""
    x = np.asarray(x, dtype=np.int64).astype(object)
    y = (x * np.asarray(mult).astype(object) + np.asarray(bias).astype(object)) >> int(shift)   # floor division
    return np.clip(y, lo, hi).astype(np.int64)


@register
@dataclass
class Requant(Layer):
    kind = "Requant"
    ARRAYS = ()                  # mult/bias may exceed 64 bits: stored as decimal strings in model.json

    channels: int = 1
    in_dt: DType = None
    out_dt: DType = None
    mult: tuple = ()             # (C,) Python ints
    bias: tuple = ()             # (C,) Python ints
    shift: int = 0
    lo: int = 0
    hi: int = 0
    spatial: tuple = ()
    pe: int = 1
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
    def product_range(self):
        M = np.array([int(v) for v in self.mult], dtype=object)
        B = np.array([int(v) for v in self.bias], dtype=object)
        ends = [int(v) for v in list(M * self.idt.min + B) + list(M * self.idt.max + B)]
        return min(ends), max(ends)

    def validate(self):
        if not isinstance(self.pe, int) or self.pe < 1 or self.channels % self.pe:
            raise FoldingError(f"layer {self.name}: PE={self.pe} must divide C={self.channels}")
        for a in ("mult", "bias"):
            v = getattr(self, a)
            if v is None or len(v) != self.channels:
                raise HwgenError(f"layer {self.name}: {a} must have {self.channels} values, not {len(v) if v is not None else None}")
        lo, hi = self.product_range
        if max(abs(lo), abs(hi)) >= 1 << 100:
            raise HwgenError(f"layer {self.name}: x·M + B must stay below 2^100, not [{lo}, {hi}]")
        if not (0 <= self.shift < 100):
            raise HwgenError(f"layer {self.name}: shift must be in 0..99, not {self.shift}")
        if self.lo < self.odt.min or self.hi > self.odt.max or self.lo > self.hi:
            raise HwgenError(f"layer {self.name}: clip range [{self.lo}, {self.hi}] must fit {self.odt}")

    def execute(self, x):
        x = self.check_input(x)
        return requant_reference(x, [int(v) for v in self.mult], [int(v) for v in self.bias], self.shift, self.lo, self.hi)

    def to_json(self):
        attrs, arrays = super().to_json()
        attrs["mult"] = [str(int(v)) for v in self.mult]
        attrs["bias"] = [str(int(v)) for v in self.bias]
        return attrs, arrays

    @classmethod
    def from_json(cls, attrs, arrays):
        layer = super().from_json(attrs, arrays)
        layer.mult = tuple(int(v) for v in attrs["mult"])
        layer.bias = tuple(int(v) for v in attrs["bias"])
        return layer

    def cycles(self):
        return self.pixels * self.channels // self.pe

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
