"""Units and their options: what the search chooses between.

A unit is a compute layer (with the SlidingWindow feeding it, whose SIMD follows
the layer's lanes) or a layer the search leaves as it is; its options are its
PE/SIMD divisor pairs (and memory styles), each with its cycles per frame and
estimated resources, pruned to those no other option with the same lanes beats.
"""

import copy
import itertools

import numpy as np

from ..base import MAX_ROM_WORD_BITS, divisors
from ..estimate import layer_resources
from ..graph import INPUT, parse_ref
from ..mvau import accumulator_range
from .cost import PLUMBING, add, res_tuple
from .pareto import fronts
from .windows import feeder, tie

__all__ = ["Option", "Unit", "pe_max", "candidates", "units_of", "unit_options"]


class Option:
    """One folding of a unit: ``fold`` (and its window generator's SIMD ``swg``), cycles per frame,
    ``res`` (LUT, FF, BRAM18, DSP), lanes in and out."""
    __slots__ = ("fold", "swg", "cycles", "res", "lin", "lout", "lc", "sc", "style")

    def __init__(self, fold, swg, cycles, res, lin, lout, lc=0, sc=0, style=None):
        self.fold, self.swg, self.cycles, self.res, self.lin, self.lout = fold, swg, cycles, res, lin, lout
        self.lc, self.sc = lc, sc         # the layer's and its window generator's own cycles
        self.style = style                # the memory style, when the search chooses it


class Unit:
    """A layer (with ``swg``, the window generator folded with it) and its options; ``free``: the search folds it."""

    def __init__(self, layer, swg, free):
        self.layer, self.swg, self.free = layer, swg, free
        self.first = swg if swg is not None else layer
        self.opts = []
        self.capped = []                 # (folding, cycles, {rom: bits}) left out for a ROM word over the cap
        self.ins = []                    # edge indices into this unit
        self.outs = []


def pe_max(layer):
    """The largest PE of ``layer``: its output rows or channels."""
    return getattr(layer, "mh", None) or getattr(layer, "channels", None)


def candidates(layer):
    """Every folding of ``layer``: each of its folding keys over the divisors of what it divides."""
    keys = sorted(layer.folding)
    ranges = []
    for k in keys:
        n = {"pe": pe_max(layer), "simd": getattr(layer, "mw", None) or getattr(layer, "channels", None)}[k]
        ranges.append(divisors(n))
    for combo in itertools.product(*ranges):
        yield dict(zip(keys, combo))


def _cheap(layer, family):
    """A stand-in for costing ``layer`` under many foldings: an MVAU whose weight matrix is cut to
    the two rows that set its accumulator range (resources() recomputes that range from all
    weights on every call), if it costs the same as the layer; else a plain copy."""
    c = copy.copy(layer)
    W = getattr(layer, "weights", None)
    if layer.kind != "MVAU" or W is None or W.ndim != 2 or W.shape[0] <= 2:
        return c
    try:
        lo, hi = accumulator_range(W, layer.idt)
        c.weights = W[[int(np.argmin(lo)), int(np.argmax(hi))]]
        for f in (dict(layer.folding), {k: 1 for k in layer.folding}):
            ref = copy.copy(layer)
            ref.set_folding(**f)
            c.set_folding(**f)
            if layer_resources(ref, family) != layer_resources(c, family):
                return copy.copy(layer)
    except Exception:  # noqa: BLE001 - a model change the stand-in does not follow: cost the layer itself
        return copy.copy(layer)
    return c


def _prune(opts):
    """Drop options another beats on cycles and every resource with the same lanes (order kept)."""
    keep = {id(o) for front in fronts(opts, order=lambda o: (o.cycles, o.res)) for o in front}
    return [o for o in opts if id(o) in keep]


def units_of(graph, fixed):
    """``(units, edges, chain)`` of ``graph``: its units in order (a free layer takes the window
    generator feeding only it); the edges ``(producer unit, consumer unit, input index, ref)``,
    each unit listing its own in ``ins``/``outs``; whether the units form a chain."""
    units, owner = [], {}
    taken = set()
    for l in graph.layers:
        if l.name in taken:
            continue
        free = bool(l.folding) and l.name not in fixed and l.kind != "SlidingWindow" and l.kind not in PLUMBING
        swg = None
        if free:
            f = feeder(graph, l)
            if f is not None and f.name not in fixed and graph.input_refs(l) == [f.name] and units \
                    and units[-1].layer is f:
                swg = f
                units.pop()
        u = Unit(l, swg, free)
        for m in (swg, l):
            if m is not None:
                owner[m.name] = len(units)
                taken.add(m.name)
        units.append(u)
    edges = []
    for j, u in enumerate(units):
        for k, ref in enumerate(graph.input_refs(u.first)):
            name, _ = parse_ref(ref)
            if name == INPUT:
                continue
            e = len(edges)
            edges.append((owner[name], j, k, ref))
            u.ins.append(e)
            units[owner[name]].outs.append(e)
    chain = all(len(u.outs) <= 1 for u in units) and all(
        (not u.ins) if j == 0 else (len(u.ins) == 1 and edges[u.ins[0]][0] == j - 1)
        for j, u in enumerate(units))
    return units, edges, chain


def unit_options(u, family, styles, edge_res):
    """Set ``u.opts`` (pruned) and ``u.capped``: every folding of a free unit in each memory style
    of ``styles`` (``[None]``: the layer's own), its window generator tied to it (or, not
    depthwise, streaming fewer lanes through a width converter costed by ``edge_res``); a unit
    that is not free has its one current option.  Works on copies of ``u``'s layers."""
    l = u.layer
    if not u.free:
        c = l.cycles()
        u.opts = [Option(dict(l.folding), None, c, res_tuple(l, family), l.in_lanes, l.out_lanes, c, 0)]
        return
    cheap = _cheap(l, family)
    # the fully unrolled MVAU may become a constant-weight layer, priced on all its weights
    full = {"pe": l.mh, "simd": l.mw} if l.kind == "MVAU" else None
    swg = copy.copy(u.swg) if u.swg is not None else None
    swg_cache = {}
    opts = []
    for f, st in itertools.product(candidates(l), styles):
        lp = copy.copy(l) if f == full else cheap
        lp.set_folding(**f)
        words = lp.rom_words()
        if any(b > MAX_ROM_WORD_BITS for b in words.values()):
            # a ROM word the hardware generator cannot build (kept to say so if the target needs it)
            if st is None or st == styles[0]:
                u.capped.append((f, lp.cycles(), {k: b for k, b in words.items() if b > MAX_ROM_WORD_BITS}))
            continue
        if st is not None:
            lp.mem_style = st
        lc, res = lp.cycles(), res_tuple(lp, family)
        if swg is None:
            opts.append(Option(f, None, lc, res, lp.in_lanes, lp.out_lanes, lc, 0, st))
            continue
        tie(swg, lp)
        tied = swg.simd
        # the window generator streams its consumer's lanes, or (non-depthwise) fewer through a width converter
        for s in ([tied] if swg.depthwise else [d for d in divisors(tied)][::-1]):
            if s not in swg_cache:
                swg.simd = s
                swg_cache[s] = (swg.cycles(), res_tuple(swg, family))
            sc, sres = swg_cache[s]
            swg.simd = s
            r = add(add(res, sres), edge_res(swg, {"simd": s}, lp, f, 0))
            opts.append(Option(f, s, max(lc, sc), r, s, lp.out_lanes, lc, sc, st))
    u.opts = _prune(opts)
