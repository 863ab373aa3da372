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

The package, one concept a module: :mod:`.file` (folding documents: read, check,
apply, options), :mod:`.windows` (window generators follow their consumer),
:mod:`.cost` (the plumbed cost model), :mod:`.options` (units and their options),
:mod:`.pareto` (pruning options to a front), :mod:`.greedy` (FINN's rule, the
baseline), :mod:`.search` (:class:`FoldingSearch`, the solvers), :mod:`.messages`
(what an unmet target or device says) and :mod:`.choose` (:func:`search_folding`,
the entry).  Throughput targets are :class:`hwgen.dataflow.target.Throughput`.
"""

from .choose import FIFO_MODEL_ERROR, fold_for, search_folding
from .cost import RES, copy_graph, plumbed_resources
from .file import OPTION_KEYS, apply_folding, check_folding_doc, folded_layers, load_folding
from .greedy import WWIDTH_MAX, finn_greedy_folding, greedy_fold
from .search import FoldingSearch, FoldResult
from .windows import tie, tie_windows
from ..target import DEFAULT_CLOCK_MHZ, DEFAULT_FPS, Throughput, cycle_budget

_tie = tie                  # the name hwgen.mixed.cost imports

__all__ = ["apply_folding", "load_folding", "search_folding", "fold_for", "cycle_budget", "tie_windows", "tie",
           "folded_layers", "finn_greedy_folding", "greedy_fold", "plumbed_resources", "copy_graph",
           "check_folding_doc", "FoldingSearch", "FoldResult", "OPTION_KEYS", "DEFAULT_FPS", "DEFAULT_CLOCK_MHZ",
           "Throughput", "RES", "WWIDTH_MAX", "FIFO_MODEL_ERROR"]
