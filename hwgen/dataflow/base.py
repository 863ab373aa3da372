"""Common base of the dataflow IR layer kinds.

A layer is a dataclass holding everything its hardware needs: shapes
(channels-last, without the batch axis), data types, folding and integer
parameters.  Every kind provides

* ``execute(x) -> y``: the bit-exact integer reference (numpy int64, with a
  leading batch axis), the only golden model tests use;
* ``cycles()``: ideal cycles per frame;
* ``latency()``: cycles from the step of its hardware that completes an output
  word to that word being valid on the output (for its ``pipeline`` setting);
* ``schedule(arrivals, frames)``: the word-level max-plus model of its hardware
  (:mod:`hwgen.dataflow.schedule` sizes the FIFOs with it);
* ``cost_terms()``: the quantities whose calibrated multiples make its resource
  estimate, and ``resources()``: that estimate, ``{"LUT", "FF", "BRAM18", "DSP"}``
  (:mod:`hwgen.dataflow.estimate`);
* ``validate()``: raises :class:`HwgenError` on an impossible configuration.

:class:`Channelwise` gathers what the kinds folded by ``pe`` channels per word
share, :class:`Thresholded` what the kinds ending in optional thresholds share.
"""

from dataclasses import dataclass, fields

import numpy as np

from ..dtypes import DType, dtype
from ..errors import FoldingError, HwgenError
from .estimate import calibrated

__all__ = ["Layer", "Channelwise", "Thresholded", "register", "LAYER_KINDS", "divisors"]

LAYER_KINDS = {}
#: IR class → ``f(layer)``: the layer the build makes of a layer of that class (estimates price it;
#: :mod:`hwgen.dataflow.cmvau` registers the MVAU's, a ConstMVAU when fully unrolled)
IMPLEMENTED = {}

#: Widest parameter ROM word the hardware generator builds (an Amaranth memory word stays below 2**16 bits).
MAX_ROM_WORD_BITS = 65535


