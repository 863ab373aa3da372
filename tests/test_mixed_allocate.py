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


def test_frontier_along_the_loss_axis():
    """``min_loss``: each point is the fewest LUTs within its loss bound, the bounds run from the
    cheapest assignment's loss down to ``min_loss``, and the last point reaches ``min_loss``."""
    sens, costs = random_problem(4, 3, (1, 2, 4))
    everything = list(every_assignment(sens, costs))
    cheapest = min(everything, key=lambda e: (e[1], e[2]))
    target = sorted(l for _, _, l in everything)[len(everything) // 5]
    front = frontier(sens, costs, n=6, min_loss=target)
    assert len(front) >= 2
    for a, b in zip(front, front[1:]):
        assert a.predicted_lut < b.predicted_lut and a.predicted_loss > b.predicted_loss
    for al in front:
        # no assignment within the point's loss is cheaper
        assert al.predicted_lut == min(t for _, t, l in everything if l <= al.predicted_loss + 1e-12)
    assert front[0].predicted_loss <= cheapest[2] + 1e-12 and front[0].predicted_lut == cheapest[1]
    assert front[-1].predicted_loss <= target * (1 + 1e-6)
    assert front[-1].predicted_lut == min(t for _, t, l in everything if l <= target + 1e-12)
    # an extra bound inside the range adds its point (the fewest LUTs within it)
    mid = sorted(l for _, _, l in everything)[len(everything) // 2]
    more = frontier(sens, costs, n=2, min_loss=target, extra_losses=(mid, 10 * cheapest[2]))
    fewest = min(t for _, t, l in everything if l <= mid + 1e-12)
    assert fewest in [al.predicted_lut for al in more] and len(more) <= 3
    with pytest.raises(HwgenError) as e:
        frontier(sens, costs, budgets=[100], min_loss=target)
    assert str(e.value) == "frontier: give budgets or min_loss, not both"


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


def residual_problem(seed, bits, in_bits=4):
    """fc0 → [fc1 → fc2] + skip → add0 → fc3: the add reads fc0 (skip) and fc2 (body), fc3 reads the add."""
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    names = ["fc0", "fc1", "fc2", "add0", "fc3"]
    costs = CostTable(names, in_bits, tuple(bits), 1e6, 100.0, "xilinx")
    costs.sources = {"fc0": (None,), "fc1": ("fc0",), "fc2": ("fc1",), "add0": ("fc0", "fc2"), "fc3": ("add0",)}
    sens = {}
    for n in names:
        srcs = costs.sources[n]
        ins = [(in_bits,) if s is None else bits for s in srcs]
        outs = (None,) if n == "fc3" else bits
        if n == "add0":
            costs.lut[n] = {(s, b, a): int(rng.integers(5, 20) * max(s, b) + rng.integers(0, 60) * a)
                            for s in bits for b in bits for a in bits}
            sens[n] = {(None, a): float(rng.exponential(1.0) / a ** rng.uniform(0.5, 2.0)) for a in bits}
            continue
        costs.lut[n] = {(p, w, a): int(rng.integers(10, 40) * p * w + rng.integers(0, 200) * (a or 1))
                        for p in ins[0] for w in bits for a in outs}
        sens[n] = {(w, a): float(rng.exponential(1.0) / (w * (a or 4)) ** rng.uniform(0.5, 2.0))
                   for w in bits for a in outs}
    return sens, costs


@pytest.mark.parametrize("seed,bits", [(5, (1, 2, 4)), (6, (2, 3, 8))])
def test_residual_milp_equals_enumeration(seed, bits):
    sens, costs = residual_problem(seed, bits)
    everything = list(every_assignment(sens, costs))
    assert len(everything) == (len(bits) ** 2) ** 3 * len(bits) * len(bits)
    luts = sorted(t for _, t, _ in everything)
    for budget in (luts[0], luts[len(luts) // 5], luts[len(luts) // 2], luts[-1]):
        best = min(l for _, t, l in everything if t <= budget)
        got = allocate(sens, costs, max_lut=budget)
        a = got.assignment
        assert list(a) == costs.layers and a["add0"][0] is None and a["fc3"][1] is None
        assert got.predicted_lut <= budget and costs.total(a) == got.predicted_lut
        assert got.predicted_loss == pytest.approx(best, rel=1e-9, abs=1e-12)
        assert costs.triple(a, 3) == (a["fc0"][1], a["fc2"][1], a["add0"][1])
        assert costs.triple(a, 4)[0] == a["add0"][1] and costs.triple(a, 1)[0] == a["fc0"][1]
    losses = sorted(l for _, _, l in everything)
    for bound in (losses[0], losses[len(losses) // 3], losses[-1]):
        fewest = min(t for _, t, l in everything if l <= bound + 1e-12)
        got = allocate(sens, costs, max_loss=bound + 1e-12)
        assert got.predicted_lut == fewest and got.predicted_loss <= bound + 1e-9
    front = frontier(sens, costs, n=6)
    assert all(" add0 A" in al.describe() and "WNone" not in al.describe() for al in front)
