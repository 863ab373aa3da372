"""Max-plus helpers of the word-level schedule (:mod:`hwgen.dataflow.schedule`).

Every hardware block of hwgen works in a fixed order, one step per clock, and a
step waits only for the input word it needs: ``t[j] = max(t[j−1] + 1, arrival
of the word step j needs)``. The layer kinds' ``schedule`` methods are built
from these helpers; all times are in cycles (floats, ``−inf``: no constraint,
``inf``: never).
"""

import numpy as np

__all__ = ["NEG", "INF", "asap", "need_after", "step_through", "grouped"]

NEG = -np.inf
INF = np.inf


def asap(a):
    """Times of consecutive one-per-cycle steps where step ``j`` may not happen before ``a[j]``:
    ``t[j] = max(a[j], t[j−1] + 1)``."""
    a = np.asarray(a, dtype=float)
    if a.size == 0:
        return a
    j = np.arange(a.size, dtype=float)
    return np.maximum.accumulate(a - j) + j


def need_after(arrival, need):
    """``arrival[need]`` where ``need ≥ 0``, else −∞ (a step that needs no input word)."""
    out = np.full(need.shape, NEG)
    m = need >= 0
    out[m] = arrival[need[m]]
    return out


def step_through(arrivals, latency):
    """Schedule of a block taking one word and emitting one word per cycle, each output word
    ``latency`` cycles after its input word was taken: ``([reads], [outs])``."""
    r = asap(arrivals[0])
    return [r], [r + latency]


def grouped(arrivals, group, latency):
    """Schedule of a block taking one word per cycle and emitting a word ``latency`` cycles
    after every ``group``-th input word: ``([reads], [outs])``."""
    r = asap(arrivals[0])
    return [r], [r[group - 1::group] + latency]
