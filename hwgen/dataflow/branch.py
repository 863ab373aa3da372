"""Branching: a stream fork, an element-wise add of two streams, a channel concat.

* :class:`Duplicate` copies one stream to ``n_out`` consumers (in lock-step).
* :class:`AddStreams` reads two streams of the same shape and lanes and
  computes ``acc = ka·a + kb·b`` per element — both inputs re-aligned to a
  common integer grid, the multipliers exact integers — then, like an MVAU,
  thresholds (``y = base + step·Σ[acc ≥ T]``) or the raw accumulator.
  Cycles: ``words`` per frame.
* :class:`Concat` emits, per pixel, the channels of input 0, then input 1, …
  (all inputs share the data type and lanes).  Cycles: ``words`` per frame.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import FoldingError, HwgenError
from .base import Layer, apply_thresholds, register
from .estimate import calibrated

__all__ = ["Duplicate", "AddStreams", "Concat"]


@register
@dataclass
class Duplicate(Layer):
    kind = "Duplicate"
    shape: tuple = ()
    dt: DType = None
    lanes: int = 1
    n_out: int = 2

    @property
    def n_outputs(self):
        return self.n_out

    @property
    def idt(self):
        return self.dt

    odt = idt

    @property
    def in_shape(self):
        return tuple(self.shape)

    out_shape = in_shape

    @property
    def in_lanes(self):
        return self.lanes

    out_lanes = in_lanes

    def validate(self):
        if self.n_out < 2:
            raise HwgenError(f"layer {self.name}: a fork needs at least 2 outputs, not {self.n_out}")
        if self.shape[-1] % self.lanes:
            raise HwgenError(f"layer {self.name}: lanes={self.lanes} must divide C={self.shape[-1]}")

    def execute(self, x):
        x = self.check_input(x)
        return [x] * self.n_out

    def cycles(self):
        return self.in_words

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)


@register
@dataclass
class AddStreams(Layer):
    kind = "AddStreams"
    n_inputs = 2
    ARRAYS = ("thresholds",)

    shape: tuple = ()
    in_dt: DType = None          # input a
    in_dt_b: DType = None        # input b
    ka: int = 1
    kb: int = 1
    out_dt: DType = None
    thresholds: np.ndarray = None    # (C, N) or None
    out_base: int = 0
    pe: int = 1
    # register stages: "auto" (pipelined), "none"/0 (combinational stages) or k >= 1 (pipelined);
    # see hwgen.hdl.common.pipeline_levels
    pipeline: int | str = "auto"

    @property
    def idts(self):
        return (self.in_dt, self.in_dt_b)

    @property
    def in_shape(self):
        return tuple(self.shape)

    out_shape = in_shape

    @property
    def in_shapes(self):
        return (tuple(self.shape), tuple(self.shape))

    @property
    def in_lanes(self):
        return self.pe

    out_lanes = in_lanes

    @property
    def folding(self):
        return {"pe": self.pe}

    @property
    def channels(self):
        return self.shape[-1]

    @property
    def out_step(self):
        return 2 if self.odt.name == "BIPOLAR" else 1

    @property
    def acc_range(self):
        a = sorted((self.ka * self.in_dt.min, self.ka * self.in_dt.max))
        b = sorted((self.kb * self.in_dt_b.min, self.kb * self.in_dt_b.max))
        return a[0] + b[0], a[1] + b[1]

    @property
    def acc_dt(self):
        return smallest_dtype(*self.acc_range)

    @property
    def n_thresholds(self):
        return 0 if self.thresholds is None else int(self.thresholds.shape[1])

    def validate(self):
        self.check_rom_words()
        if not isinstance(self.pe, int) or self.pe < 1 or self.channels % self.pe:
            raise FoldingError(f"layer {self.name}: PE={self.pe} must divide C={self.channels}")
        if self.thresholds is not None:
            T = self.thresholds
            if T.ndim != 2 or T.shape[0] != self.channels or np.any(np.diff(T, axis=1) < 0):
                raise HwgenError(f"layer {self.name}: thresholds must be ascending, of shape ({self.channels}, N)")
            top = self.out_base + self.out_step * T.shape[1]
            if self.out_base < self.odt.min or top > self.odt.max:
                raise HwgenError(f"layer {self.name}: {T.shape[1]} thresholds from {self.out_base} do not fit {self.odt}")
        else:
            lo, hi = self.acc_range
            if lo < self.odt.min or hi > self.odt.max:
                raise HwgenError(f"layer {self.name}: output type {self.odt} cannot hold the sum range [{lo}, {hi}]")

    def execute(self, a, b):
        a = np.asarray(a, dtype=np.int64).reshape((len(a),) + self.in_shape)
        b = np.asarray(b, dtype=np.int64).reshape((len(b),) + self.in_shape)
        if not (self.in_dt.allowed(a) and self.in_dt_b.allowed(b)):
            raise HwgenError(f"layer {self.name}: input values outside {self.in_dt} / {self.in_dt_b}")
        acc = self.ka * a + self.kb * b
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.out_base, self.out_step)

    def cycles(self):
        return self.in_words

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)


@register
@dataclass
class Concat(Layer):
    kind = "Concat"
    ARRAYS = ()

    spatial: tuple = ()
    channels_in: tuple = ()      # channels of each input
    dt: DType = None
    lanes: int = 1

    @property
    def n_inputs(self):
        return len(self.channels_in)

    @property
    def idt(self):
        return self.dt

    odt = idt

    @property
    def in_shapes(self):
        return tuple(tuple(self.spatial) + (c,) for c in self.channels_in)

    @property
    def in_shape(self):
        return self.in_shapes[0]

    @property
    def out_shape(self):
        return tuple(self.spatial) + (sum(self.channels_in),)

    @property
    def in_lanes(self):
        return self.lanes

    out_lanes = in_lanes

    @property
    def in_words(self):
        return int(np.prod(self.out_shape)) // self.lanes

    def validate(self):
        if len(self.channels_in) < 2:
            raise HwgenError(f"layer {self.name}: a concat needs at least 2 inputs")
        for c in self.channels_in:
            if c % self.lanes:
                raise HwgenError(f"layer {self.name}: lanes={self.lanes} must divide every input's channels {list(self.channels_in)}")

    def execute(self, *xs):
        xs = [np.asarray(x, dtype=np.int64).reshape((len(x),) + s) for x, s in zip(xs, self.in_shapes)]
        return np.concatenate(xs, axis=-1)

    def cycles(self):
        return self.out_words

    def resources(self):
        """Calibrated synth_xilinx estimate (terms and coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)
