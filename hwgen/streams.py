"""Packing integer tensors into stream words and back (ARCHITECTURE §3).

A frame of shape ``(..., C)`` streams channels-last, innermost fastest, as
words of ``lanes`` lanes; lane ``i`` of a word sits at bits ``[i·w, (i+1)·w)``
with ``w`` the lane width of the data type.  Words are Python ints (they may be
wider than 64 bits) for :func:`pack`/:func:`unpack`, or, for bulk work,
arrays of little-endian 32-bit chunks (:func:`pack_words32`/:func:`unpack_words32`:
chunk ``j`` of a word holds its bits ``[32·j, 32·j + 32)``).
"""

import numpy as np

from .dtypes import dtype as _dtype
from .errors import HwgenError

__all__ = ["pack", "unpack", "pack_words32", "unpack_words32", "words_per_frame", "tdata_bits"]


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


def chunks32(bits):
    """32-bit chunks that hold a word of ``bits`` bits."""
    return max(1, -(-int(bits) // 32))


_CHUNK_FRAMES = 4096          # frames converted at a time: bounds the bit arrays' memory


def pack_words32(values, dt, lanes):
    """(N, *shape) integer values -> uint32 array (N, words per frame, :func:`chunks32` of lanes·w):
    the words of :func:`pack`, bit for bit, as 32-bit chunks (vectorised; no Python ints)."""
    dt = _dtype(dt)
    v = np.asarray(values, dtype=np.int64)
    n, w = v.shape[0], dt.bits
    per = v[0].size if n else 0
    wpf = words_per_frame(v.shape[1:], lanes)
    nw = chunks32(lanes * w)
    out = np.zeros((n, wpf, nw), dtype="<u4")
    shifts = np.arange(w, dtype=np.uint64)
    for a in range(0, n, _CHUNK_FRAMES):
        codes = dt.encode(v[a:a + _CHUNK_FRAMES].reshape(-1, per)).astype(np.uint64).reshape(-1, wpf, lanes)
        bits = ((codes[..., None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(codes.shape[0], wpf, lanes * w)
        bits = np.pad(bits, ((0, 0), (0, 0), (0, nw * 32 - lanes * w)))
        out[a:a + _CHUNK_FRAMES] = np.packbits(bits, axis=-1, bitorder="little").view("<u4")
    return out


def unpack_words32(words, dt, lanes, shape):
    """Inverse of :func:`pack_words32` (bits above the lanes ignored): -> (N, *shape) int64 values."""
    dt = _dtype(dt)
    words = np.ascontiguousarray(words, dtype="<u4")
    n, wpf, _ = words.shape
    w = dt.bits
    weights = (np.uint64(1) << np.arange(w, dtype=np.uint64))
    out = np.zeros((n,) + tuple(shape), dtype=np.int64)
    for a in range(0, n, _CHUNK_FRAMES):
        part = words[a:a + _CHUNK_FRAMES]
        bits = np.unpackbits(part.view(np.uint8), axis=-1, bitorder="little")[..., :lanes * w]
        codes = (bits.reshape(part.shape[0], wpf, lanes, w).astype(np.uint64) * weights).sum(axis=-1)
        out[a:a + _CHUNK_FRAMES] = dt.decode(codes.astype(np.int64).reshape(part.shape[0], -1)).reshape(
            (part.shape[0],) + tuple(shape))
    return out
