"""Folding: PE/SIMD per layer, from a JSON file or searched for a target.

The search chooses the folding of the whole graph at once with the resource
model of :mod:`hwgen.dataflow.estimate` in the target's family, counting the
stream plumbing the folding implies (width converters where neighbouring
layers' lanes differ, FIFOs), not a greedy rule per layer:

* a throughput target (``fps`` at ``clock_mhz``, a cycle budget
  ``clock / fps``): the least total LUT (ties: block RAM, DSP, FF) with every
  layer within the budget and, given a device or limits, within those;
* only a device or limits: the highest throughput that fits;
* both: the target within the device, else a plain error saying what the
  fastest fitting folding reaches.

Method, for one cycle budget ``B``: each compute layer (with the
SlidingWindow feeding it, whose SIMD is tied to its consumer's lanes) has a
list of options (its PE/SIMD divisor pairs) with cycles and estimated
resources; options slower than ``B`` are dropped.  Edge costs (width converter
+ FIFO of a producer/consumer lanes pair) are measured by running the real
plumbing passes on a two-layer graph and cached.  On a chain, an exact
dynamic programme over the cheapest options of every layer (plus the options
whose lanes match a neighbour's) picks the folding; coordinate descent over
all options then polishes it (on a branching graph, coordinate descent from
the cheapest option per layer).  The result and, as a safety net, the
FINN-style greedy folding for the same budget are costed exactly (the passes
run on a copy of the graph) and the cheaper one kept.  With a device, the
memory style of each layer (distributed or block RAM) is chosen too, and a
least-LUT folding over a limit is repaired by moving layers to other options,
taking each time the move that removes the most excess per LUT added; the
fastest fitting folding is found by bisection over the distinct per-layer
cycle counts.

A folding file (``{"layer": {"pe": P, "simd": S, "mem_style": …}}``) sets
PE/SIMD and per-layer options (:data:`OPTION_KEYS`); layers it folds are left
alone by the search.
"""

import copy
import itertools
import json
import math
import time
from dataclasses import dataclass, field, fields

from ..errors import FoldingError
from .base import MAX_ROM_WORD_BITS, divisors
from .estimate import layer_resources

__all__ = ["apply_folding", "load_folding", "search_folding", "cycle_budget", "tie_windows", "folded_layers",
           "finn_greedy_folding", "plumbed_resources", "check_folding_doc", "FoldingSearch", "FoldResult", "OPTION_KEYS",
           "DEFAULT_FPS", "DEFAULT_CLOCK_MHZ"]

DEFAULT_CLOCK_MHZ = 100.0
DEFAULT_FPS = 1_000_000.0
RES = ("LUT", "FF", "BRAM18", "DSP")
_PLUMBING = ("FIFO", "WidthConverter", "Duplicate")


def _feeder(graph, layer):
    """The SlidingWindow feeding ``layer`` directly, if any."""
    i = graph.layers.index(layer)
    if i > 0 and graph.layers[i - 1].kind == "SlidingWindow":
        return graph.layers[i - 1]
    return None


def _tie(swg, consumer):
    """A window generator streams as many lanes as its consumer reads where it can."""
    lanes = consumer.in_lanes
    swg.simd = lanes if (swg.depthwise or swg.channels % lanes == 0) else math.gcd(lanes, swg.channels)


def tie_windows(graph, explicit=()):
    """Give every SlidingWindow not named in ``explicit`` the SIMD of its consumer."""
    for i, l in enumerate(graph.layers[:-1]):
        if l.kind == "SlidingWindow" and l.name not in explicit:
            _tie(l, graph.layers[i + 1])
    return graph


# ---------------------------------------------------------------------------- folding files
def _check_pipeline(v):
    if v in ("auto", "none") or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
        return None
    return f"must be one of auto, none or a non-negative integer, not {v!r}"


# per-layer options a folding file may set besides PE/SIMD: the choices, or a checker
OPTION_KEYS = {"mem_style": ("auto", "distributed", "block"), "pipeline": _check_pipeline}


def _options_of(layer):
    names = {f.name for f in fields(layer)}
    return [k for k in OPTION_KEYS if k in names]


def folded_layers(folding):
    """Names of the layers a folding dict sets PE/SIMD of (not only options)."""
    return tuple(n for n, p in folding.items() if any(k not in OPTION_KEYS for k in p))


