"""Bit-width allocation as an integer linear programme (``scipy.optimize.milp``).

One binary variable per layer and bit-width triple ``(a_prev, w, a)`` of the
:class:`~hwgen.mixed.cost.CostTable` (the triple, not the pair, because a layer's hardware
depends on the bits of the activation it reads):

* every layer takes exactly one triple;
* producers and consumers agree: for every input of every layer and every bit width ``b``,
  the layer reads ``b`` bits there exactly when that input's producer writes ``b`` bits (in a
  chain the producer is the layer before; a residual add, keyed ``(a_skip, a_body, a)``, has two:
  the block input's producer and the body's last layer — :attr:`CostTable.sources`);
* the budget: ``Σ LUT ≤ max_lut`` (minimising the predicted loss ``Σ Ω``), or
  ``Σ Ω ≤ max_loss`` (minimising LUTs).

Ω is the sensitivity of :mod:`hwgen.mixed.sensitivity` (weight and activation parts add up);
the LUTs are hwgen's calibrated estimate at the folding that meets the throughput target.
"""

import time
from dataclasses import dataclass

import numpy as np

from ..errors import HwgenError

__all__ = ["Allocation", "allocate", "frontier", "predicted_loss"]


@dataclass
class Allocation:
    """``assignment``: ``{layer: (w, a)}`` (the format of :func:`hwgen.mixed.quantize.quantize`)."""

    assignment: dict
    predicted_loss: float
    predicted_lut: int
    seconds: float

    def describe(self):
        """``"fc0 W4A3 · fc1 W2A2 · fc2 W4"`` (a residual add: ``"add0 A3"``)."""
        return " · ".join(f"{n} " + ("" if w is None else f"W{w}") + (f"A{a}" if a is not None else "")
                          for n, (w, a) in self.assignment.items())


class _Problem:
    """Variables, consistency equations and the two linear objectives of one allocation problem."""

    def __init__(self, sens, costs):
        table = sens.table if hasattr(sens, "table") else sens
        missing = [n for n in costs.layers if n not in table]
        if missing:
            raise HwgenError(f"layer {missing[0]}: no sensitivity; the sensitivity table has "
                             f"{', '.join(sorted(table)) or 'no layers'}")
        self.costs = costs
        self.vars = []                      # (layer index, cost key)
        for i, n in enumerate(costs.layers):
            for t in sorted(costs.lut[n], key=str):
                if costs.pair(n, t) in table[n]:
                    self.vars.append((i, t))
            if not any(v[0] == i for v in self.vars):
                raise HwgenError(f"layer {n}: no bit-width pair has both a cost and a sensitivity")
        self.loss = np.array([float(table[costs.layers[i]][costs.pair(costs.layers[i], t)]) for i, t in self.vars])
        self.lut = np.array([float(costs.lut[costs.layers[i]][t]) for i, t in self.vars])

    def equalities(self):
        """(A, b) of "one triple per layer" and "every input reads the bits its producer writes"."""
        L, nv = len(self.costs.layers), len(self.vars)
        index = {n: i for i, n in enumerate(self.costs.layers)}
        rows, rhs = [], []
        for i in range(L):
            rows.append([1.0 if v[0] == i else 0.0 for v in self.vars])
            rhs.append(1.0)
        for i in range(L):
            for slot, src in enumerate(self.costs.inputs(i)):
                if src is None:             # the model input: the cost keys hold only in_bits there
                    continue
                k = index[src]
                for b in self.costs.bits:
                    row = np.zeros(nv)
                    for j, (li, t) in enumerate(self.vars):
                        if li == i and t[slot] == b:
                            row[j] += 1.0
                        if li == k and t[-1] == b:
                            row[j] -= 1.0
                    if row.any():
                        rows.append(row)
                        rhs.append(0.0)
        return np.array(rows), np.array(rhs)

    def solve(self, objective, bound_row=None, bound=None):
        from scipy.optimize import Bounds, LinearConstraint, milp
        A, b = self.equalities()
        cons = [LinearConstraint(A, b, b)]
        if bound_row is not None:
            cons.append(LinearConstraint(bound_row[None, :], -np.inf, bound))
        res = milp(objective, integrality=np.ones(len(self.vars)), bounds=Bounds(0, 1), constraints=cons)
        if res.status != 0 or res.x is None:
            return None
        chosen = {self.costs.layers[i]: t for (i, t), x in zip(self.vars, res.x) if x > 0.5}
        return {n: self.costs.pair(n, t) for n, t in chosen.items()}


