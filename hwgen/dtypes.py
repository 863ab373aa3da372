"""Integer data types of the dataflow IR and their bit encodings.

Names follow qonnx (``UINT4``, ``INT3``, ``BIPOLAR``, ``BINARY``) so that a
``model.json`` reads like the QONNX it came from, but the IR does not need
qonnx to be imported.

Encoding on a stream lane (ARCHITECTURE §3): ``UINTn`` is plain binary, ``INTn``
is two's complement, ``BINARY`` is one bit 0/1 and ``BIPOLAR`` is one bit with
0 meaning −1 and 1 meaning +1.
"""

import re
from dataclasses import dataclass

import numpy as np

from .errors import HwgenError

__all__ = ["DType", "dtype", "smallest_dtype"]


@dataclass(frozen=True)
class DType:
    name: str

    def __post_init__(self):
        if self.name in ("BIPOLAR", "BINARY"):
            return
        m = re.fullmatch(r"(U?INT)(\d+)", self.name)
        if not m or int(m.group(2)) < 1 or int(m.group(2)) > 128:
            raise HwgenError(f"data type must be BIPOLAR, BINARY, UINTn or INTn with n in 1..128, not {self.name!r}")

    @property
    def bits(self):
        if self.name in ("BIPOLAR", "BINARY"):
            return 1
        return int(re.sub(r"\D", "", self.name))

    @property
    def signed(self):
        return self.name == "BIPOLAR" or self.name.startswith("INT")

    @property
    def min(self):
        if self.name == "BIPOLAR":
            return -1
        if self.name.startswith("INT"):
            return -(1 << (self.bits - 1))
        return 0

    @property
    def max(self):
        if self.name == "BIPOLAR":
            return 1
        if self.name.startswith("INT"):
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - 1

    def allowed(self, values):
        v = np.asarray(values)
        ok = (v >= self.min) & (v <= self.max)
        if self.name == "BIPOLAR":
            ok &= v != 0
        return bool(np.all(ok))

    def encode(self, values):
        """Integer values -> unsigned lane codes (numpy int64/object)."""
        v = np.asarray(values, dtype=np.int64)
        if self.name == "BIPOLAR":
            return (v > 0).astype(np.int64)
        return v & ((1 << self.bits) - 1) if self.bits < 64 else v

    def decode(self, codes):
        """Unsigned lane codes -> integer values."""
        c = np.asarray(codes, dtype=np.int64)
        if self.name == "BIPOLAR":
            return np.where(c & 1, 1, -1).astype(np.int64)
        if self.signed:
            c = c & ((1 << self.bits) - 1)
            return np.where(c >= (1 << (self.bits - 1)), c - (1 << self.bits), c)
        return c

    def __str__(self):
        return self.name


def dtype(x):
    """Coerce a name or a DType into a DType."""
    return x if isinstance(x, DType) else DType(str(x))


def smallest_dtype(lo, hi):
    """The narrowest INTn/UINTn type holding every integer in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return DType(f"UINT{max(1, hi.bit_length())}")
    bits = max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1
    return DType(f"INT{bits}")
