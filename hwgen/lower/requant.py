"""Proven-exact fixed-point requantisation for outputs with many levels.

Where a segment's output has more than :data:`MAX_THRESHOLDS` levels, the
per-channel threshold function ``y(a) = base + Σ_k [a ≥ T_k]`` is replaced by
``clip(floor((a·M + B) / 2^S), lo, hi)`` — but only after checking, level by
level, that the two agree: the requantiser's k-th threshold is
``ceil((k·2^S − B) / M)``, which must equal ``T_k`` (clipped to the input
range) for every level of every channel.  Otherwise the build stops.
"""

import numpy as np

from ..errors import UnsupportedError

__all__ = ["fit_requant", "MAX_THRESHOLDS"]

MAX_THRESHOLDS = 255
LIMIT = 1 << 96          # |a·M| stays below this (exact wide products in the reference and the hardware)


def _ints(values, big):
    return np.array(values, dtype=object) if big else np.asarray(values, dtype=np.int64)


def _matches(T, lo, hi, base, M, B, S, ylo, yhi):
    """Does clip(floor((a·M+B)/2^S), ylo, yhi) reproduce thresholds T (levels base+1 … base+N) on [lo, hi]?"""
    N = T.shape[0]
    v = base + np.arange(1, N + 1, dtype=np.int64)
    big = max(abs(int(v[0])), abs(int(v[-1])), 1).bit_length() + S + 2 >= 62 or \
        max(abs(int(B)), abs(M) * (max(abs(lo), abs(hi)) + 1)).bit_length() >= 62
    vv = _ints(v, big) * (1 << S)
    if M == 0:
        t = np.where(vv <= B, lo, hi + 1)
    else:
        t = -((_ints(B, big) - vv) // M)                      # ceil((v·2^S − B) / M)
        t = np.minimum(np.maximum(t, lo), hi + 1)
    t = np.where(v <= ylo, lo, np.where(v > yhi, hi + 1, t)).astype(np.int64)
    return np.array_equal(t, T)


def chain_slope(ops, quant, C):
    """Levels per input unit of ``quant(ops(a))`` where it is affine (product of the
    chain's multipliers over the quantiser's scale), per channel; None if unknown."""
    if quant.get("thresholds") is not None or quant.get("trunc") or quant.get("bipolar"):
        return None
    s = np.ones(C)
    for op in ops:
        if op["op"] == "mul":
            s = s * np.asarray(op["value"], dtype=np.float64)
        elif op["op"] == "div":
            s = s / np.asarray(op["value"], dtype=np.float64)
        elif op["op"] == "dequant":
            s = s * np.asarray(op["scale"], dtype=np.float64)
        elif op["op"] not in ("add", "relu", "max", "min"):
            return None
    return np.abs(s / np.asarray(quant["scale"], dtype=np.float64))


def fit_requant(T, lo, hi, base, where, max_abs_in, slope=None):
    """Per channel (M, B) and a common S reproducing ``T`` (C, N) exactly, or raise.

    ``lo``/``hi``: per-channel input range; ``base``: the output of the lowest level;
    ``slope``: levels per input unit per channel when known exactly (else estimated from T)."""
    C, N = T.shape
    ylo = int(base + (T <= lo[:, None]).sum(1).min())      # the requantiser's clip range
    yhi = int(base + (T <= hi[:, None]).sum(1).max())

    def fit_channel(c, S):
        t = T[c]
        inner = np.nonzero((t > lo[c]) & (t <= hi[c]))[0]
        inner = inner[(base + inner + 1 > ylo) & (base + inner + 1 <= yhi)]
        if len(inner) == 0:                           # constant channel: y = base + #{T ≤ lo}
            B = (base + int((t <= lo[c]).sum())) << S
            return (0, B) if _matches(t, int(lo[c]), int(hi[c]), base, 0, B, S, ylo, yhi) else False
        k1, k2 = inner[0], inner[-1]
        span = int(t[k2] - t[k1])
        sl = float(slope[c]) if slope is not None else ((k2 - k1) / span if span else 1.0)
        M = max(1, int(round(sl * (1 << S))))
        if M * max(abs(int(lo[c])), abs(int(hi[c])), 1) >= LIMIT:
            return None
        # every inner level k (reached first at t_k) bounds B: (t_k − 1)·M + B < k·2^S ≤ t_k·M + B
        kk = (base + inner + 1).astype(object) * (1 << S)
        tk = t[inner].astype(object)
        b_lo, b_hi = max(kk - tk * M), min(kk - (tk - 1) * M - 1)
        # levels inside the clip range reached already at lo, or never up to hi, bound it too
        j = np.arange(max(0, ylo - base), min(N, yhi - base))
        always, never = j[t[j] <= lo[c]], j[t[j] > hi[c]]
        if len(always):
            b_lo = max(b_lo, (base + int(always.max()) + 1) * (1 << S) - int(lo[c]) * M)
        if len(never):
            b_hi = min(b_hi, (base + int(never.min()) + 1) * (1 << S) - int(hi[c]) * M - 1)
        if b_lo <= b_hi and _matches(t, int(lo[c]), int(hi[c]), base, M, int(b_lo), S, ylo, yhi):
            return M, int(b_lo)
        return False

    for S in range(8, 80):
        res = [fit_channel(c, S) for c in range(C)]
        if any(r is None for r in res):
            break                                     # products would overflow: more precision is not possible
        if all(r is not False for r in res):
            return [int(r[0]) for r in res], [int(r[1]) for r in res], S, ylo, yhi
    raise UnsupportedError(f"{where}: {N} output levels are too many for thresholds (at most {MAX_THRESHOLDS}) and no "
                           "fixed-point requantiser reproduces them exactly; accepted: at most 8-bit outputs for this segment")
