"""The entry: a throughput target and/or a device's limits in, the folding of the whole graph out.

The target is resolved once into a cycle budget (:class:`~hwgen.dataflow.target.Throughput`);
everything below works in cycles per frame.
"""

import time

from ..target import DEFAULT_CLOCK_MHZ, DEFAULT_FPS, Throughput
from .cost import current_folding, plumbed_resources
from .messages import no_fit_error, target_no_fit_error, too_few_cycles_error, too_slow_error
from .search import FoldingSearch, FoldResult

__all__ = ["fold_for", "search_folding", "FIFO_MODEL_ERROR"]

FIFO_MODEL_ERROR = 0.06     # the largest LUT share by which model and schedule-sized FIFOs were seen to differ


def search_folding(graph, fps=None, clock_mhz=DEFAULT_CLOCK_MHZ, fixed=(), *, budget=None, family=None,
                   return_result=False, keep_mem_style=(), fifos="schedule"):
    """Choose PE/SIMD of every layer not in ``fixed`` and set it on ``graph``: :func:`fold_for`
    with the target ``fps`` frames/s at ``clock_mhz``."""
    return fold_for(graph, Throughput(clock_mhz, fps), fixed, budget=budget, family=family,
                    return_result=return_result, keep_mem_style=keep_mem_style, fifos=fifos)


def fold_for(graph, target, fixed=(), *, budget=None, family=None, return_result=False, keep_mem_style=(),
             fifos="schedule"):
    """Choose PE/SIMD of every layer not in ``fixed`` for ``target`` (a :class:`Throughput`) and set it on ``graph``.

    * ``target.fps`` given: the least-LUT folding whose every layer takes at most ``target.cycles``
      cycles per frame (within ``budget``, a :class:`hwgen.devices.Budget`, if given);
    * only ``budget``: the highest throughput within it;
    * neither: the target is :data:`~hwgen.dataflow.target.DEFAULT_FPS` frames/s.

    With a ``budget``, the memory style of layers left at ``mem_style="auto"`` (and not
    named in ``keep_mem_style``) is chosen too: block RAM where it saves LUTs, distributed
    where block RAM runs out.  With ``fifos="schedule"`` (the default), when the chosen
    folding and the FINN-style greedy one are close, both are costed with the real FIFO
    pass and the cheaper kept (``fifos="model"``: the search's per-edge FIFO model only).

    Raises :class:`~hwgen.errors.FoldingError` saying what is reachable when the target or the budget
    cannot be met.  Returns ``graph`` (or the :class:`FoldResult` with ``return_result``)."""
    if family is None:
        family = budget.family if budget is not None else "xilinx"
    if target.fps is None and budget is None:
        target = Throughput(target.clock_mhz, DEFAULT_FPS)
    if target.fps is not None:
        cycles = target.cycles
        if cycles < 1:
            raise too_few_cycles_error(target)
    s = FoldingSearch(graph, fixed, family, mem_styles=budget is not None, keep=keep_mem_style)
    if target.fps is not None:
        u = s.too_slow(cycles)
        if u is not None:
            raise too_slow_error(u, target)
        r = s.solve(cycles, budget)
        if r is None:            # a fixed layer alone is slower than the target: fold the rest for it anyway
            r = s.solve(max(cycles, s.fastest), budget)
        if not r.fits:
            fit = s.fastest_fitting(budget)
            raise target_no_fit_error(target, budget, s.solve(cycles), fit, family)   # with the least-LUT folding
    else:
        r = s.fastest_fitting(budget)
        if r is None:
            raise no_fit_error(budget, s.solve(s.slowest, budget), target, family)
    if fifos == "schedule":
        r = _final_check(s, r, cycles if target.fps is not None else r.cycles, budget)
    s.apply(r)
    return r if return_result else graph


def _final_check(s, r, cycles, budget):
    """Re-cost the chosen folding and the FINN-style greedy one for the same cycle budget with
    the real, schedule-sized FIFO pass (the search costs FIFOs with a per-edge depth model) and
    keep the one with fewer LUTs — when their modelled LUTs are within :data:`FIFO_MODEL_ERROR`
    of each other (the real pass takes seconds on slow CNV foldings)."""
    t0 = time.perf_counter()
    g_fold = s.greedy_folding(cycles)
    if g_fold is None or r.source == "finn-greedy":
        return r
    full = current_folding(s.graph)
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
