"""FIFO and WidthConverter: stream plumbing that leaves values unchanged.

Cost terms (w = word bits): FIFO — const, ``ptr`` pointer bits, ``width`` w, ``regs``
(depth ≤ 2: registers), ``mem`` (deeper: a RAM). WidthConverter — const, ``buf``
lcm(in, out) lanes · bits (its two banks).
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import HwgenError
from .base import Layer, register
from .estimate import log2, mem_sum, memory
from .maxplus import NEG, asap, step_through

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

    def latency(self):
        """Cycles from a word's input handshake to it being valid on the output of an empty FIFO
        deeper than 2 (memory and output register); a register or skid buffer (depth ≤ 2)
        takes 1. The schedule sizes FIFOs before it knows their depths, so it counts 2, an
        upper bound."""
        return 2

    def schedule(self, arrivals, frames):
        """One word in, one word out per cycle."""
        return step_through(arrivals, self.latency())

    def cost_terms(self):
        w = self.lanes * self.dt.bits
        if self.depth <= 2:
            return {"LUT": {"const": 1, "width": w}, "FF": {"const": 1, "regs": self.depth * w},
                    "BRAM18": 0, "DSP": 0}
        mem = mem_sum(memory(w, self.depth, "auto", rom=False))
        ptr = log2(self.depth + 1)
        return {"LUT": {"const": 1, "ptr": ptr, "mem": mem["LUT"]},
                "FF": {"const": 1, "ptr": ptr, "width": w, "mem": mem["FF"]}, "BRAM18": mem["BRAM18"], "DSP": 0}


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

    def latency(self):
        """Cycles from the handshake of a block's last input word to its first output word being
        valid: 1 (the bank-full flag is a register), 0 for equal lane counts (a wire)."""
        return 0 if self.lanes_in == self.lanes_out else 1

    def schedule(self, arrivals, frames):
        """Blocks of lcm(in, out) lanes: the write side fills bank ``b mod 2`` with block ``b``
        once block ``b − 2`` has left; the read side emits block ``b`` :meth:`latency` cycles after
        its last word was written, after block ``b − 1``."""
        lin, lout = self.lanes_in, self.lanes_out
        a = arrivals[0]
        if lin == lout:
            return step_through(arrivals, self.latency())
        L = math.lcm(lin, lout)
        nin, nout = L // lin, L // lout
        blocks = a.size // nin
        # The two sides are coupled only when the output is the slower side: iterate to the
        # fixed point (each pass is vectorised; times only grow, and a few passes settle).
        gate = np.full(a.size, NEG)
        for _ in range(4 * blocks + 2):
            reads = asap(np.maximum(a, gate))
            last_in = reads[nin - 1::nin]
            outs = asap(np.repeat(last_in + self.latency(), nout))
            ends = outs[nout - 1::nout]
            new_gate = np.full(a.size, NEG)
            new_gate[2 * nin::nin] = ends[:-2] + 1 if blocks > 2 else new_gate[2 * nin::nin]
            if np.array_equal(new_gate, gate):
                break
            gate = new_gate
        return [reads], [outs]

    def cost_terms(self):
        buf = math.lcm(self.lanes_in, self.lanes_out) * self.dt.bits
        return {"LUT": {"const": 1, "buf": buf}, "FF": {"const": 1, "buf": buf}, "BRAM18": 0, "DSP": 0}
