"""LabelSelect: the indices of the ``k`` largest of ``C`` values (a classifier head).

Input: one frame of ``C`` values (channels-last, ``pe`` lanes per word).
Output: ``k`` class indices, largest value first; ties go to the lower index
(as numpy's stable argsort of the negated values and ONNX ArgMax/TopK).
Cycles per frame: ``C / PE`` (the ``k`` output words leave while the next
frame streams in).

Hardware (:mod:`hwgen.hdl.labelselect`): one input word per cycle into per-lane sorted
lists; the ``k`` output words of a frame leave one per cycle from :meth:`LabelSelect.latency`
cycles after its last input word, and the next frame's last word waits while more than
one of them is left.

Cost terms (P = PE, b = value bits, ib = index bits): LUT: const, ``lists``
P·min(k, C/P)·(b + ib + 1) (per lane a sorted list), ``tree`` (P − 1)·(b + ib) (the merge
of the lanes); FF: const, ``lists``, ``io`` P·b.
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import HwgenError
from .base import Channelwise, Layer, register
from .maxplus import NEG, asap

__all__ = ["LabelSelect"]


@register
@dataclass
class LabelSelect(Channelwise, Layer):
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
    def out_lanes(self):
        return 1

    def validate(self):
        if not 1 <= self.k <= self.channels:
            raise HwgenError(f"layer {self.name}: k={self.k} must be between 1 and C={self.channels}")
        self.check_pe()

    def execute(self, x):
        x = self.check_input(x)
        order = np.argsort(-x, axis=-1, kind="stable")
        return order[..., :self.k].astype(np.int64)

    def cycles(self):
        return max(self.channels // self.pe, self.k)

    def latency(self):
        """Cycles from the handshake of a frame's last input word to its first output word being valid."""
        return 2

    def schedule(self, arrivals, frames):
        """Frame by frame: the input words one per cycle, the last one not before the previous
        frame's drain is down to one word; then the ``k`` outputs on consecutive cycles."""
        a, n, k = arrivals[0], self.in_words, self.k
        reads, outs = np.empty(frames * n), []
        prev, drain_start = NEG, NEG
        for f in range(frames):
            seg = a[f * n:(f + 1) * n].copy()
            seg[0] = max(seg[0], prev + 1)
            seg[-1] = max(seg[-1], drain_start + k - 2)   # waits while the previous frame's drain has > 1 word
            r = asap(seg)
            reads[f * n:(f + 1) * n] = r
            prev = r[-1]
            drain_start = r[-1] + self.latency()
            outs.append(drain_start + np.arange(k))
        return [reads], [np.concatenate(outs)]

    def cost_terms(self):
        b, ib, P = self.idt.bits, self.odt.bits, self.pe
        lists = P * min(self.k, self.channels // P) * (b + ib + 1)      # per lane: a sorted list
        return {"LUT": {"const": 1, "lists": lists, "tree": (P - 1) * (b + ib)},
                "FF": {"const": 1, "lists": lists, "io": P * b}, "BRAM18": 0, "DSP": 0}
