"""FINN's ``SetFolding`` rule, the baseline the search is measured against (and its safety net)."""

from ..base import divisors
from ..target import DEFAULT_CLOCK_MHZ, Throughput
from .cost import PLUMBING
from .options import pe_max
from .windows import feeder

__all__ = ["WWIDTH_MAX", "greedy_fold", "finn_greedy_folding"]

WWIDTH_MAX = 36


def _raise_until(layer, key, n, target):
    """FINN's rule: walk the divisors of ``n`` upwards until the layer meets ``target``."""
    for v in divisors(n):
        layer.set_folding(**{key: v})
        if layer.cycles() <= target:
            return


def _greedy_pass(graph, target, fixed):
    for l in graph.layers:
        if l.name in fixed or not l.folding or l.kind in PLUMBING:
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
            _raise_until(l, "pe", pe_max(l), target)
            f = feeder(graph, l)
            if l.kind in ("VVAU", "Pool") and f is not None and f.depthwise and f.name not in fixed:
                f.simd = l.pe


def greedy_fold(graph, cycles, fixed=()):
    """FINN's rule (see :func:`finn_greedy_folding`) for a budget of ``cycles`` per frame: sets the
    folding of ``graph``'s layers not in ``fixed`` in place and returns ``graph``."""
    _greedy_pass(graph, cycles, fixed)
    got = max(l.cycles() for l in graph.compute_layers)
    if got > cycles:                                # FINN's two-pass relaxation: balance to what was reached
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
    return greedy_fold(graph, max(1, Throughput(clock_mhz, fps).cycles), fixed)
