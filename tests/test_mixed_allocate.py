"""hwgen.mixed.allocate: the integer programme's choice equals exhaustive enumeration.

Random sensitivity and cost tables (seeded, the seed printed) over three or four layers and
bit widths {1, 2, 4} (and {2, 3, 8}): for several LUT budgets the MILP's assignment has the
least predicted loss of every consistent assignment within the budget (and for loss bounds
the fewest LUTs); neighbouring layers agree on the bits between them; the frontier is sorted
and non-dominated; impossible budgets and bad arguments are one-line HwgenErrors.
"""

import itertools

import numpy as np
import pytest

from hwgen.errors import HwgenError
from hwgen.mixed.allocate import allocate, frontier
from hwgen.mixed.cost import CostTable


def random_problem(seed, n_layers, bits, in_bits=4):
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    names = [f"fc{i}" for i in range(n_layers)]
    costs = CostTable(names, in_bits, tuple(bits), 1e6, 100.0, "xilinx")
    sens = {}
    for i, n in enumerate(names):
        last = i == n_layers - 1
        outs = (None,) if last else bits
        ins = (in_bits,) if i == 0 else bits
        costs.lut[n] = {(p, w, a): int(rng.integers(10, 40) * p * w + rng.integers(0, 200) * (a or 1))
                        for p in ins for w in bits for a in outs}
        sens[n] = {(w, a): float(rng.exponential(1.0) / (w * (a or 4)) ** rng.uniform(0.5, 2.0))
                   for w in bits for a in outs}
    return sens, costs


def every_assignment(sens, costs):
    names = costs.layers
    choices = [list(sens[n]) for n in names]
    for combo in itertools.product(*choices):
        a = dict(zip(names, combo))
        yield a, costs.total(a), sum(sens[n][wa] for n, wa in a.items())


@pytest.mark.parametrize("seed,n_layers,bits", [(0, 3, (1, 2, 4)), (1, 4, (1, 2, 4)), (2, 3, (2, 3, 8))])
def test_milp_equals_enumeration(seed, n_layers, bits):
    sens, costs = random_problem(seed, n_layers, bits)
    everything = list(every_assignment(sens, costs))
    luts = sorted(t for _, t, _ in everything)
    for budget in (luts[0], luts[len(luts) // 4], luts[len(luts) // 2], luts[-1]):
        best = min(l for _, t, l in everything if t <= budget)
        got = allocate(sens, costs, max_lut=budget)
        assert got.predicted_lut <= budget and costs.total(got.assignment) == got.predicted_lut
        assert got.predicted_loss == pytest.approx(best, rel=1e-9, abs=1e-12)
    losses = sorted(l for _, _, l in everything)
    for bound in (losses[0], losses[len(losses) // 3], losses[-1]):
        fewest = min(t for _, t, l in everything if l <= bound + 1e-12)
        got = allocate(sens, costs, max_loss=bound + 1e-12)
        assert got.predicted_lut == fewest and got.predicted_loss <= bound + 1e-9


def test_frontier_is_sorted_and_not_dominated():
    sens, costs = random_problem(3, 3, (1, 2, 4))
    front = frontier(sens, costs, n=8)
    assert len(front) >= 3
    everything = list(every_assignment(sens, costs))
    for a, b in zip(front, front[1:]):
        assert a.predicted_lut < b.predicted_lut and a.predicted_loss > b.predicted_loss
    for al in front:
        # nothing cheaper-or-equal is strictly better
        assert not any(t <= al.predicted_lut and l < al.predicted_loss - 1e-12 for _, t, l in everything)
        assert al.describe().startswith("fc0 W")


def test_errors():
    sens, costs = random_problem(4, 3, (1, 2, 4))
    cheapest = min(t for _, t, _ in every_assignment(sens, costs))
    with pytest.raises(HwgenError) as e:
        allocate(sens, costs, max_lut=cheapest - 1)
    assert str(e.value) == (f"allocation: no bit-width assignment fits {cheapest - 1:,} LUT; "
                            f"the cheapest takes {cheapest:,} LUT")
    with pytest.raises(HwgenError) as e:
        allocate(sens, costs)
    assert str(e.value) == "allocation: exactly one of max_lut and max_loss must be given, not neither"
    with pytest.raises(HwgenError) as e:
        allocate(sens, costs, max_lut=1, max_loss=1)
    assert str(e.value) == "allocation: exactly one of max_lut and max_loss must be given, not both"
    del sens["fc1"]
    with pytest.raises(HwgenError) as e:
        allocate(sens, costs, max_lut=10 ** 9)
    assert str(e.value) == "layer fc1: no sensitivity; the sensitivity table has fc0, fc2"
