"""LabelSelect: the indices of the ``k`` largest of ``C`` values (a classifier head).

Input: one frame of ``C`` values (channels-last, ``pe`` lanes per word).
Output: ``k`` class indices, largest value first; ties go to the lower index
(as numpy's stable argsort of the negated values and ONNX ArgMax/TopK).
Cycles per frame: ``C / PE`` (the ``k`` output words leave while the next
frame streams in).
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import FoldingError, HwgenError
from .base import Layer, register
from .estimate import calibrated

__all__ = ["LabelSelect"]


@register
@dataclass
class LabelSelect(Layer):
    kind = "LabelSelect"

    channels: int = 1
    k: int = 1
    in_dt: DType = None
    pe: int = 1

    @property
    def odt(self):
        return smallest_dtype(0, self.channels - 1)

    @property
    def in_shape(self):
        return (self.channels,)

    @property
    def out_shape(self):
        return (self.k,)

    @property
    def in_lanes(self):
        return self.pe

    @property
    def out_lanes(self):
        return 1

    @property
    def folding(self):
        return {"pe": self.pe}

    def validate(self):
        if not 1 <= self.k <= self.channels:
            raise HwgenError(f"layer {self.name}: k={self.k} must be between 1 and C={self.channels}")
        if not isinstance(self.pe, int) or self.pe < 1 or self.channels % self.pe:
            raise FoldingError(f"layer {self.name}: PE={self.pe} must divide C={self.channels}")

    def execute(self, x):
        x = self.check_input(x)
        order = np.argsort(-x, axis=-1, kind="stable")
        return order[..., :self.k].astype(np.int64)

    def cycles(self):
        return max(self.channels // self.pe, self.k)

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
