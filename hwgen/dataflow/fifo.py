"""FIFO and WidthConverter: stream plumbing that leaves values unchanged."""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import HwgenError
from .base import Layer, register
from .estimate import calibrated

__all__ = ["FIFO", "WidthConverter"]


@dataclass
class _Passthrough(Layer):
    shape: tuple = ()
    dt: DType = None

    @property
    def idt(self):
        return self.dt

    @property
    def odt(self):
        return self.dt

    @property
    def in_shape(self):
        return tuple(self.shape)

    @property
    def out_shape(self):
        return tuple(self.shape)

    def execute(self, x):
        return self.check_input(x)


@register
@dataclass
class FIFO(_Passthrough):
    kind = "FIFO"
    lanes: int = 1
    depth: int = 2

    @property
    def in_lanes(self):
        return self.lanes

    out_lanes = in_lanes

    def validate(self):
        if self.depth < 1:
            raise HwgenError(f"layer {self.name}: FIFO depth must be at least 1, not {self.depth}")
        if self.shape[-1] % self.lanes:
            raise HwgenError(f"layer {self.name}: lanes={self.lanes} must divide C={self.shape[-1]}")

    def cycles(self):
        return 0

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)


@register
@dataclass
class WidthConverter(_Passthrough):
    kind = "WidthConverter"
    lanes_in: int = 1
    lanes_out: int = 1

    @property
    def in_lanes(self):
        return self.lanes_in

    @property
    def out_lanes(self):
        return self.lanes_out

    def validate(self):
        c = self.shape[-1]
        for lanes in (self.lanes_in, self.lanes_out):
            if lanes < 1 or c % lanes:
                raise HwgenError(f"layer {self.name}: lanes={lanes} must divide C={c}")

    def cycles(self):
        pixels = int(np.prod(self.shape[:-1])) if len(self.shape) > 1 else 1
        c = self.shape[-1]
        return pixels * max(c // self.lanes_in, c // self.lanes_out)

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
