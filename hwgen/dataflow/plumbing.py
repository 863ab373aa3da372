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

import numpy as np

from .branch import Duplicate
from .fifo import FIFO, WidthConverter
from .graph import INPUT, parse_ref

__all__ = ["InsertDuplicates", "InsertWidthConverters", "InsertFIFOs", "first_output_delay"]

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


def first_output_delay(layer, period):
    """Conservative cycles from a layer's first input word to its first output word,
    when its input arrives at the steady-state rate of a pipeline with ``period``."""
    per_word = period / max(1, layer.in_words)           # input words arrive this far apart
    kind = layer.kind
    if kind == "MVAU":
        need = layer.mw // layer.simd
    elif kind in ("VVAU", "Pool"):
        need = layer.kernel_elems
    elif kind == "SlidingWindow":
        (kh, kw), iw = layer.kernel, layer.ifm[1]
        cf = layer.channels // layer.simd
        need = max(1, (kh - layer.pad[0]) * iw * cf)
    elif kind in ("GlobalPool", "LabelSelect"):
        need = layer.in_words
    elif kind == "WidthConverter":
        need = math.lcm(layer.in_lanes, layer.out_lanes) // layer.in_lanes
    elif kind == "FIFO":
        need = 1
    else:
        need = 1
    return need * per_word + 8


class InsertFIFOs:
    """A FIFO on every edge into a compute layer (and on every branch edge).

    Depth: two pixels' worth of words (the larger of producer's and consumer's
    pixel) plus slack, at most a frame — so a consumer that reads a pixel in a
    burst never stalls its producer.  On an edge into a layer with several
    inputs, add the words the edge delivers while the slowest other input's
    path (from the fork) produces its first word."""

    def __init__(self, slack=2, max_depth=1 << 16):
        self.slack = slack
        self.max_depth = max_depth

    def _path_delay(self, graph, ref, period, stop):
        """Delay from fork ``stop`` along producers of ``ref`` back to it (cycles)."""
        total, name = 0.0, parse_ref(ref)[0]
        while name not in (INPUT, stop):
            l = graph.layer(name)
            total += first_output_delay(l, period)
            refs = graph.input_refs(l)
            if len(refs) != 1:
                break
            name = parse_ref(refs[0])[0]
        return total

    def _fork_of(self, graph, ref):
        name = parse_ref(ref)[0]
        while name != INPUT:
            l = graph.layer(name)
            if l.kind == "Duplicate":
                return l.name
            refs = graph.input_refs(l)
            if len(refs) != 1:
                return None
            name = parse_ref(refs[0])[0]
        return None

    def apply(self, graph):
        graph.make_edges_explicit()
        names, changed = _Names(graph), False
        period = graph.cycles()
        for b in list(graph.layers):
            if b.kind in PLUMBING:
                continue
            refs = graph.input_refs(b)
            delays = []
            if len(refs) > 1:
                for r in refs:
                    fork = self._fork_of(graph, r)
                    delays.append(self._path_delay(graph, r, period, fork) if fork else 0.0)
            for k, ref in enumerate(refs):
                name, _ = parse_ref(ref)
                if name == INPUT:
                    continue
                p = graph.layer(name)
                if p.kind == "FIFO":
                    continue
                burst = 2 * max(_words_per_pixel(p, "out"), _words_per_pixel(b, "in"))
                depth = min(p.out_words, burst) + self.slack
                if delays:
                    wait = max(delays) - delays[k]
                    depth += math.ceil(1.5 * wait * p.out_words / period) + burst
                depth = min(self.max_depth, depth)
                _insert_on_edge(graph, b, k, FIFO(names.fresh("fifo"), shape=tuple(p.out_shape), dt=p.odt,
                                                  lanes=p.out_lanes, depth=depth))
                changed = True
        return graph, changed
