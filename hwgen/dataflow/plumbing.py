"""Passes inserting stream plumbing on the edges of the dataflow graph.

Each pass follows the qonnx pattern ``apply(graph) -> (graph, changed)`` and
works on explicit edges (``layer.inputs``):

* :class:`InsertDuplicates` — a stream read by several layers gets a fork;
* :class:`InsertWidthConverters` — where a producer's lanes differ from its consumer's;
* :class:`InsertFIFOs` — a FIFO on every edge into a compute layer, sized so
  that bursts never stall the producer and, where branches reconverge, so that
  the short branch can hold everything the long branch needs before it emits
  (no deadlock, no throughput loss).
"""

import math
import time

import numpy as np

from .branch import Duplicate
from .fifo import FIFO, WidthConverter
from .graph import INPUT, parse_ref
from .schedule import fifo_occupancy, schedule

__all__ = ["InsertDuplicates", "InsertWidthConverters", "InsertFIFOs"]

PLUMBING = ("FIFO", "WidthConverter", "Duplicate")


class _Names:
    def __init__(self, graph):
        self.used = {l.name for l in graph.layers}

    def fresh(self, prefix):
        k = 0
        while f"{prefix}{k}" in self.used:
            k += 1
        self.used.add(f"{prefix}{k}")
        return f"{prefix}{k}"


def _ref_info(graph, ref, consumer=None, k=0):
    """(shape, dtype, lanes, words per frame) of stream ``ref``."""
    name, port = parse_ref(ref)
    if name == INPUT:
        first = consumer
        shape = (getattr(first, "in_shapes", None) or [first.in_shape])[k]
        idt = (getattr(first, "idts", None) or [first.idt])[k]
        return tuple(shape), idt, first.in_lanes, int(np.prod(shape)) // first.in_lanes
    p = graph.layer(name)
    return tuple(p.out_shape), p.odt, p.out_lanes, p.out_words


def _insert_on_edge(graph, consumer, k, new_layer):
    """Put ``new_layer`` between ``consumer``'s input ``k`` and its producer."""
    refs = graph.input_refs(consumer)
    new_layer.inputs = (refs[k],)
    refs[k] = new_layer.name
    consumer.inputs = tuple(refs)
    graph.layers.insert(graph.layers.index(consumer), new_layer)


class InsertDuplicates:
    def apply(self, graph):
        graph.make_edges_explicit()
        names, changed = _Names(graph), False
        refs = []
        for l in graph.layers:
            for r in graph.input_refs(l):
                if r not in refs:
                    refs.append(r)
        for ref in refs:
            users = graph.consumers(ref)
            if len(users) < 2:
                continue
            first_user = users[0][0]
            shape, dt, _, _ = _ref_info(graph, ref, first_user, users[0][1])
            name, _ = parse_ref(ref)
            lanes = first_user.in_lanes if name == INPUT else graph.layer(name).out_lanes
            dup = Duplicate(names.fresh("dup"), inputs=(ref,), shape=shape, dt=dt, lanes=lanes, n_out=len(users))
            graph.layers.insert(graph.layers.index(first_user), dup)
            for i, (user, k) in enumerate(users):
                r = graph.input_refs(user)
                r[k] = f"{dup.name}:{i}"
                user.inputs = tuple(r)
            changed = True
        return graph, changed


class InsertWidthConverters:
    """Put a WidthConverter wherever a producer's lanes differ from its consumer's."""

    def apply(self, graph):
        graph.make_edges_explicit()
        names, changed = _Names(graph), False
        for b in list(graph.layers):
            for k, ref in enumerate(graph.input_refs(b)):
                name, _ = parse_ref(ref)
                if name == INPUT:
                    continue
                p = graph.layer(name)
                if p.out_lanes == b.in_lanes:
                    continue
                in_shape = (getattr(b, "in_shapes", None) or [b.in_shape])[k]
                shape = tuple(p.out_shape) if tuple(p.out_shape) == tuple(in_shape) else (int(np.prod(p.out_shape)),)
                if shape[-1] % b.in_lanes or shape[-1] % p.out_lanes:
                    shape = (int(np.prod(shape)),)
                _insert_on_edge(graph, b, k, WidthConverter(names.fresh("dwc"), shape=shape, dt=p.odt,
                                                            lanes_in=p.out_lanes, lanes_out=b.in_lanes))
                changed = True
        return graph, changed


def _words_per_pixel(layer, side):
    words = layer.in_words if side == "in" else layer.out_words
    shape = layer.in_shape if side == "in" else layer.out_shape
    pixels = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return max(1, words // pixels)


class InsertFIFOs:
    """A FIFO on every edge into a compute layer, as deep as the word-level schedule needs.

    Depths come from :mod:`hwgen.dataflow.schedule`: the graph's max-plus word schedule over
    a few frames arriving at its steady-state interval (unbounded FIFOs) gives each FIFO's
    largest occupancy; the depth is that plus ``slack`` (at least 2). This covers bursts
    (an MVAU reading a pixel's words in its first neuron fold), rate changes and reconverging
    branches (the short branch holds what the long one has not yet consumed), so nothing
    deadlocks and the bottleneck never waits. ``self.stats`` records what it computed."""

    def __init__(self, slack=2, max_depth=1 << 16):
        self.slack = slack
        self.max_depth = max_depth
        self.stats = {}

    def apply(self, graph):
        t0 = time.perf_counter()
        graph.make_edges_explicit()
        names, new = _Names(graph), []
        for b in list(graph.layers):
            if b.kind in PLUMBING:
                continue
            for k, ref in enumerate(graph.input_refs(b)):
                name, _ = parse_ref(ref)
                if name == INPUT:
                    continue
                p = graph.layer(name)
                if p.kind == "FIFO":
                    continue
                fifo = FIFO(names.fresh("fifo"), shape=tuple(p.out_shape), dt=p.odt, lanes=p.out_lanes, depth=2)
                _insert_on_edge(graph, b, k, fifo)
                new.append(fifo)
        if not new:
            return graph, False
        period = graph.cycles()
        # frames: enough to reach the steady state (the first frame's latency, plus three)
        _, outs = schedule(graph, 2, period)
        last = graph.layers[-1]
        first_done = outs[last.name][0][last.out_words - 1]
        frames = int(min(16, max(4, math.ceil(first_done / period) + 3)))
        reads, outs = schedule(graph, frames, period)
        until = (frames - 1) * period
        for fifo in new:
            consumer, port = graph.consumers(fifo.name)[0]
            occ = fifo_occupancy(reads[fifo.name][0], reads[consumer.name][port], until)
            fifo.depth = int(min(self.max_depth, max(2, occ + self.slack)))
        self.stats = {"fifos": len(new), "frames": frames, "seconds": time.perf_counter() - t0,
                      "bits": sum(f.depth * f.lanes * f.dt.bits for f in new)}
        return graph, True
