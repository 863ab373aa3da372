"""Thresholds from a segment's own float function (ARCHITECTURE §2).

A segment maps integers ``a`` (an accumulator, or an integer activation) in a
known per-channel range ``[lo, hi]`` through a chain of monotone float ops and
a final quantiser to integer levels.  For each channel and each level ``v``
the threshold is the least ``a`` whose quantised value reaches ``v``; found by
an exact binary search over the integers, the chain evaluated in float64.
"""

import numpy as np

from ..host import eval_ops, quantise

__all__ = ["segment_thresholds", "levels_of"]


def levels_of(quant):
    """(base, step, N): the output is ``base + step·count`` with ``count`` in 0..N."""
    if quant.get("bipolar"):
        return -1, 2, 1
    if quant.get("thresholds") is not None:
        return int(quant["base"]), int(quant.get("step", 1)), int(np.asarray(quant["thresholds"]).shape[-1])
    return int(quant["qmin"]), 1, int(quant["qmax"] - quant["qmin"])


def _direction(ops, lo, hi):
    """+1 increasing, −1 decreasing, 0 constant, per channel (the chain is monotone)."""
    a = eval_ops(ops, np.stack([lo, hi]).astype(np.float64))
    return np.sign(a[1] - a[0]).astype(np.int64)


def segment_thresholds(ops, quant, lo, hi):
    """Thresholds for ``y = quant(ops(a))``, ``a`` in ``[lo, hi]`` per channel.

    Returns ``(T, sign, base, step)``: ``T`` is (C, N) int64, ascending, with
    values in ``[lo', hi'+1]`` of the (possibly negated) input ``sign·a``; a
    channel whose function decreases has ``sign = −1`` (its input must be
    negated, e.g. by negating the weight row); then
    ``y = base + step · Σ_i [sign·a ≥ T_i]`` for every ``a`` in range.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    C = lo.shape[0]
    base, step, N = levels_of(quant)
    d = _direction(ops, lo, hi)
    sign = np.where(d < 0, -1, 1).astype(np.int64)
    lo_s = np.where(sign > 0, lo, -hi)
    hi_s = np.where(sign > 0, hi, -lo)

    def f(a):   # a: (N, C) int in the negated domain -> integer levels
        return quantise(eval_ops(ops, (a * sign).astype(np.float64)), quant)

    levels = base + step * np.arange(1, N + 1, dtype=np.int64)      # (N,)
    L = np.broadcast_to(lo_s, (N, C)).copy()
    H = np.broadcast_to(hi_s + 1, (N, C)).copy()
    while True:
        active = L < H
        if not active.any():
            break
        mid = (L + H) // 2
        ok = f(np.where(active, mid, lo_s)) >= levels[:, None]
        H = np.where(active & ok, mid, H)
        L = np.where(active & ~ok, mid + 1, L)
    return L.T.copy(), sign, base, step