def _tie(main, other):
    """``main`` with ``other`` as a tie-break too small to change the optimum of ``main``."""
    scale = np.abs(main).max() if main.size else 1.0
    return main + other / max(np.abs(other).sum(), 1e-12) * 1e-6 * max(scale, 1e-12)


def allocate(sens, costs, max_lut=None, max_loss=None):
    """The :class:`Allocation` of least predicted loss within ``max_lut`` LUTs, or of fewest LUTs
    within ``max_loss`` predicted loss (exactly one of the two)."""
    if (max_lut is None) == (max_loss is None):
        raise HwgenError("allocation: exactly one of max_lut and max_loss must be given, not "
                         f"{'both' if max_lut is not None else 'neither'}")
    t0 = time.perf_counter()
    p = _Problem(sens, costs)
    if max_lut is not None:
        a = p.solve(_tie(p.loss, p.lut), p.lut, float(max_lut))
        what = f"{max_lut:,} LUT"
    else:
        a = p.solve(_tie(p.lut, p.loss), p.loss, float(max_loss))
        what = f"a predicted loss of {max_loss:g}"
    if a is None:
        cheapest = p.solve(p.lut)
        raise HwgenError(f"allocation: no bit-width assignment fits {what}; the cheapest takes "
                         f"{costs.total(cheapest):,} LUT")
    return Allocation(a, predicted_loss(sens, a), costs.total(a), time.perf_counter() - t0)


def predicted_loss(sens, assignment):
    """Σ over the layers of the sensitivity of their ``(w, a)``."""
    table = sens.table if hasattr(sens, "table") else sens
    return float(sum(table[n][wa] for n, wa in assignment.items()))


def frontier(sens, costs, n=8, max_lut=None, budgets=None, min_loss=None, extra_losses=()):
    """The distinct allocations of least predicted loss within each LUT budget, cheapest first.
    ``budgets`` default: ``n`` budgets spaced geometrically from the cheapest assignment's LUTs to
    those of the least-loss one (or to ``max_lut``, when smaller).

    With ``min_loss`` instead: ``n`` predicted-loss bounds spaced geometrically from the cheapest
    assignment's loss down to ``min_loss``, each giving the allocation of fewest LUTs within it (the
    same frontier, swept along the loss axis and ending where a loss of ``min_loss`` is reached), and
    one more point per bound of ``extra_losses`` within that range."""
    t0 = time.perf_counter()
    p = _Problem(sens, costs)
    if min_loss is not None:
        if budgets is not None:
            raise HwgenError("frontier: give budgets or min_loss, not both")
        cheapest = p.solve(_tie(p.lut, p.loss))
        hi = predicted_loss(sens, cheapest)
        least = predicted_loss(sens, p.solve(_tie(p.loss, p.lut)))
        lo = min(max(float(min_loss), least), hi)
        space = np.geomspace if lo > 0 else np.linspace      # Ω may be ≤ 0 where a trace estimate is
        bounds = list(space(hi, lo, max(1, n))) + [float(L) for L in extra_losses if lo <= L <= hi]
        picks = [allocate(sens, costs, max_loss=L + 1e-9 * abs(L)) for L in bounds]
    else:
        if budgets is None:
            lo = costs.total(p.solve(_tie(p.lut, p.loss)))
            hi = costs.total(p.solve(_tie(p.loss, p.lut)))
            if max_lut is not None:
                hi = max(lo, min(hi, int(max_lut)))
            budgets = [int(b) for b in np.geomspace(lo, max(hi, lo), max(1, n))]
        picks = [allocate(sens, costs, max_lut=budget) for budget in sorted(budgets)]
    out, seen = [], set()
    for a in picks:
        key = tuple(sorted(a.assignment.items()))
        if key not in seen:
            seen.add(key)
            out.append(a)
    out.sort(key=lambda al: (al.predicted_lut, al.predicted_loss))
    for al in out:
        al.seconds = time.perf_counter() - t0
    return out
