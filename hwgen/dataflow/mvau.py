"""MVAU: matrix–vector–activation unit (integer matrix × vector + thresholds).

``acc[p, c] = Σ_j W[c, j] · x[p, j]`` for every pixel ``p`` (one pixel for a
fully connected layer), then, when thresholds are present,
``y = out_base + step · Σ_i [acc ≥ T[c, i]]`` (step 2 for a BIPOLAR output,
else 1); without thresholds the accumulator itself is the output.

Folding: ``pe`` output channels and ``simd`` input elements per cycle; the
input stream carries ``simd`` lanes, the output stream ``pe`` lanes. Cycles per
frame: ``(MH/PE)·(MW/SIMD)·pixels``.

Hardware (:mod:`hwgen.hdl.mvau`): steps ``(pixel, nf, sf)``, one per cycle, reading an
input word only when ``nf == 0`` (an input buffer replays the pixel's words for the
other neuron folds); the output word of ``(pixel, nf)`` is valid :meth:`MVAU.latency`
cycles after its step ``sf = SF − 1``.
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import FoldingError, HwgenError
from .base import Layer, register
from .estimate import memory
from .mac import MACUnit
from .maxplus import asap, need_after
from .pipeline import pipeline_levels, tree_split_points

__all__ = ["MVAU", "IMPLS", "accumulator_range"]

#: the implementations of an MVAU (its ``impl``): ``auto`` (constant weights, a
#: :class:`~hwgen.dataflow.cmvau.ConstMVAU`, when fully unrolled and small enough), ``rom`` (weights in
#: ROMs, always), ``const`` (constant weights: the layer is fully unrolled)
IMPLS = ("auto", "rom", "const")


def accumulator_range(weights, idt):
    """Exact per-channel (min, max) of ``W @ x`` over every x of type ``idt``."""
    W = np.asarray(weights, dtype=np.int64)
    lo_x, hi_x = idt.min, idt.max
    a, b = W * lo_x, W * hi_x
    return np.minimum(a, b).sum(axis=1), np.maximum(a, b).sum(axis=1)


@register
@dataclass
class MVAU(MACUnit, Layer):
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
    # register stages of the datapath: "auto" (the default of hwgen.dataflow.pipeline.DEFAULT_PIPELINE),
    # "none"/0 (combinational stages) or k >= 1 (adder levels per stage); see hwgen.dataflow.pipeline
    pipeline: int | str = "auto"
    impl: str = "auto"                  # one of IMPLS

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
    def acc_range(self):
        lo, hi = accumulator_range(self.weights, self.idt)
        return int(lo.min()), int(hi.max())

    # ---------------------------------------------------------------
    def validate(self):
        if self.impl not in IMPLS:
            raise HwgenError(f"layer {self.name}: impl must be one of {', '.join(IMPLS)}, not {self.impl!r}")
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
        return self.threshold_output(x @ self.weights.T)

    def cycles(self):
        return (self.mh // self.pe) * (self.mw // self.simd) * self.pixels

    def tree_splits(self):
        """Adder-tree levels after which the SIMD-input dot products are registered (pipelined
        only; the accumulator counts as one more level, two after an XNOR popcount)."""
        return tree_split_points(self.simd, pipeline_levels(self), extra=2 if self.xnor else 1)

    def schedule(self, arrivals, frames):
        """Steps ``(pixel, nf, sf)``, one per cycle; step ``(p, 0, s)`` needs input word
        ``p·SF + s``; an output word :meth:`latency` cycles after each ``sf = SF − 1``."""
        nf, sf, px = self.mh // self.pe, self.mw // self.simd, self.pixels
        steps = np.arange(frames * px * nf * sf)
        p, rest = np.divmod(steps, nf * sf)
        f_, s_ = np.divmod(rest, sf)
        need = np.where(f_ == 0, p * sf + s_, -1)
        t = asap(need_after(arrivals[0], need))
        reads = t[need >= 0]
        outs = t[s_ == sf - 1] + self.latency()
        return [reads], [outs]

    def cost_terms(self):
        """The MAC terms (:mod:`hwgen.dataflow.mac`) of PE lanes of SIMD products, with an input
        buffer (``mem``, LUTRAM) of SF words when there is more than one neuron fold."""
        P, Q = self.pe, self.simd
        NF, SF = self.mh // P, self.mw // Q
        ibuf = memory(Q * self.idt.bits, SF, "auto", rom=False) if NF > 1 else None
        lut, ff, bram, dsp = self.mac_terms(Q, Q, NF * SF, P * Q * self.wdt.bits, NF, ibuf)
        return {"LUT": lut, "FF": ff, "BRAM18": bram, "DSP": dsp}
