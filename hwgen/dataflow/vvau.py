"""VVAU: vector–vector unit of a depthwise convolution (+ thresholds).

Input: per output pixel, a depthwise-ordered window from a
:class:`SlidingWindow` with ``simd == pe``: words of ``pe`` channels, the K
kernel positions of a channel group before the next group.  Output channel
``c`` = ``Σ_k W[c, k] · x[k, c]``, then thresholds as in the MVAU.
Cycles per frame: ``pixels · (C / PE) · K``.

Hardware (:mod:`hwgen.hdl.vvau`): one input word per cycle; a group's output word is
valid :meth:`VVAU.latency` cycles after its K-th input word.
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import HwgenError
from .base import Channelwise, Layer, register
from .estimate import coefficients
from .mac import MACUnit
from .maxplus import grouped

__all__ = ["VVAU"]


@register
@dataclass
class VVAU(Channelwise, MACUnit, Layer):
    kind = "VVAU"
    ARRAYS = ("weights", "thresholds")

    channels: int = 0
    kernel_elems: int = 1            # K = KH·KW
    in_dt: DType = None
    wdt: DType = None
    out_dt: DType = None
    weights: np.ndarray = None       # (C, K)
    thresholds: np.ndarray = None    # (C, N) or None
    out_base: int = 0
    spatial: tuple = ()
    pe: int = 1
    mem_style: str = "auto"
    # register stages of the datapath: "auto" (the default of hwgen.dataflow.pipeline.DEFAULT_PIPELINE),
    # "none"/0 (combinational stages) or k >= 1 (adder levels per stage); see hwgen.dataflow.pipeline
    pipeline: int | str = "auto"

    @property
    def in_shape(self):
        return tuple(self.spatial) + (self.kernel_elems * self.channels,)

    @property
    def out_shape(self):
        return tuple(self.spatial) + (self.channels,)

    @property
    def acc_range(self):
        W = self.weights.astype(np.int64)
        a, b = W * self.idt.min, W * self.idt.max
        return int(np.minimum(a, b).sum(1).min()), int(np.maximum(a, b).sum(1).max())

    @property
    def channel_acc_range(self):
        W = self.weights.astype(np.int64)
        a, b = W * self.idt.min, W * self.idt.max
        return np.minimum(a, b).sum(1), np.maximum(a, b).sum(1)

    def validate(self):
        self.check_rom_words()
        if self.weights is None or self.weights.shape != (self.channels, self.kernel_elems):
            raise HwgenError(f"layer {self.name}: weights must have shape ({self.channels}, {self.kernel_elems})")
        if not self.wdt.allowed(self.weights):
            raise HwgenError(f"layer {self.name}: weights outside {self.wdt}")
        self.check_pe()
        if self.thresholds is not None:
            T = self.thresholds
            if T.ndim != 2 or T.shape[0] != self.channels or np.any(np.diff(T, axis=1) < 0):
                raise HwgenError(f"layer {self.name}: thresholds must be ascending, of shape ({self.channels}, N)")

    def _unfold(self, x):
        """Depthwise window order -> (..., K, C)."""
        lead = x.shape[:-1]
        P, C, K = self.pe, self.channels, self.kernel_elems
        return x.reshape(lead + (C // P, K, P)).swapaxes(-3, -2).reshape(lead + (K, C))

    def execute(self, x):
        x = self.check_input(x)
        win = self._unfold(x)
        return self.threshold_output((win * self.weights.T).sum(axis=-2))

    def cycles(self):
        return self.pixels * (self.channels // self.pe) * self.kernel_elems

    def schedule(self, arrivals, frames):
        """One input word per cycle; an output word :meth:`latency` cycles after every K-th."""
        return grouped(arrivals, self.kernel_elems, self.latency())

    def cost_terms(self):
        """The MAC terms (:mod:`hwgen.dataflow.mac`) with Q = 1 product per lane, weighted by the
        MVAU's coefficients: one ``core`` term per resource, plus a const (VVAU designs are too
        few to fit every term on their own)."""
        P, K = self.pe, self.kernel_elems
        lut, ff, bram, dsp = self.mac_terms(1, P, (self.channels // P) * K, P * self.wdt.bits, self.channels // P)
        mv = coefficients("MVAU")
        core = {r: sum(mv[r].get(t, 0.0) * v for t, v in d.items() if t != "const") for r, d in (("LUT", lut), ("FF", ff))}
        return {"LUT": {"const": 1, "core": core["LUT"]}, "FF": {"const": 1, "core": core["FF"]}, "BRAM18": bram, "DSP": dsp}
