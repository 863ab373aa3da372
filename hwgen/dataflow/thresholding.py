"""Thresholding: standalone per-channel requantisation.

``y[..., c] = out_base + step · Σ_i [x[..., c] ≥ T[c, i]]``; ``pe`` channels per
cycle; cycles per frame ``pixels · C / PE``.

Hardware (:mod:`hwgen.hdl.thresholding`): one word in and out per cycle, each output
word valid :meth:`Thresholding.latency` cycles after its input word was taken.

Cost terms (P = PE, n = thresholds per channel, tb = threshold bits): LUT: const,
``thr``/``cthr`` P·n·tb comparators against varying/constant thresholds, ``mem`` the
threshold ROM; FF: const, ``io`` (input, output and, pipelined, comparison registers),
``thr`` (threshold words).
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import HwgenError
from .base import Channelwise, Layer, Thresholded, apply_thresholds, register
from .estimate import memory, threshold_columns
from .maxplus import step_through
from .pipeline import pipeline_levels

__all__ = ["Thresholding"]


@register
@dataclass
class Thresholding(Channelwise, Thresholded, Layer):
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
    # see hwgen.dataflow.pipeline
    pipeline: int | str = "auto"

    @property
    def in_shape(self):
        return tuple(self.spatial) + (self.channels,)

    out_shape = in_shape

    def validate(self):
        self.check_rom_words()
        T = self.thresholds
        if T is None or T.ndim != 2 or T.shape[0] != self.channels:
            raise HwgenError(f"layer {self.name}: thresholds must have shape ({self.channels}, N)")
        if np.any(np.diff(T, axis=1) < 0):
            raise HwgenError(f"layer {self.name}: thresholds must be ascending per channel")
        self.check_pe()
        top = self.out_base + self.out_step * T.shape[1]
        if self.out_base < self.odt.min or top > self.odt.max:
            raise HwgenError(f"layer {self.name}: {T.shape[1]} thresholds from {self.out_base} do not fit {self.odt}")

    def execute(self, x):
        x = self.check_input(x)
        return apply_thresholds(x, self.thresholds, self.out_base, self.out_step)

    def cycles(self):
        return self.pixels * self.channels // self.pe

    def latency(self):
        """Cycles from an input word's handshake to its output word being valid: 2, or 4
        pipelined (operand and comparison registers)."""
        return 4 if pipeline_levels(self) else 2

    def schedule(self, arrivals, frames):
        """One word in, one word out per cycle."""
        return step_through(arrivals, self.latency())

    def cost_terms(self):
        P, n, tb = self.pe, self.n_thresholds, self.idt.bits + 1
        tvar, tfrac = threshold_columns(self, P)
        tmem = memory(P * n * tb, self.channels // P, getattr(self, "mem_style", "auto"), cols=tvar)
        k = pipeline_levels(self)
        thr_ff = tmem["FF"] * (2 if k else 1) if tmem["style"] == "logic" else (P * n * tb if k else 0)
        return {"LUT": {"const": 1, "thr": P * n * tb * tfrac, "cthr": P * n * tb * (1 - tfrac),
                        "mem": tmem["LUT"] + tmem["LUTRAM"]},
                "FF": {"const": 1, "io": P * (self.idt.bits * (2 if k else 1) + self.odt.bits) + (P * n if k else 0),
                       "thr": thr_ff},
                "BRAM18": tmem["BRAM18"], "DSP": 0}
