"""Requant: a proven-exact fixed-point requantiser for wide outputs.

``y[..., c] = clip(floor((x·M[c] + B[c]) / 2^S), lo, hi)`` — used instead of
thresholds where an output has more than 255 levels; lowering proves, level
by level, that it equals the segment's threshold function over the whole
input range before choosing it.  ``pe`` channels per cycle; cycles per frame
``pixels · C / PE``.  ``x·M + B`` stays below 2^100 (checked in ``validate``):
exact products wider than 64 bits are allowed where the proof needs them.

Hardware (:mod:`hwgen.hdl.requant`): one word in and out per cycle, each output word
valid :meth:`Requant.latency` cycles after its input word was taken.

Cost terms (P = PE, xb = input bits, mb = multiplier bits, pb = sum bits): LUT: const,
``mul`` P·xb·mb (when not in DSPs), ``add`` P·pb, ``mem`` (per-channel parameter ROM);
FF: const, ``io``, ``mem``; DSP48E1 per lane when the product is wide enough.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import HwgenError
from .base import Channelwise, Layer, register
from .estimate import mem_sum, memory
from .maxplus import step_through
from .pipeline import pipeline_levels

__all__ = ["Requant", "requant_reference"]


def requant_reference(x, mult, bias, shift, lo, hi):
    """Exact integer reference, in Python integers (products may exceed 64 bits)."""
    x = np.asarray(x, dtype=np.int64).astype(object)
    y = (x * np.asarray(mult).astype(object) + np.asarray(bias).astype(object)) >> int(shift)   # floor division
    return np.clip(y, lo, hi).astype(np.int64)


@register
@dataclass
class Requant(Channelwise, Layer):
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
    # see hwgen.dataflow.pipeline
    pipeline: int | str = "auto"

    @property
    def in_shape(self):
        return tuple(self.spatial) + (self.channels,)

    out_shape = in_shape

    @property
    def product_range(self):
        M = np.array([int(v) for v in self.mult], dtype=object)
        B = np.array([int(v) for v in self.bias], dtype=object)
        ends = [int(v) for v in list(M * self.idt.min + B) + list(M * self.idt.max + B)]
        return min(ends), max(ends)

    def validate(self):
        self.check_pe()
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

    def latency(self):
        """Cycles from an input word's handshake to its output word being valid: 3, or 5
        pipelined (operand and sum registers)."""
        return 5 if pipeline_levels(self) else 3

    def schedule(self, arrivals, frames):
        """One word in, one word out per cycle."""
        return step_through(arrivals, self.latency())

    def cost_terms(self):
        P = self.pe
        mb = int(max(abs(int(m)) for m in self.mult)).bit_length() + 1
        xb = self.idt.bits
        lo, hi = self.product_range
        pb = max(abs(lo), abs(hi)).bit_length() + 1
        dsp = P * math.ceil(xb / 25) * math.ceil(mb / 18) if (xb >= 2 and mb >= 2 and xb + mb >= 9) else 0
        G = self.channels // P
        mem = mem_sum(memory(P * (mb + pb), G, getattr(self, "mem_style", "auto")) if G > 1 else memory(0, 0))
        return {"LUT": {"const": 1, "mul": 0 if dsp else P * xb * mb, "add": P * pb, "mem": mem["LUT"]},
                "FF": {"const": 1, "io": P * (pb + self.odt.bits), "mem": mem["FF"]},
                "BRAM18": mem["BRAM18"], "DSP": int(dsp)}
