"""The folding search: options, edge costs and solvers of one graph, reusable over many cycle budgets.

For one cycle budget, an exact dynamic programme over a chain's cheapest options
(plus those whose lanes match a neighbour's), polished by coordinate descent; the
result and the FINN-style greedy folding are costed exactly and the cheaper kept; over a
device's limits, a repair moving layers to other options.  The method in full is in
:mod:`hwgen.dataflow.folding`.
"""

import copy
import time
from dataclasses import dataclass, field, fields

from ..estimate import URAM_BRAM18
from ..target import Throughput
from .cost import RES, add, copy_graph, current_folding, edge_resources, plumbed_resources
from .greedy import greedy_fold
from .options import unit_options, units_of
from .pareto import fronts

__all__ = ["FoldResult", "FoldingSearch"]


@dataclass
class FoldResult:
    """A folding the search chose, with what it costs."""
    folding: dict                    # {layer: {"pe": P, "simd": S}} of every foldable layer
    cycles: int                      # cycles per frame after plumbing
    resources: dict                  # estimated, plumbing included, in ``family``'s units
    family: str = "xilinx"
    fits: bool = True                # within the budget (True without one)
    source: str = "search"           # "search" or "finn-greedy" (the safety net won)
    seconds: float = 0.0
    options: dict = field(default_factory=dict)   # {layer: {"mem_style": …}} the search chose

    def fps(self, clock_mhz):
        """Frames per second at ``clock_mhz``."""
        return Throughput(clock_mhz).fps_at(self.cycles)


_SHIFT = 48


def _scalar(res, w):
    """One integer ordering costs by LUT + priced other resources, then block RAM (a URAM288
    counted as the RAMB18s whose bits it holds), DSP, FF."""
    primary = res[0] + w[0] * res[1] + w[1] * res[2] + w[2] * res[3]
    ram = res[2] + URAM_BRAM18 * res[4]
    return (((((primary << _SHIFT) + ram) << _SHIFT) + res[3]) << _SHIFT) + res[1]