def register(cls):
    LAYER_KINDS[cls.kind] = cls
    return cls


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass
class Layer:
    """Base of all kinds.  ``inputs`` names the streams a layer reads:
    ``"@input"`` (the accelerator's input), ``"<layer>"`` (that layer's output
    0) or ``"<layer>:<k>"`` (its output k); empty means the previous layer's
    output (a chain).  Multi-input kinds set ``n_inputs``; multi-output kinds
    (a fork) ``n_outputs`` and return a list from ``execute``."""
    kind = "Layer"
    n_inputs = 1
    name: str
    inputs: tuple = ()

    @property
    def n_outputs(self):
        return 1

    # --- shapes and types (overridden by kinds) -------------------------
    @property
    def in_shape(self):
        raise NotImplementedError

    @property
    def out_shape(self):
        raise NotImplementedError

    @property
    def idt(self) -> DType:
        """Input data type (kinds with other field names override)."""
        return self.in_dt

    @property
    def odt(self) -> DType:
        """Output data type."""
        return self.out_dt

    @property
    def pixels(self):
        """Pixels per frame of a kind with a ``spatial`` shape (1 for a vector)."""
        spatial = getattr(self, "spatial", ())
        return int(np.prod(spatial)) if spatial else 1

    @property
    def in_lanes(self):
        """Lanes per input stream word."""
        raise NotImplementedError

    @property
    def out_lanes(self):
        """Lanes per output stream word."""
        raise NotImplementedError

    @property
    def in_words(self):
        return int(np.prod(self.in_shape)) // self.in_lanes

    def rom_words(self):
        """``{"weight"|"threshold": bits}``: the word width of each parameter ROM (the
        hardware reads one word per cycle, so PE and SIMD widen it)."""
        out = {}
        w = getattr(self, "weights", None)
        if w is not None and getattr(self, "wdt", None) is not None:
            lanes = self.pe * (self.simd if self.kind == "MVAU" else 1)
            out["weight"] = lanes * self.wdt.bits
        t = getattr(self, "thresholds", None)
        if t is not None and np.asarray(t).ndim == 2 and np.asarray(t).shape[1]:
            out["threshold"] = self.pe * int(np.asarray(t).shape[1]) * self.threshold_storage()[2]
        return out

    def threshold_storage(self):
        """``(lo, hi, bits)``: thresholds are clipped to ``[lo, hi + 1]`` (the compared value's
        range) and stored as ``bits``-bit two's complement words."""
        lo, hi = getattr(self, "acc_range", None) or (self.idt.min, self.idt.max)
        return lo, hi, max(1, int(max(abs(lo), abs(hi + 1))).bit_length() + 1)

    def check_rom_words(self):
        """A :class:`FoldingError` when a parameter ROM word is wider than the hardware
        generator supports (:data:`MAX_ROM_WORD_BITS`)."""
        for what, bits in self.rom_words().items():
            if bits > MAX_ROM_WORD_BITS:
                raise FoldingError(f"layer {self.name}: its {what} ROM word would be {bits:,} bits wide "
                                   f"(PE={self.pe}{f', SIMD={self.simd}' if what == 'weight' and self.kind == 'MVAU' else ''}); "
                                   f"at most {MAX_ROM_WORD_BITS:,}: lower PE")

    @property
    def out_words(self):
        return int(np.prod(self.out_shape)) // self.out_lanes

    @property
    def folding(self):
        return {}

    def set_folding(self, **kw):
        for k, v in kw.items():
            if k not in self.folding:
                raise FoldingError(f"layer {self.name}: folding parameter {k!r} is not one of {sorted(self.folding)} for {self.kind}")
            setattr(self, k, int(v))

    def implemented(self):
        """The layer the build makes of this one (:data:`IMPLEMENTED`; itself for most kinds)."""
        f = IMPLEMENTED.get(type(self))
        return self if f is None else f(self)

    def execute(self, x):
        raise NotImplementedError

    def cycles(self):
        raise NotImplementedError

    def latency(self):
        """Cycles from the step of this layer's hardware that completes an output word to that
        word being valid on its output."""
        raise NotImplementedError(f"no latency for layer kind {self.kind}")

    def schedule(self, arrivals, frames):
        """Word-level schedule of this layer's hardware over ``frames`` frames, given the
        cycles at which the words of each input arrive (``arrivals[k]``, all frames): ``(reads,
        outs)``, the cycles in which it takes the words of each input and in which the words
        of each output become valid (unbounded output FIFOs)."""
        raise NotImplementedError(f"no schedule model for layer kind {self.kind}")

    def cost_terms(self):
        """``{"LUT": {term: value}, "FF": {term: value}, "BRAM18": n, "DSP": n}``: the quantities
        whose calibrated multiples add up to this layer's estimate (BRAM18 and DSP are
        structural); :func:`hwgen.dataflow.estimate.calibrated`."""
        raise ValueError(f"layer {getattr(self, 'name', self)}: no resource model for kind {self.kind!r}")

    def resources(self):
        """Calibrated synth_xilinx estimate ``{"LUT", "FF", "BRAM18", "DSP"}`` (terms:
        :meth:`cost_terms`, coefficients: :mod:`hwgen.dataflow.estimate`)."""
        return calibrated(self)

    def validate(self):
        pass

    def check_input(self, x):
        x = np.asarray(x)
        if x.shape[1:] != tuple(self.in_shape):
            raise HwgenError(f"layer {self.name}: input shape {x.shape[1:]} must be {tuple(self.in_shape)}")
        if not self.idt.allowed(x):
            raise HwgenError(f"layer {self.name}: input values outside {self.idt}")
        return x.astype(np.int64)

    # --- serialisation --------------------------------------------------
    ARRAYS = ()

    def to_json(self):
        attrs, arrays = {"kind": self.kind}, {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in self.ARRAYS:
                if v is not None:
                    arrays[f.name] = np.asarray(v, dtype=np.int64)
                attrs[f.name] = None if v is None else "@array"
            elif isinstance(v, DType):
                attrs[f.name] = v.name
            elif isinstance(v, tuple):
                attrs[f.name] = [list(x) if isinstance(x, tuple) else x for x in v]
            else:
                attrs[f.name] = v
        return attrs, arrays

    @classmethod
    def from_json(cls, attrs, arrays):
        kw = {}
        for f in fields(cls):
            v = attrs.get(f.name)
            if f.name in cls.ARRAYS:
                v = None if v is None else np.asarray(arrays[f.name], dtype=np.int64)
            elif f.type in ("DType", DType):
                v = dtype(v)
            elif isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kw[f.name] = v
        return cls(**kw)

    def summary(self):
        return {
            "name": self.name, "kind": self.kind,
            "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
            "idt": self.idt.name, "odt": self.odt.name,
            "folding": self.folding, "cycles": self.cycles(), "resources": self.resources(),
        }


class Channelwise:
    """Mixin of the kinds folded by ``pe`` channels per stream word (fields ``pe`` and
    ``channels``): ``pe`` lanes in and out, folding ``{"pe": …}``, PE must divide C."""

    @property
    def in_lanes(self):
        return self.pe

    @property
    def out_lanes(self):
        return self.pe

    @property
    def folding(self):
        return {"pe": self.pe}

    @property
    def channel_groups(self):
        """Words per pixel: ``C / PE``."""
        return self.channels // self.pe

    def check_pe(self):
        """A :class:`FoldingError` unless PE is a positive integer dividing C."""
        if not isinstance(self.pe, int) or self.pe < 1 or self.channels % self.pe:
            raise FoldingError(f"layer {self.name}: PE={self.pe} must divide C={self.channels}")


class Thresholded:
    """Mixin of the kinds whose output is an accumulator or, with ``thresholds`` (``(C, N)``),
    ``out_base + out_step · Σ_i [acc ≥ T[c, i]]``."""

    @property
    def out_step(self):
        """Output step per threshold passed: 2 for a BIPOLAR output, else 1."""
        return 2 if self.odt.name == "BIPOLAR" else 1

    @property
    def n_thresholds(self):
        """Thresholds per channel (0 without thresholds)."""
        return 0 if self.thresholds is None else int(self.thresholds.shape[1])

    def threshold_output(self, acc):
        """The output of accumulator values ``acc`` (channels last)."""
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.out_base, self.out_step)


def apply_thresholds(acc, thresholds, out_base, out_step):
    """y = base + step · Σ_i [acc ≥ T[c, i]] along the last (channel) axis."""
    acc = np.asarray(acc, dtype=np.int64)
    T = np.asarray(thresholds, dtype=np.int64)
    count = (acc[..., None] >= T).sum(axis=-1)
    return out_base + out_step * count
