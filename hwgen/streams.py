"""Packing integer tensors into stream words and back (ARCHITECTURE §3).

A frame of shape ``(..., C)`` streams channels-last, innermost fastest, as
words of ``lanes`` lanes; lane ``i`` of a word sits at bits ``[i·w, (i+1)·w)``
with ``w`` the lane width of the data type.  Words are Python ints (they may be
wider than 64 bits).
"""

import numpy as np

from .dtypes import dtype as _dtype
from .errors import HwgenError

__all__ = ["pack", "unpack", "words_per_frame", "tdata_bits"]


def words_per_frame(shape, lanes):
    n = int(np.prod(shape))
    if n % lanes:
        raise HwgenError(f"stream: lanes={lanes} must divide the frame size {n}")
    return n // lanes


def tdata_bits(lanes, dt):
    """AXI4-Stream tdata width: lanes × lane bits, padded to a multiple of 8."""
    bits = lanes * _dtype(dt).bits
    return -(-bits // 8) * 8


def pack(values, dt, lanes):
    """(N, *shape) integer values -> list of N lists of words (Python ints)."""
    dt = _dtype(dt)
    v = np.asarray(values, dtype=np.int64)
    n = v.shape[0]
    codes = dt.encode(v.reshape(n, -1)).reshape(n, -1, lanes)
    w = dt.bits
    frames = []
    for f in range(n):
        words = []
        for lane_codes in codes[f]:
            word = 0
            for i, c in enumerate(lane_codes.tolist()):
                word |= int(c) << (i * w)
            words.append(word)
        frames.append(words)
    return frames


def unpack(frames, dt, lanes, shape):
    """Inverse of :func:`pack`: list of N word lists -> (N, *shape) int64 values."""
    dt = _dtype(dt)
    w = dt.bits
    mask = (1 << w) - 1
    out = []
    for words in frames:
        codes = [(int(word) >> (i * w)) & mask for word in words for i in range(lanes)]
        out.append(dt.decode(np.array(codes, dtype=np.int64)).reshape(shape))
    return np.stack(out) if out else np.zeros((0,) + tuple(shape), dtype=np.int64)