class FoldingSearch:
    """Options, edge costs and solvers of one graph, reusable over many budgets.

    ``fixed`` layers keep their folding.  With ``mem_styles``, the weight/threshold memory
    style of every layer whose ``mem_style`` is "auto" and not named in ``keep`` is chosen
    too (distributed or block RAM: trading LUTs for block RAM to fit a device).  The graph's
    folding is left as it was; use :meth:`apply` to set a result."""

    K = 6                                  # cheapest options per layer the DP starts from

    def __init__(self, graph, fixed=(), family="xilinx", mem_styles=False, keep=()):
        self.graph, self.fixed, self.family = graph, tuple(fixed), family
        self.mem_styles, self.keep = mem_styles, tuple(keep)
        self._edge_cache = {}
        saved = current_folding(graph)
        # the edges are (producer unit, consumer unit, input index, ref)
        self.units, self.edges, self.chain = units_of(graph, self.fixed)
        try:
            for u in self.units:
                unit_options(u, family, self._styles(u.layer), self._edge_res)
        finally:
            for name, f in saved.items():
                graph.layer(name).set_folding(**f)
        self._sorted = {}

    # ---- options and edges -------------------------------------------------------
    def _styles(self, l):
        """The memory styles the search tries for ``l`` (``[None]``: it keeps its own)."""
        if self.mem_styles and getattr(l, "mem_style", None) == "auto" and l.name not in self.keep \
                and "mem_style" in {x.name for x in fields(l)}:
            return ["auto", "distributed", "block"]
        return [None]

    def _edge_res(self, p, pf, b, bf, k):
        """Width converter + FIFO between ``p`` (folded ``pf``) and input ``k`` of ``b`` (folded ``bf``),
        cached by the lanes either side (:func:`~hwgen.dataflow.folding.cost.edge_resources`)."""
        pc, bc = copy.copy(p), copy.copy(b)
        pc.set_folding(**pf)
        bc.set_folding(**bf)
        key = (p.name, pc.out_lanes, b.name, k, bc.in_lanes)
        hit = self._edge_cache.get(key)
        if hit is not None:
            return hit
        res = self._edge_cache[key] = edge_resources(self.graph, self.family, pc, bc, k)
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
                def local(o, u=u):
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
        full = current_folding(self.graph)
        full.update(fold)
        fits = budget_obj is None or budget_obj.fits(res)
        return FoldResult(full, cyc, res, self.family, fits, source, time.perf_counter() - t0, dict(opts or {}))

    def greedy_folding(self, budget):
        """The FINN-style greedy folding of the free layers for ``budget`` cycles (None if it misses it)."""
        g = copy_graph(self.graph)
        greedy_fold(g, budget, self.fixed)
        if max(l.cycles() for l in g.compute_layers) > budget:
            return None
        return {l.name: dict(l.folding) for l in g.layers if l.folding and l.name not in self.fixed}

    def _repair(self, choice, budget, limits):
        """Move layers to other options (another folding or memory style within ``budget``) until
        the modelled total fits ``limits``: each step takes the move that removes the most
        relative excess per LUT it adds.  Returns the new choice (or None if no move helps)."""
        lims = [(i, limits.limits.get(k)) for i, k in enumerate(RES)]
        lims = [(i, v) for i, v in lims if v is not None]
        # per lanes pair, the options within the budget no other beats on every resource
        opts = [[o for front in fronts([o for o in u.opts if o.cycles <= budget], order=lambda o: o.res) for o in front]
                for u in self.units]
        # a resource whose least possible total is over its limit cannot be repaired
        for i, v in lims:
            if sum(min(o.res[i] for o in os_) for os_ in opts) > v:
                return None
        choice = list(choice)
        n = len(self.units)

        def local(i, o):
            u, v = self.units[i], o.res
            for e in u.ins:
                v = add(v, self._edge(e, choice[self.edges[e][0]], o))
            for e in u.outs:
                v = add(v, self._edge(e, o, choice[self.edges[e][1]]))
            return v

        def excess(t):
            return sum(max(0, t[i] - v) / max(v, 1) for i, v in lims)

        def deltas(i):
            base = local(i, choice[i])
            return [(o, tuple(x - y for x, y in zip(local(i, o), base))) for o in opts[i] if o is not choice[i]]

        nbrs = [sorted({self.edges[e][0] for e in u.ins} | {self.edges[e][1] for e in u.outs} | {i})
                for i, u in enumerate(self.units)]
        tot = (0, 0, 0, 0, 0)
        for o in choice:
            tot = add(tot, o.res)
        for e, (pu, bu, _, _) in enumerate(self.edges):
            tot = add(tot, self._edge(e, choice[pu], choice[bu]))
        cand = [deltas(i) for i in range(n)]
        for _ in range(8 * n + 64):
            p0 = excess(tot)
            if p0 <= 0:
                return choice
            best = None
            for i in range(n):
                for o, d in cand[i]:
                    gain = p0 - excess(add(tot, d))
                    if gain <= 1e-12:
                        continue
                    score = (gain * 1e9 if d[0] <= 0 else gain / d[0], -d[0])
                    if best is None or score > best[0]:
                        best = (score, i, o, d)
            if best is None:
                return None
            _, i, o, d = best
            choice[i] = o
            tot = add(tot, d)
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
        g_fold = self.greedy_folding(budget) if greedy else None
        if g_fold is not None:
            cands.append(self._exact(g_fold, "finn-greedy", limits, t0))
        if limits is not None and not any(c.fits for c in cands):
            fixed = self._repair(choice, budget, limits)
            if fixed is not None:
                fold, opts = self._folding_of(fixed)
                cands.append(self._exact(fold, "search", limits, t0, opts))
        best = min(cands, key=lambda c: (not c.fits, _scalar(tuple(c.resources.get(k, 0) for k in RES), w)))
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

