"""The plumbed cost model: what a folding costs with the stream plumbing it implies.

A folding changes more than its layers: width converters appear where neighbouring
layers' lanes differ, FIFOs between layers.  The cost is worked out on a copy of the
graph with the real plumbing passes (FIFOs either from the real, schedule-sized pass
or from a per-edge depth model, fast enough for a search).
"""

import copy

from ...devices import resources_of
from ..estimate import layer_resources
from ..fifo import FIFO
from ..graph import INPUT, DataflowGraph, parse_ref
from ..plumbing import InsertDuplicates, InsertFIFOs, InsertWidthConverters

__all__ = ["RES", "PLUMBING", "copy_graph", "current_folding", "model_fifo", "model_fifos", "plumbed_resources",
           "res_tuple", "add", "edge_resources"]

RES = ("LUT", "FF", "BRAM18", "DSP", "URAM")      # the cost tuples' order (URAM: 0 but on xcup)
PLUMBING = ("FIFO", "WidthConverter", "Duplicate")


def copy_graph(graph, folding=None, options=None):
    """A copy of ``graph`` (its layers shallow-copied) with ``folding`` (``{layer: {"pe": P, …}}``)
    and ``options`` (``{layer: {"mem_style": …}}``) set on the copies; ``graph`` is left as it is."""
    layers = []
    for l in graph.layers:
        c = copy.copy(l)
        if folding and l.name in folding:
            c.set_folding(**folding[l.name])
        for k, v in ((options or {}).get(l.name) or {}).items():
            setattr(c, k, v)
        layers.append(c)
    return DataflowGraph(layers, dict(graph.head), dict(graph.tail), graph.name)


def current_folding(graph):
    """``{layer: {"pe": P, "simd": S}}`` of every foldable layer as ``graph`` has it now."""
    return {l.name: dict(l.folding) for l in graph.layers if l.folding}


def res_tuple(layer, family):
    """``(LUT, FF, BRAM18, DSP, URAM)`` of ``layer`` in ``family``'s units."""
    r = layer_resources(layer, family)
    return (r["LUT"], r["FF"], r["BRAM18"], r["DSP"], r.get("URAM", 0))


def add(a, b):
    """The sum of two ``(LUT, FF, BRAM18, DSP, URAM)`` tuples."""
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


def _words_per_pixel(layer, side):
    shape = layer.in_shape if side == "in" else layer.out_shape
    words = layer.in_words if side == "in" else layer.out_words
    pixels = 1
    for d in shape[:-1]:
        pixels *= d
    return max(1, words // max(1, pixels))


def model_fifo(p, b, name="fifo"):
    """A FIFO like :class:`~hwgen.dataflow.plumbing.InsertFIFOs` puts between ``p`` and ``b``, with a
    modelled depth (two pixels' worth of words of the wider side, plus slack, at most a frame) in
    place of the word-level schedule, which is too slow to run for every candidate."""
    burst = 2 * max(_words_per_pixel(p, "out"), _words_per_pixel(b, "in"))
    return FIFO(name, shape=tuple(p.out_shape), dt=p.odt, lanes=p.out_lanes, depth=min(p.out_words, burst) + 2)


def model_fifos(graph):
    """Cost-model FIFOs on every edge into a non-plumbing layer (as the real pass places them)."""
    out = []
    for b in graph.layers:
        if b.kind in PLUMBING:
            continue
        for ref in graph.input_refs(b):
            name, _ = parse_ref(ref)
            if name != INPUT:
                out.append(model_fifo(graph.layer(name), b))
    return out


def _plumb_copy(graph, folding=None, fifos="model", options=None):
    g = copy_graph(graph, folding, options)
    for p in (InsertDuplicates(), InsertWidthConverters()):
        g, _ = p.apply(g)
    if fifos == "schedule":
        g, _ = InsertFIFOs().apply(g)
        return g, []
    return g, model_fifos(g)


def plumbed_resources(graph, family="xilinx", folding=None, fifos="model", options=None):
    """``(resources, cycles)`` of ``graph`` (with ``folding`` applied, if given) with the stream
    plumbing it implies, worked out on a copy, in ``family``'s units: duplicates and width
    converters from the real passes; FIFOs from the real, schedule-sized pass with
    ``fifos="schedule"`` (what a build reports; ~0.3 s for CNV), else from the per-edge depth
    model the search uses (``"model"``, fast)."""
    g, extra = _plumb_copy(graph, folding, fifos, options)
    tot = dict.fromkeys(resources_of(family), 0)
    for l in list(g.layers) + extra:
        for k, v in layer_resources(l, family).items():
            tot[k] += v
    return tot, g.cycles()


def edge_resources(graph, family, p, b, k):
    """``(LUT, FF, BRAM18, DSP, URAM)`` of the width converter + FIFO between ``p`` and input ``k`` of ``b``
    (layers of ``graph``, folded as given; not changed): the width converter pass run on a
    two-layer graph, the FIFO from the depth model."""
    pc, bc = copy.copy(p), copy.copy(b)
    refs = list(graph.input_refs(graph.layer(b.name)))
    pc.inputs = tuple(INPUT for _ in graph.input_refs(graph.layer(p.name)))
    bc.inputs = tuple(r if i == k else INPUT for i, r in enumerate(refs))
    g = DataflowGraph([pc, bc])
    g, _ = InsertWidthConverters().apply(g)
    res = (0, 0, 0, 0, 0)
    for m in g.layers:
        if m is not pc and m is not bc:
            res = add(res, res_tuple(m, family))
    if b.kind not in PLUMBING:
        feed = g.layer(parse_ref(g.input_refs(bc)[k])[0])
        res = add(res, res_tuple(model_fifo(feed, bc), family))
    return res
