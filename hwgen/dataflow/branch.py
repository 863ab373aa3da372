"""Branching: a stream fork, an element-wise add of two streams, a channel concat.

* :class:`Duplicate` copies one stream to ``n_out`` consumers (in lock-step).
* :class:`AddStreams` reads two streams of the same shape and lanes and
  computes ``acc = ka·a + kb·b`` per element — both inputs re-aligned to a
  common integer grid, the multipliers exact integers — then, like an MVAU,
  thresholds (``y = base + step·Σ[acc ≥ T]``) or the raw accumulator.
  Cycles: ``words`` per frame.
* :class:`Concat` emits, per pixel, the channels of input 0, then input 1, …
  (all inputs share the data type and lanes).  Cycles: ``words`` per frame.

Hardware (:mod:`hwgen.hdl.branch`): all three move one word per cycle; the fork's
outputs are its input (no register), the join's output word is valid
:meth:`AddStreams.latency` cycles after it took both input words, the concat's 1 cycle
after it took the input word.

Cost terms: Duplicate — const, ``outs`` (one per output). AddStreams (P = PE, acc =
accumulator bits, n = thresholds per channel) — LUT: const, ``add`` P·acc, ``mul``
(constant multipliers ka, kb not in DSPs), ``thr``/``cthr``, ``mem``; FF: const, ``io``,
``acc``, ``thr``; DSP48E1: P per non-power-of-two k with bits(input) + bits(k) ≥ 9.
Concat — const, ``width`` (LUT: the input multiplexer).
"""

from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, smallest_dtype
from ..errors import HwgenError
from .base import Channelwise, Layer, Thresholded, register
from .estimate import memory, rule, threshold_columns
from .maxplus import asap
from .pipeline import pipeline_levels

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

    def latency(self):
        """Cycles from an input word being valid to it being valid on the outputs: 0."""
        return 0

    def schedule(self, arrivals, frames):
        """One word per cycle, on every output in the cycle it is taken."""
        r = asap(arrivals[0])
        return [r], [r + self.latency() for _ in range(self.n_out)]

    def cost_terms(self):
        return {"LUT": {"const": 1, "outs": self.n_out}, "FF": {"const": 1, "outs": self.n_out}, "BRAM18": 0, "DSP": 0}


@register
@dataclass
class AddStreams(Channelwise, Thresholded, Layer):
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
    # see hwgen.dataflow.pipeline
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
    def channels(self):
        return self.shape[-1]

    @property
    def acc_range(self):
        a = sorted((self.ka * self.in_dt.min, self.ka * self.in_dt.max))
        b = sorted((self.kb * self.in_dt_b.min, self.kb * self.in_dt_b.max))
        return a[0] + b[0], a[1] + b[1]

    @property
    def acc_dt(self):
        return smallest_dtype(*self.acc_range)

    def validate(self):
        self.check_rom_words()
        self.check_pe()
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
        return self.threshold_output(self.ka * a + self.kb * b)

    def cycles(self):
        return self.in_words

    def latency(self):
        """Cycles from the handshake of the two input words to their output word being valid: 2;
        pipelined + 1 (sum register), + 1 more with thresholds (comparison register)."""
        if not pipeline_levels(self):
            return 2
        return 3 + (self.thresholds is not None)

    def schedule(self, arrivals, frames):
        """One word per cycle, taken from both inputs together once both have it."""
        r = asap(np.maximum(arrivals[0], arrivals[1]))
        return [r, r.copy()], [r + self.latency()]

    def cost_terms(self):
        P, acc, n = self.pe, self.acc_dt.bits, self.n_thresholds
        tb = acc + 1
        mul = dsp = 0
        for dt, kk in ((self.in_dt, self.ka), (self.in_dt_b, self.kb)):
            kk = abs(int(kk))
            if kk in (0, 1) or kk & (kk - 1) == 0:        # 0, ±1, powers of two: no multiplier
                continue
            kk >>= (kk & -kk).bit_length() - 1            # trailing zeros are a shift (yosys strips them)
            kb = kk.bit_length() + 1                      # the constant as a signed operand
            if dt.bits >= 2 and dt.bits + kb >= rule("dsp_y_min", 9):
                dsp += P
            else:
                mul += P * dt.bits * kb
        G = self.channels // P
        tvar, tfrac = threshold_columns(self, P) if n else (0, 0.0)
        tmem = memory(P * n * tb, G, "auto", cols=tvar) if n else memory(0, 0)
        k = pipeline_levels(self)
        thr_ff = tmem["FF"] * (2 if k else 1) if tmem["style"] == "logic" else (P * n * tb if (n and k) else 0)
        return {"LUT": {"const": 1, "add": P * acc, "mul": mul, "thr": P * n * tb * tfrac,
                        "cthr": P * n * tb * (1 - tfrac), "mem": tmem["LUT"] + tmem["LUTRAM"]},
                "FF": {"const": 1, "io": P * (self.in_dt.bits + self.in_dt_b.bits + self.odt.bits),
                       "acc": P * acc, "thr": thr_ff + (P * n if k else 0)},
                "BRAM18": tmem["BRAM18"], "DSP": int(dsp)}


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

    def latency(self):
        """Cycles from an input word's handshake to it being valid on the output."""
        return 1

    def schedule(self, arrivals, frames):
        """Per pixel the words of input 0, then of input 1, …, one per cycle."""
        per_px = [c // self.lanes for c in self.channels_in]
        npx = frames * self.pixels
        order_port = np.concatenate([np.full(w, j) for j, w in enumerate(per_px)])
        order_idx = np.concatenate([np.arange(w) for w in per_px])
        port = np.tile(order_port, npx)
        pix = np.repeat(np.arange(npx), sum(per_px))
        word = np.tile(order_idx, npx)
        a = np.empty(port.size)
        for j, w in enumerate(per_px):
            m = port == j
            a[m] = arrivals[j][pix[m] * w + word[m]]
        r = asap(a)
        reads = [r[port == j] for j in range(len(per_px))]
        return reads, [r + self.latency()]

    def cost_terms(self):
        w = self.lanes * self.dt.bits
        return {"LUT": {"const": 1, "width": w * len(self.channels_in)}, "FF": {"const": 1, "width": w},
                "BRAM18": 0, "DSP": 0}