def load_folding(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise FoldingError(f"folding file {path}: cannot be read ({e.strerror})")
    except ValueError as e:
        raise FoldingError(f"folding file {path}: not JSON ({e})")
    check_folding_doc(doc, f"folding file {path}")
    return doc


def _json_kind(v):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def check_folding_doc(doc, source="folding"):
    """A folding must map layer names (strings) to objects of parameters; say what was found otherwise."""
    shape = 'must map layer names to objects like {"fc0": {"pe": 4, "simd": 8}}'
    if not isinstance(doc, dict):
        raise FoldingError(f"{source}: {shape}, not {_json_kind(doc)}")
    for name, params in doc.items():
        if not isinstance(name, str):
            raise FoldingError(f"{source}: {shape}, not a key {name!r} of type {type(name).__name__}")
        if not isinstance(params, dict):
            raise FoldingError(f"{source}: {shape}, not {_json_kind(params)} for layer {name!r}")
    return doc


def apply_folding(graph, folding, source="folding"):
    """Set PE/SIMD and options from a dict ``{"layer": {"pe": P, "simd": S, "mem_style": "block"}}``."""
    check_folding_doc(folding, source)
    names = [l.name for l in graph.layers]
    for name, params in folding.items():
        if name not in names:
            raise FoldingError(f"{source}: layer {name!r} is not in the model; layers are {', '.join(names)}")
        layer = graph.layer(name)
        opts = _options_of(layer)
        fold, extra = {}, {}
        for k, v in params.items():
            if k in layer.folding:
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise FoldingError(f"{source}: layer {name}: {k} must be a positive integer, not {v!r}")
                fold[k] = v
            elif k in opts:
                rule = OPTION_KEYS[k]
                why = (None if v in rule else f"must be one of {', '.join(rule)}, not {v!r}") if isinstance(rule, tuple) else rule(v)
                if why:
                    raise FoldingError(f"{source}: layer {name}: {k} {why}")
                extra[k] = v
            elif k in OPTION_KEYS:
                keys = sorted(layer.folding) + opts
                raise FoldingError(f"{source}: layer {name}: parameter {k!r} must be one of {', '.join(keys)}, not {k!r}")
            else:
                raise FoldingError(f"{source}: layer {name}: parameter {k!r} must be one of {', '.join(sorted(layer.folding))}, not {k!r}")
        layer.set_folding(**fold)
        for k, v in extra.items():
            setattr(layer, k, v)
        layer.validate()
    tie_windows(graph, explicit=folded_layers(folding))
    _check_pinned_windows(graph, folding, source)
    return graph


def _check_pinned_windows(graph, folding, source):
    """A depthwise window (before a pool or a depthwise conv) streams its channels in blocks of its consumer's
    lanes; a SIMD pinned to anything else computes a wrong result, so it is refused."""
    for i, l in enumerate(graph.layers[:-1]):
        if l.kind != "SlidingWindow" or not l.depthwise or l.name not in folding or "simd" not in folding[l.name]:
            continue
        c = graph.layers[i + 1]
        if c.in_lanes != l.simd:
            key = "pe" if "pe" in c.folding else "simd"
            raise FoldingError(f"{source}: layer {l.name}: SIMD={l.simd} must equal the {key.upper()} of its consumer "
                               f"{c.name} ({c.in_lanes}); set {c.name}'s {key} to {l.simd} too, or leave {l.name} out "
                               f"(it follows {c.name})")


def cycle_budget(fps, clock_mhz):
    if fps is None or fps <= 0:
        raise FoldingError(f"--fps must be a positive number, not {fps!r}")
    if clock_mhz is None or clock_mhz <= 0:
        raise FoldingError(f"--clock-mhz must be a positive number, not {clock_mhz!r}")
    return int(math.floor(clock_mhz * 1e6 / fps + 1e-6))


def _pe_max(layer):
    return getattr(layer, "mh", None) or getattr(layer, "channels", None)


def _candidates(layer):
    keys = sorted(layer.folding)
    ranges = []
    for k in keys:
        n = {"pe": _pe_max(layer), "simd": getattr(layer, "mw", None) or getattr(layer, "channels", None)}[k]
        ranges.append(divisors(n))
    for combo in itertools.product(*ranges):
        yield dict(zip(keys, combo))


# ---------------------------------------------------------------------------- exact cost
def _copy_graph(graph, folding=None, options=None):
    from .graph import DataflowGraph
    layers = []
    for l in graph.layers:
        c = copy.copy(l)
        if folding and l.name in folding:
            c.set_folding(**folding[l.name])
        for k, v in ((options or {}).get(l.name) or {}).items():
            setattr(c, k, v)
        layers.append(c)
    return DataflowGraph(layers, dict(graph.head), dict(graph.tail), graph.name)


def _words_per_pixel(layer, side):
    shape = layer.in_shape if side == "in" else layer.out_shape
    words = layer.in_words if side == "in" else layer.out_words
    pixels = 1
    for d in shape[:-1]:
        pixels *= d
    return max(1, words // max(1, pixels))


def _model_fifo(p, b, name="fifo"):
    """A FIFO like :class:`~hwgen.dataflow.plumbing.InsertFIFOs` puts between ``p`` and ``b``, with a
    modelled depth (two pixels' worth of words of the wider side, plus slack, at most a frame) in
    place of the word-level schedule, which is too slow to run for every candidate."""
    from .fifo import FIFO
    burst = 2 * max(_words_per_pixel(p, "out"), _words_per_pixel(b, "in"))
    return FIFO(name, shape=tuple(p.out_shape), dt=p.odt, lanes=p.out_lanes, depth=min(p.out_words, burst) + 2)


def _model_fifos(graph):
    """Cost-model FIFOs on every edge into a non-plumbing layer (as the real pass places them)."""
    from .graph import INPUT, parse_ref
    out = []
    for b in graph.layers:
        if b.kind in _PLUMBING:
            continue
        for ref in graph.input_refs(b):
            name, _ = parse_ref(ref)
            if name != INPUT:
                out.append(_model_fifo(graph.layer(name), b))
    return out


def _plumb_copy(graph, folding=None, fifos="model", options=None):
    from .plumbing import InsertDuplicates, InsertFIFOs, InsertWidthConverters
    g = _copy_graph(graph, folding, options)
    for p in (InsertDuplicates(), InsertWidthConverters()):
        g, _ = p.apply(g)
    if fifos == "schedule":
        g, _ = InsertFIFOs().apply(g)
        return g, []
    return g, _model_fifos(g)


def plumbed_resources(graph, family="xilinx", folding=None, fifos="model", options=None):
    """``(resources, cycles)`` of ``graph`` (with ``folding`` applied, if given) with the stream
    plumbing it implies, worked out on a copy, in ``family``'s units: duplicates and width
    converters from the real passes; FIFOs from the real, schedule-sized pass with
    ``fifos="schedule"`` (what a build reports; ~0.3 s for CNV), else from the per-edge depth
    model the search uses (``"model"``, fast)."""
    g, extra = _plumb_copy(graph, folding, fifos, options)
    tot = dict.fromkeys(RES, 0)
    for l in list(g.layers) + extra:
        for k, v in layer_resources(l, family).items():
            tot[k] += v
    return tot, g.cycles()


def _current_folding(graph):
    return {l.name: dict(l.folding) for l in graph.layers if l.folding}


# ---------------------------------------------------------------------------- FINN-style greedy
WWIDTH_MAX = 36


def _raise_until(layer, key, n, target):
    """FINN's rule: walk the divisors of ``n`` upwards until the layer meets ``target``."""
    for v in divisors(n):
        layer.set_folding(**{key: v})
        if layer.cycles() <= target:
            return


def _greedy_pass(graph, target, fixed):
    for l in graph.layers:
        if l.name in fixed or not l.folding or l.kind in _PLUMBING:
            continue
        if l.kind == "MVAU":
            l.set_folding(pe=1, simd=1)
            prev = 1
            for s in divisors(l.mw):            # SIMD first, while the weight word stays narrow
                l.set_folding(simd=s)
                if l.cycles() <= target:
                    break
                if l.wdt.bits * s > WWIDTH_MAX:
                    l.set_folding(simd=prev)
                    break
                prev = s
            _raise_until(l, "pe", l.mh, target)   # then PE
        elif l.kind == "SlidingWindow":
            if not l.depthwise:
                _raise_until(l, "simd", l.channels, target)
        else:                                      # VVAU, Pool and the PE-only kinds
            _raise_until(l, "pe", _pe_max(l), target)
            f = _feeder(graph, l)
            if l.kind in ("VVAU", "Pool") and f is not None and f.depthwise and f.name not in fixed:
                f.simd = l.pe


def _greedy(graph, target, fixed=()):
    _greedy_pass(graph, target, fixed)
    got = max(l.cycles() for l in graph.compute_layers)
    if got > target:                                # FINN's two-pass relaxation: balance to what was reached
        _greedy_pass(graph, got, fixed)
    return graph


def finn_greedy_folding(graph, fps, clock_mhz=DEFAULT_CLOCK_MHZ, fixed=()):
    """FINN's ``SetFolding`` rule, as a baseline: every layer from PE=SIMD=1, raised through
    the divisors until it meets ``clock / fps`` on its own — an MVAU's SIMD first (while
    ``SIMD · weight bits <= 36``), then its PE; a VVAU's or Pool's PE (its depthwise
    window generator takes the same SIMD); a non-depthwise window generator's SIMD on its
    own; other kinds' PE.  If the target is out of reach, a second pass balances the
    pipeline to the slowest layer reached.  (FINN stops below the target, ``<``; here a
    layer stops at ``<=`` the budget, the same test the search uses.)  Sets the folding of
    ``graph`` in place and returns it."""
    budget = cycle_budget(fps, clock_mhz)
    return _greedy(graph, max(1, budget), fixed)


# ---------------------------------------------------------------------------- the search
@dataclass
class FoldResult:
    folding: dict                    # {layer: {"pe": P, "simd": S}} of every foldable layer
    cycles: int                      # cycles per frame after plumbing
    resources: dict                  # estimated, plumbing included, in ``family``'s units
    family: str = "xilinx"
    fits: bool = True                # within the budget (True without one)
    source: str = "search"           # "search" or "finn-greedy" (the safety net won)
    seconds: float = 0.0
    options: dict = field(default_factory=dict)   # {layer: {"mem_style": …}} the search chose

    def fps(self, clock_mhz):
        return clock_mhz * 1e6 / self.cycles


class _Opt:
    __slots__ = ("fold", "swg", "cycles", "res", "lin", "lout", "lc", "sc", "style")

    def __init__(self, fold, swg, cycles, res, lin, lout, lc=0, sc=0, style=None):
        self.fold, self.swg, self.cycles, self.res, self.lin, self.lout = fold, swg, cycles, res, lin, lout
        self.lc, self.sc = lc, sc         # the layer's and its window generator's own cycles
        self.style = style                # the memory style, when the search chooses it


class _Unit:
    def __init__(self, layer, swg, free):
        self.layer, self.swg, self.free = layer, swg, free
        self.first = swg if swg is not None else layer
        self.opts = []
        self.capped = []                 # (folding, cycles, {rom: bits}) left out for a ROM word over the cap
        self.ins = []                    # edge indices into this unit
        self.outs = []


def _cheap(layer, family):
    """A stand-in for costing ``layer`` under many foldings: an MVAU whose weight matrix is cut to
    the two rows that set its accumulator range (resources() recomputes that range from all
    weights on every call), if it costs the same as the layer; else a plain copy."""
    c = copy.copy(layer)
    W = getattr(layer, "weights", None)
    if layer.kind != "MVAU" or W is None or W.ndim != 2 or W.shape[0] <= 2:
        return c
    try:
        import numpy as np

        from .mvau import accumulator_range
        lo, hi = accumulator_range(W, layer.idt)
        c.weights = W[[int(np.argmin(lo)), int(np.argmax(hi))]]
        for f in (dict(layer.folding), {k: 1 for k in layer.folding}):
            ref = copy.copy(layer)
            ref.set_folding(**f)
            c.set_folding(**f)
            if layer_resources(ref, family) != layer_resources(c, family):
                return copy.copy(layer)
    except Exception:            # pragma: no cover - a model change the stand-in does not follow
        return copy.copy(layer)
    return c


def _prune(opts):
    """Drop options another beats on cycles and every resource with the same lanes."""
    groups = {}
    for o in opts:
        groups.setdefault((o.lin, o.lout), []).append(o)
    keep = set()
    for g in groups.values():
        g.sort(key=lambda o: (o.cycles, o.res))
        front = []
        for o in g:
            if not any(all(a <= b for a, b in zip(q.res, o.res)) for q in front):
                front.append(o)
        keep.update(id(o) for o in front)
    return [o for o in opts if id(o) in keep]


def _add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _res(layer, family):
    r = layer_resources(layer, family)
    return (r["LUT"], r["FF"], r["BRAM18"], r["DSP"])


_SHIFT = 48


def _scalar(res, w):
    """One integer ordering costs by LUT + priced other resources, then BRAM, DSP, FF."""
    primary = res[0] + w[0] * res[1] + w[1] * res[2] + w[2] * res[3]
    return (((((primary << _SHIFT) + res[2]) << _SHIFT) + res[3]) << _SHIFT) + res[1]




class FoldingSearch:
    """Options, edge costs and solvers of one graph, reusable over many budgets.

    ``fixed`` layers keep their folding.  With ``mem_styles``, the weight/threshold memory
    style of every layer whose ``mem_style`` is "auto" and not named in ``keep`` is chosen
    too (distributed or block RAM: trading LUTs for block RAM to fit a device).  The graph's
    folding is left as it was; use :meth:`apply` to set a result."""

    K = 6                                  # cheapest options per layer the DP starts from

    def __init__(self, graph, fixed=(), family="xilinx", mem_styles=False, keep=()):
        from .graph import INPUT, parse_ref
        self.graph, self.fixed, self.family = graph, tuple(fixed), family
        self.mem_styles, self.keep = mem_styles, tuple(keep)
        self._edge_cache = {}
        saved = _current_folding(graph)
        layers = graph.layers
        units, owner = [], {}
        taken = set()
        for i, l in enumerate(layers):
            if l.name in taken:
                continue
            free = bool(l.folding) and l.name not in self.fixed and l.kind != "SlidingWindow" and l.kind not in _PLUMBING
            swg = None
            if free:
                f = _feeder(graph, l)
                if f is not None and f.name not in self.fixed and graph.input_refs(l) == [f.name] and units \
                        and units[-1].layer is f:
                    swg = f
                    units.pop()
            u = _Unit(l, swg, free)
            for m in (swg, l):
                if m is not None:
                    owner[m.name] = len(units)
                    taken.add(m.name)
            units.append(u)
        self.units = units
        self.edges = []                    # (producer unit, consumer unit, input index, ref)
        for j, u in enumerate(units):
            for k, ref in enumerate(graph.input_refs(u.first)):
                name, _ = parse_ref(ref)
                if name == INPUT:
                    continue
                e = len(self.edges)
                self.edges.append((owner[name], j, k, ref))
                u.ins.append(e)
                units[owner[name]].outs.append(e)
        self.chain = all(len(u.outs) <= 1 for u in units) and all(
            (not u.ins) if j == 0 else (len(u.ins) == 1 and self.edges[u.ins[0]][0] == j - 1)
            for j, u in enumerate(units))
        try:
            for u in units:
                self._options(u)
        finally:
            for name, f in saved.items():
                graph.layer(name).set_folding(**f)
        self._sorted = {}

    # ---- options and edges -------------------------------------------------------
    def _options(self, u):
        l, fam = u.layer, self.family
        if not u.free:
            c = l.cycles()
            u.opts = [_Opt(dict(l.folding), None, c, _res(l, fam), l.in_lanes, l.out_lanes, c, 0)]
            return
        lp = _cheap(l, fam)
        swg = copy.copy(u.swg) if u.swg is not None else None
        swg_cache = {}
        opts = []
        styles = [None]
        if self.mem_styles and getattr(l, "mem_style", None) == "auto" and l.name not in self.keep \
                and "mem_style" in {x.name for x in fields(l)}:
            styles = ["auto", "distributed", "block"]
        for f, st in itertools.product(_candidates(l), styles):
            lp.set_folding(**f)
            words = lp.rom_words()
            if any(b > MAX_ROM_WORD_BITS for b in words.values()):
                # a ROM word the hardware generator cannot build (kept to say so if the target needs it)
                if st is None or st == styles[0]:
                    u.capped.append((f, lp.cycles(), {k: b for k, b in words.items() if b > MAX_ROM_WORD_BITS}))
                continue
            if st is not None:
                lp.mem_style = st
            lc, res = lp.cycles(), _res(lp, fam)
            if swg is None:
                opts.append(_Opt(f, None, lc, res, lp.in_lanes, lp.out_lanes, lc, 0, st))
                continue
            _tie(swg, lp)
            tied = swg.simd
            # the window generator streams its consumer's lanes, or (non-depthwise) fewer through a width converter
            for s in ([tied] if swg.depthwise else [d for d in divisors(tied)][::-1]):
                if s not in swg_cache:
                    swg.simd = s
                    swg_cache[s] = (swg.cycles(), _res(swg, fam))
                sc, sres = swg_cache[s]
                swg.simd = s
                r = _add(_add(res, sres), self._edge_res(swg, {"simd": s}, lp, f, 0))
                opts.append(_Opt(f, s, max(lc, sc), r, s, lp.out_lanes, lc, sc, st))
        u.opts = _prune(opts)

    def _edge_res(self, p, pf, b, bf, k, inner=False):
        """Width converter + FIFO between ``p`` (folded ``pf``) and input ``k`` of ``b`` (folded ``bf``):
        the width converter pass run on a two-layer graph, the FIFO from the depth model."""
        from .graph import INPUT, DataflowGraph, parse_ref
        from .plumbing import InsertWidthConverters
        pc, bc = copy.copy(p), copy.copy(b)
        pc.set_folding(**pf)
        bc.set_folding(**bf)
        key = (p.name, pc.out_lanes, b.name, k, bc.in_lanes)
        hit = self._edge_cache.get(key)
        if hit is not None:
            return hit
        refs = list(self.graph.input_refs(self.graph.layer(b.name)))
        pc.inputs = tuple(INPUT for _ in self.graph.input_refs(self.graph.layer(p.name)))
        bc.inputs = tuple(r if i == k else INPUT for i, r in enumerate(refs))
        g = DataflowGraph([pc, bc])
        g, _ = InsertWidthConverters().apply(g)
        res = (0, 0, 0, 0)
        for m in g.layers:
            if m is not pc and m is not bc:
                res = _add(res, _res(m, self.family))
        if b.kind not in _PLUMBING:
            feed = g.layer(parse_ref(g.input_refs(bc)[k])[0])
            res = _add(res, _res(_model_fifo(feed, bc), self.family))
        self._edge_cache[key] = res
        return res

    def _edge(self, e, po, bo):
        hit = self._edge_cache.get((e, po.lout, bo.lin))
        if hit is not None:
            return hit
        pu, bu, k, _ = self.edges[e]
        pu, bu = self.units[pu], self.units[bu]
        bf = {"simd": bo.swg} if bu.swg is not None else bo.fold
        res = self._edge_cache[(e, po.lout, bo.lin)] = self._edge_res(pu.layer, po.fold, bu.first, bf, k)
        return res

    # ---- budgets -------------------------------------------------------------------
    @property
    def fastest(self):
        """The fewest cycles per frame any folding reaches."""
        return max(min(o.cycles for o in u.opts) for u in self.units)

    @property
    def slowest(self):
        """Cycles per frame with every free layer fully folded (PE = SIMD = 1)."""
        return max(max(o.cycles for o in u.opts) for u in self.units)

    def budgets(self):
        """The distinct cycle counts a folding's bottleneck can have, fastest first."""
        lo = self.fastest
        return sorted({o.cycles for u in self.units for o in u.opts if o.cycles >= lo} | {lo})

    def too_slow(self, budget):
        """The first free unit no option of which meets ``budget`` (None if all can)."""
        for u in self.units:
            if u.free and min(o.cycles for o in u.opts) > budget:
                return u
        return None

    # ---- solving -------------------------------------------------------------------
    def _sorted_opts(self, w):
        if w not in self._sorted:
            self._sorted[w] = [sorted(u.opts, key=lambda o: _scalar(o.res, w)) for u in self.units]
        return self._sorted[w]

    def _solve_model(self, budget, w):
        opts = [[o for o in s if o.cycles <= budget] for s in self._sorted_opts(w)]
        if any(not o for o in opts):
            return None
        ecost = {}

        def edge(e, po, bo):
            key = (e, id(po), id(bo))
            v = ecost.get(key)
            if v is None:
                v = ecost[key] = _scalar(self._edge(e, po, bo), w)
            return v

        n = len(self.units)
        if self.chain and n > 1:
            choice = self._dp(opts, edge, w)
        else:
            choice = [o[0] for o in opts]
        # coordinate descent over every option, neighbours fixed
        for _ in range(6):
            changed = False
            for i, u in enumerate(self.units):
                def local(o):
                    c = _scalar(o.res, w)
                    for e in u.ins:
                        c += edge(e, choice[self.edges[e][0]], o)
                    for e in u.outs:
                        c += edge(e, o, choice[self.edges[e][1]])
                    return c
                best, bc = choice[i], local(choice[i])
                for o in opts[i]:
                    c = local(o)
                    if c < bc:
                        best, bc = o, c
                if best is not choice[i]:
                    choice[i], changed = best, True
            if not changed:
                break
        return choice

    def _dp(self, opts, edge, w):
        K = self.K
        pools = []
        n = len(opts)
        top = [o[:K] for o in opts]
        for i in range(n):
            pool = list(top[i])
            seen = {id(o) for o in pool}
            want_in = {o.lout for o in top[i - 1]} if i else set()
            want_out = {o.lin for o in top[i + 1]} if i + 1 < n else set()
            for o in opts[i]:                       # the cheapest option matching each neighbour's lanes
                hit = False
                if o.lin in want_in:
                    want_in.discard(o.lin)
                    hit = True
                if o.lout in want_out:
                    want_out.discard(o.lout)
                    hit = True
                if hit and id(o) not in seen:
                    pool.append(o)
                    seen.add(id(o))
                if not want_in and not want_out:
                    break
            pools.append(pool)
        cost = [_scalar(o.res, w) for o in pools[0]]
        back = []
        for i in range(1, n):
            e = self.units[i].ins[0]
            nc, nb = [], []
            for o in pools[i]:
                best, arg = None, 0
                for j, po in enumerate(pools[i - 1]):
                    c = cost[j] + edge(e, po, o)
                    if best is None or c < best:
                        best, arg = c, j
                nc.append(best + _scalar(o.res, w))
                nb.append(arg)
            cost, back = nc, back + [nb]
        j = min(range(len(cost)), key=cost.__getitem__)
        choice = [None] * n
        for i in range(n - 1, -1, -1):
            choice[i] = pools[i][j]
            if i:
                j = back[i - 1][j]
        return choice

    def _folding_of(self, choice):
        fold, opts = {}, {}
        for u, o in zip(self.units, choice):
            if u.free:
                fold[u.layer.name] = dict(o.fold)
                if u.swg is not None:
                    fold[u.swg.name] = {"simd": o.swg}
                if o.style is not None and o.style != u.layer.mem_style:
                    opts[u.layer.name] = {"mem_style": o.style}
        return fold, opts

    def _exact(self, fold, source, budget_obj, t0, opts=None):
        res, cyc = plumbed_resources(self.graph, self.family, fold, options=opts)
        full = _current_folding(self.graph)
        full.update(fold)
        fits = budget_obj is None or budget_obj.fits(res)
        return FoldResult(full, cyc, res, self.family, fits, source, time.perf_counter() - t0, dict(opts or {}))

    def _greedy_folding(self, budget):
        g = _copy_graph(self.graph)
        _greedy(g, budget, self.fixed)
        if max(l.cycles() for l in g.compute_layers) > budget:
            return None
        return {l.name: dict(l.folding) for l in g.layers if l.folding and l.name not in self.fixed}

    def _repair(self, choice, budget, limits):
        """Move layers to other options (another folding or memory style within ``budget``) until
        the modelled total fits ``limits``: each step takes the move that removes the most
        relative excess per LUT it adds.  Returns the new choice (or None if no move helps)."""
        lims = [(i, limits.limits.get(k)) for i, k in enumerate(RES)]
        lims = [(i, v) for i, v in lims if v is not None]
        opts = []
        for u in self.units:                # per lanes pair, the options no other beats on every resource
            groups = {}
            for o in u.opts:
                if o.cycles <= budget:
                    groups.setdefault((o.lin, o.lout), []).append(o)
            keep = []
            for g in groups.values():
                g.sort(key=lambda o: o.res)
                front = []
                for o in g:
                    if not any(all(x <= y for x, y in zip(q.res, o.res)) for q in front):
                        front.append(o)
                keep += front
            opts.append(keep)
        # a resource whose least possible total is over its limit cannot be repaired
        for i, v in lims:
            if sum(min(o.res[i] for o in os_) for os_ in opts) > v:
                return None
        choice = list(choice)
        n = len(self.units)

        def local(i, o):
            u, v = self.units[i], o.res
            for e in u.ins:
                v = _add(v, self._edge(e, choice[self.edges[e][0]], o))
            for e in u.outs:
                v = _add(v, self._edge(e, o, choice[self.edges[e][1]]))
            return v

        def excess(t):
            return sum(max(0, t[i] - v) / max(v, 1) for i, v in lims)

        def deltas(i):
            base = local(i, choice[i])
            return [(o, tuple(x - y for x, y in zip(local(i, o), base))) for o in opts[i] if o is not choice[i]]

        nbrs = [sorted({self.edges[e][0] for e in u.ins} | {self.edges[e][1] for e in u.outs} | {i})
                for i, u in enumerate(self.units)]
        tot = (0, 0, 0, 0)
        for o in choice:
            tot = _add(tot, o.res)
        for e, (pu, bu, _, _) in enumerate(self.edges):
            tot = _add(tot, self._edge(e, choice[pu], choice[bu]))
        cand = [deltas(i) for i in range(n)]
        for _ in range(8 * n + 64):
            p0 = excess(tot)
            if p0 <= 0:
                return choice
            best = None
            for i in range(n):
                for o, d in cand[i]:
                    gain = p0 - excess(_add(tot, d))
                    if gain <= 1e-12:
                        continue
                    score = (gain * 1e9 if d[0] <= 0 else gain / d[0], -d[0])
                    if best is None or score > best[0]:
                        best = (score, i, o, d)
            if best is None:
                return None
            _, i, o, d = best
            choice[i] = o
            tot = _add(tot, d)
            for j in nbrs[i]:
                cand[j] = deltas(j)
        return choice if excess(tot) <= 0 else None

    def solve(self, budget, limits=None, greedy=True):
        """The least-LUT folding with every layer within ``budget`` cycles (None if some layer
        cannot be that fast).  With ``limits`` (a :class:`hwgen.devices.Budget`) and a least-LUT
        folding over them, layers move to costlier options that relieve the resources over
        the limit, least LUT per relief first (``fits`` says whether that succeeded)."""
        t0 = time.perf_counter()
        w = (0, 0, 0)
        choice = self._solve_model(budget, w)
        if choice is None:
            return None
        fold, opts = self._folding_of(choice)
        cands = [self._exact(fold, "search", limits, t0, opts)]
        g_fold = self._greedy_folding(budget) if greedy else None
        if g_fold is not None:
            cands.append(self._exact(g_fold, "finn-greedy", limits, t0))
        if limits is not None and not any(c.fits for c in cands):
            fixed = self._repair(choice, budget, limits)
            if fixed is not None:
                fold, opts = self._folding_of(fixed)
                cands.append(self._exact(fold, "search", limits, t0, opts))
        best = min(cands, key=lambda c: (not c.fits, _scalar(tuple(c.resources[k] for k in RES), w)))
        best.seconds = time.perf_counter() - t0
        return best

    def fastest_fitting(self, limits):
        """The highest-throughput folding within ``limits`` (least cost at that throughput), or None."""
        bs = self.budgets()
        lo, hi, found = 0, len(bs) - 1, None
        r = self.solve(bs[hi], limits)
        if r is None or not r.fits:
            return None
        found = r
        while lo < hi:
            mid = (lo + hi) // 2
            r = self.solve(bs[mid], limits)
            if r is not None and r.fits:
                found, hi = r, mid
            else:
                lo = mid + 1
        return found

    def apply(self, result):
        for name, f in result.folding.items():
            self.graph.layer(name).set_folding(**f)
        for name, o in result.options.items():
            for k, v in o.items():
                setattr(self.graph.layer(name), k, v)
        return self.graph


def _fmt_res(res, family):
    from ..devices import unit_names
    u = unit_names(family)
    return ", ".join(f"{res[k]:,} {u[k]}" for k in RES)


def _fmt_fold(fold):
    return ", ".join(f"{k}={v}" for k, v in sorted(fold.items()))


def _lanes(fold):
    return math.prod(fold.values())


def _rom_cap(layer, what, fold):
    """What the ROM word cap allows, in the layer's own terms (for an error message)."""
    if what == "weight":
        n = MAX_ROM_WORD_BITS // layer.wdt.bits
        return f"{n:,} lanes of {layer.wdt} weights"
    per_pe = layer.rom_words()["threshold"] // layer.pe
    return f"PE={MAX_ROM_WORD_BITS // per_pe:,} with {layer.n_thresholds} thresholds of {per_pe // max(1, layer.n_thresholds)} bits per channel"


def _cap_error(layer, u, fps, clock_mhz, budget, fastest):
    """The message when only foldings over the ROM word cap meet ``budget`` (else None)."""
    meeting = [c for c in u.capped if c[1] <= budget]
    if not meeting:
        return None
    fold, _, over = min(meeting, key=lambda c: (_lanes(c[0]), c[1], sorted(c[0].items())))
    what, bits = max(over.items(), key=lambda kv: kv[1])
    probe = copy.copy(layer)
    probe.set_folding(**fold)
    return FoldingError(
        f"layer {layer.name}: target {fps:g} fps at {clock_mhz:g} MHz allows {budget:,} cycles per frame, which needs "
        f"at least {_lanes(fold):,} lanes ({_fmt_fold(fold)}), a {bits:,}-bit {what} ROM word; hwgen's cap is "
        f"{MAX_ROM_WORD_BITS:,} bits per ROM word ({_rom_cap(probe, what, fold)}), so the fastest folding "
        f"({_fmt_fold(fastest.fold)}: {_lanes(fastest.fold):,} lanes) needs {fastest.cycles:,}; "
        f"lower --fps or raise --clock-mhz")


def _too_slow_error(graph, u, fps, clock_mhz, budget):
    layer, feeder = u.layer, u.swg
    fastest = min(u.opts, key=lambda o: o.cycles)
    capped = _cap_error(layer, u, fps, clock_mhz, budget, fastest)
    if capped is not None:
        return capped
    why = ""
    if feeder is not None and fastest.sc >= fastest.lc:
        why = (f" (its sliding window {feeder.name} streams C={feeder.channels} channels a cycle: "
               f"{fastest.sc} words per frame)")
    return FoldingError(
        f"layer {layer.name}: target {fps:g} fps at {clock_mhz:g} MHz allows {budget} cycles per frame, "
        f"but the fastest folding ({', '.join(f'{k}={v}' for k, v in sorted(fastest.fold.items()))}) needs {fastest.cycles}{why}; "
        f"lower --fps or raise --clock-mhz")


def search_folding(graph, fps=None, clock_mhz=DEFAULT_CLOCK_MHZ, fixed=(), *, budget=None, family=None,
                   return_result=False, keep_mem_style=(), fifos="schedule"):
    """Choose PE/SIMD of every layer not in ``fixed`` and set it on ``graph``.

    * ``fps`` given: the least-LUT folding whose every layer takes at most ``clock / fps``
      cycles per frame (within ``budget``, a :class:`hwgen.devices.Budget`, if given);
    * only ``budget``: the highest throughput within it;
    * neither: ``fps`` defaults to :data:`DEFAULT_FPS`.

    With a ``budget``, the memory style of layers left at ``mem_style="auto"`` (and not
    named in ``keep_mem_style``) is chosen too: block RAM where it saves LUTs, distributed
    where block RAM runs out.  With ``fifos="schedule"`` (the default), when the chosen
    folding and the FINN-style greedy one are close, both are costed with the real FIFO
    pass and the cheaper kept (``fifos="model"``: the search's per-edge FIFO model only).

    Raises :class:`FoldingError` saying what is reachable when the target or the budget
    cannot be met.  Returns ``graph`` (or the :class:`FoldResult` with ``return_result``)."""
    if family is None:
        family = budget.family if budget is not None else "xilinx"
    if fps is None and budget is None:
        fps = DEFAULT_FPS
    if fps is not None:
        target = cycle_budget(fps, clock_mhz)
        if target < 1:
            raise FoldingError(f"target {fps:g} fps at {clock_mhz:g} MHz leaves less than one cycle per frame")
    s = FoldingSearch(graph, fixed, family, mem_styles=budget is not None, keep=keep_mem_style)
    if fps is not None:
        u = s.too_slow(target)
        if u is not None:
            raise _too_slow_error(graph, u, fps, clock_mhz, target)
        r = s.solve(target, budget)
        if r is None:            # a fixed layer alone is slower than the target: fold the rest for it anyway
            r = s.solve(max(target, s.fastest), budget)
        if not r.fits:
            fit = s.fastest_fitting(budget)
            r = s.solve(target)                      # the least-LUT folding meeting the target
            need = (f"target {fps:g} fps at {clock_mhz:g} MHz ({target:,} cycles per frame) does not fit {budget.describe()}: "
                    f"the least-LUT folding meeting it needs {_fmt_res(r.resources, family)} ({budget.describe_over(r.resources)})")
            if fit is None:
                raise FoldingError(f"{need}; no folding fits, not even the slowest; choose a larger --device or raise the limits")
            raise FoldingError(f"{need}; the fastest folding that fits reaches {fit.fps(clock_mhz):,.0f} fps "
                               f"({fit.cycles:,} cycles per frame, {_fmt_res(fit.resources, family)}); "
                               f"lower --fps or choose a larger --device")
    else:
        r = s.fastest_fitting(budget)
        if r is None:
            slow = s.solve(s.slowest, budget)
            raise FoldingError(f"no folding fits {budget.describe()}: even the slowest ({slow.cycles:,} cycles per frame, "
                               f"{slow.fps(clock_mhz):,.0f} fps at {clock_mhz:g} MHz) needs {_fmt_res(slow.resources, family)} "
                               f"({budget.describe_over(slow.resources)}); choose a larger --device or raise the limits")
    if fifos == "schedule":
        r = _final_check(s, r, target if fps is not None else r.cycles, budget)
    s.apply(r)
    return r if return_result else graph


FIFO_MODEL_ERROR = 0.06     # the largest LUT share by which model and schedule-sized FIFOs were seen to differ


def _final_check(s, r, cycles, budget):
    """Re-cost the chosen folding and the FINN-style greedy one for the same cycle budget with
    the real, schedule-sized FIFO pass (the search costs FIFOs with a per-edge depth model) and
    keep the one with fewer LUTs — when their modelled LUTs are within :data:`FIFO_MODEL_ERROR`
    of each other (the real pass takes seconds on slow CNV foldings)."""
    t0 = time.perf_counter()
    g_fold = s._greedy_folding(cycles)
    if g_fold is None or r.source == "finn-greedy":
        return r
    full = _current_folding(s.graph)
    full.update(g_fold)
    if plumbed_resources(s.graph, s.family, full)[0]["LUT"] > (1 + FIFO_MODEL_ERROR) * r.resources["LUT"]:
        return r                          # far apart: beyond what the FIFO model gets wrong
    res, cyc = plumbed_resources(s.graph, s.family, r.folding, "schedule", r.options)
    r = FoldResult(r.folding, cyc, res, r.family, r.fits, r.source, r.seconds, r.options)
    gres, gcyc = plumbed_resources(s.graph, s.family, full, "schedule")
    fits = budget is None or budget.fits(gres)
    if (not fits, gres["LUT"], gres["BRAM18"], gres["DSP"], gres["FF"]) < \
            (not (budget is None or budget.fits(res)), res["LUT"], res["BRAM18"], res["DSP"], res["FF"]):
        r = FoldResult(full, gcyc, gres, r.family, fits, "finn-greedy", r.seconds)
    r.seconds += time.perf_counter() - t0
    return r
