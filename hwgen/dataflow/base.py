"""Common base of the dataflow IR layer kinds.

A layer is a dataclass holding everything its hardware needs: shapes
(channels-last, without the batch axis), data types, folding and integer
parameters.  Every kind provides

* ``execute(x) -> y``: the bit-exact integer reference (numpy int64, with a
  leading batch axis), the only golden model tests use;
* ``cycles()``: ideal cycles per frame;
* ``resources()``: estimated ``{"LUT", "FF", "BRAM18", "DSP"}``;
* ``validate()``: raises :class:`HwgenError` on an impossible configuration.
"""

import math
from dataclasses import dataclass, fields

import numpy as np

from ..dtypes import DType, dtype
from ..errors import FoldingError, HwgenError

__all__ = ["Layer", "register", "LAYER_KINDS", "divisors", "rom_resources"]

LAYER_KINDS = {}


def register(cls):
    LAYER_KINDS[cls.kind] = cls
    return cls


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def rom_resources(width, depth, style="auto"):
    """LUT/BRAM18 cost of a read-only or simple dual-port memory.

    Small memories become distributed ROM (one LUT6 holds 64 × 1 bit); larger
    ones block RAM (an 18 Kib BRAM is 512 × 36, 1024 × 18, 2048 × 9 …)."""
    if width == 0 or depth == 0:
        return {"LUT": 0, "BRAM18": 0}
    bits = width * depth
    if style == "auto":
        style = "block" if (bits > 16384 and depth >= 128) else "distributed"
    if style == "distributed":
        return {"LUT": width * math.ceil(depth / 64), "BRAM18": 0}
    for d, w in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)):
        if depth <= d or d == 16384:
            return {"LUT": 0, "BRAM18": math.ceil(width / w) * math.ceil(depth / d)}


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

    def execute(self, x):
        raise NotImplementedError

    def cycles(self):
        raise NotImplementedError

    def resources(self):
        raise NotImplementedError

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


def apply_thresholds(acc, thresholds, out_base, out_step):
    """y = base + step · Σ_i [acc ≥ T[c, i]] along the last (channel) axis."""
    acc = np.asarray(acc, dtype=np.int64)
    T = np.asarray(thresholds, dtype=np.int64)
    count = (acc[..., None] >= T).sum(axis=-1)
    return out_base + out_step * count
