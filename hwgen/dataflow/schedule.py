"""Word-level schedule of a dataflow graph, for sizing its FIFOs analytically.

Every hardware block of hwgen works in a fixed order, one step per clock,
and a step waits only for the input word it needs (and for room at its
output).  So the time at which each stream word is produced and consumed is
a max-plus recurrence: ``t[j] = max(t[j−1] + 1, arrival of the word step j
needs)``, which numpy evaluates for a whole stream at once as
``t = j + cummax(a − j)`` (:func:`~hwgen.dataflow.maxplus.asap`).  Every layer
kind models its hardware that way in its ``schedule(arrivals, frames)`` method —
the MVAU's ``(pixel, nf, sf)`` steps that read input only when ``nf == 0``, the
SlidingWindow's writer and reader coupled by its line-buffer rows, the width
converter's two banks, the joins, the fork — each output word valid
``layer.latency()`` cycles after the step that completes it.  This module
drives them: with unbounded FIFOs, the word times of every stream over a few
frames whose input arrives at the graph's steady-state interval.

The occupancy of a FIFO in that schedule (words written and not yet read) is
the depth it needs: with at least that depth the schedule is feasible, and
since the hardware is a monotone max-plus system, an input that arrives
earlier (a testbench streaming back to back) can only make every word earlier,
so no FIFO overflows into a stall of the bottleneck and nothing deadlocks.
``O(words per frame · frames)`` numpy work plus a Python loop over rows and
width-converter blocks: well under a second for CNV.
"""

import numpy as np

from .graph import INPUT, parse_ref
from .maxplus import INF, NEG, asap

__all__ = ["asap", "schedule", "fifo_occupancy", "latency", "NEG", "INF"]


def latency(layer):
    """Output latency of ``layer``'s hardware in cycles (``layer.latency()``)."""
    return layer.latency()


def _input_words(graph):
    """Words per frame of the accelerator's input stream."""
    for l in graph.layers:
        for k, r in enumerate(graph.input_refs(l)):
            if parse_ref(r)[0] == INPUT:
                shape = (getattr(l, "in_shapes", None) or [l.in_shape])[k]
                return int(np.prod(shape)) // l.in_lanes
    raise ValueError("the graph reads no input")


def schedule(graph, frames, period=None, source=None):
    """Word times of every stream of ``graph`` over ``frames`` frames whose input words arrive
    spread evenly over ``period`` cycles per frame (default: the graph's interval), or at the
    cycles ``source`` gives (one per input word of all frames; zeros: all at once).

    Returns ``(reads, outs)``: ``reads[layer][k]`` the cycles in which ``layer`` takes the
    words of its input ``k``; ``outs[layer][k]`` the cycles in which the words of its output
    ``k`` become valid (``inf``: not within the simulated frames)."""
    period = graph.cycles() if period is None else period
    n_in = _input_words(graph)
    k = np.arange(frames * n_in)
    f, w = np.divmod(k, n_in)
    src = f * period + np.floor(w * period / n_in)
    if source is not None:
        src = np.asarray(source, dtype=float)
        if src.shape != (frames * n_in,):
            raise ValueError(f"source must give {frames * n_in} input word times, not {src.shape}")
    reads, outs = {}, {}
    for l in graph.layers:
        arr = []
        for ref in graph.input_refs(l):
            name, port = parse_ref(ref)
            arr.append(src if name == INPUT else outs[name][port])
        reads[l.name], outs[l.name] = l.schedule(arr, frames)
    return reads, outs


def fifo_occupancy(written, taken, until=INF):
    """Most words held at once by a FIFO whose words enter at ``written`` and leave at ``taken``
    (both ascending), counted at every write up to cycle ``until``."""
    written = np.asarray(written, dtype=float)
    taken = np.sort(np.asarray(taken, dtype=float))
    m = written <= until
    if not m.any():
        return 0
    w = written[m]
    held = np.arange(1, w.size + 1) - np.searchsorted(taken, w, side="right")
    return int(held.max())
