"""Passes inserting stream plumbing between compute layers.

Each pass follows the qonnx pattern ``apply(graph) -> (graph, changed)``.
"""

import numpy as np

from .fifo import FIFO, WidthConverter

__all__ = ["InsertWidthConverters", "InsertFIFOs"]


class _Names:
    def __init__(self, graph):
        self.used = {l.name for l in graph.layers}

    def fresh(self, prefix):
        k = 0
        while f"{prefix}{k}" in self.used:
            k += 1
        self.used.add(f"{prefix}{k}")
        return f"{prefix}{k}"


class InsertWidthConverters:
    """Put a WidthConverter wherever a producer's PE differs from its consumer's SIMD."""

    def apply(self, graph):
        names, out, changed = _Names(graph), [], False
        for a in graph.layers:
            if out and out[-1].out_lanes != a.in_lanes:
                p = out[-1]
                shape = tuple(p.out_shape) if tuple(p.out_shape) == tuple(a.in_shape) else (int(np.prod(p.out_shape)),)
                if shape[-1] % a.in_lanes or shape[-1] % p.out_lanes:
                    shape = (int(np.prod(shape)),)
                out.append(WidthConverter(names.fresh("dwc"), shape=shape, dt=p.odt,
                                          lanes_in=p.out_lanes, lanes_out=a.in_lanes))
                changed = True
            out.append(a)
        graph.layers = out
        return graph, changed


def _words_per_pixel(layer, side):
    words = layer.in_words if side == "in" else layer.out_words
    shape = layer.in_shape if side == "in" else layer.out_shape
    pixels = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return max(1, words // pixels)


class InsertFIFOs:
    """A FIFO in front of every compute layer but the first.

    Depth: two pixels' worth of words on that edge (the larger of the
    producer's and the consumer's pixel) plus slack, at most one frame: a
    consumer that reads a pixel's input in a burst (an MVAU reads it during its
    first output pass) then never stalls its producer, and a producer that
    writes a pixel's outputs in a burst never waits for its consumer."""

    def __init__(self, slack=2, max_depth=4096):
        self.slack = slack
        self.max_depth = max_depth

    def apply(self, graph):
        names, out, changed = _Names(graph), [], False
        for a in graph.layers:
            if out and a.kind not in ("FIFO", "WidthConverter") and out[-1].kind != "FIFO":
                p = out[-1]
                burst = 2 * max(_words_per_pixel(p, "out"), _words_per_pixel(a, "in"))
                depth = min(self.max_depth, min(p.out_words, burst) + self.slack)
                out.append(FIFO(names.fresh("fifo"), shape=tuple(p.out_shape), dt=p.odt, lanes=p.out_lanes, depth=depth))
                changed = True
            out.append(a)
        graph.layers = out
        return graph, changed
