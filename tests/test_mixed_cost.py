"""hwgen.mixed.cost: the per-layer cost of a bit-width choice is what the real build's layer costs.

The cost table rebuilds each layer from the float model (weights quantised like Brevitas,
thresholds spread over the share of the accumulator range the data covers) for every
``(a_prev, w, a)``; here the digits MLP and
CNN are quantised at a uniform and a mixed assignment, exported and built, and each built
compute layer (with its window generator), at its own cheapest folding meeting the same cycle
budget, costs within 10 % of the table's entry (the thresholds differ in content only).
"""

import copy
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from digits import load_digits_split, seed_everything, train
from digits_cnn import float_cnn
from digits_mlp import float_mlp

pytestmark = pytest.mark.filterwarnings("ignore")

MODELS = {"mlp": (float_mlp, (64,), 1e6), "cnn": (float_cnn, (1, 8, 8), 1e5)}
BITS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def tables():
    """kind -> (trained float model, held-out images, cost table); each made once."""
    import torch

    from hwgen.mixed.cost import cost_table
    torch.set_num_threads(1)
    cache = {}

    def get(kind):
        if kind not in cache:
            make, shape, fps = MODELS[kind]
            seed_everything(0)
            xtr, ytr, xte, _ = load_digits_split(0)
            shape = (-1,) + shape
            m = train(make(), xtr.reshape(shape), ytr, epochs=3, seed=0)
            xte = xte.reshape(shape)
            cache[kind] = m, xte, cost_table(m, torch.from_numpy(xtr.reshape(shape)[:512]), 4, fps, bits=BITS)
        return cache[kind]
    return get


@pytest.mark.parametrize("kind,assignment", [
    ("mlp", {"fc0": (3, 3), "fc1": (3, 3), "fc2": (3, None)}),
    ("mlp", {"fc0": (1, 1), "fc1": (4, 2), "fc2": (2, None)}),
    ("mlp", {"fc0": (4, 4), "fc1": (3, 4), "fc2": (4, None)}),
    ("cnn", {"conv0": (4, 4), "conv1": (2, 3), "fc0": (3, None)}),
])
def test_table_prices_the_built_layers(kind, assignment, tables, tmp_path):
    import torch

    import hwgen
    from hwgen.dataflow.folding import cycle_budget
    from hwgen.mixed import quantize
    from hwgen.mixed.cost import _cheapest

    fmodel, xte, table = tables(kind)
    q = quantize(fmodel, assignment, in_bits=4).eval()
    path = str(tmp_path / "m.onnx")
    hwgen.export_brevitas(q, torch.from_numpy(xte[:1]), path)
    g = hwgen.build(path, str(tmp_path / "b"), fps=table.fps, progress=False).graph
    budget = cycle_budget(table.fps, table.clock_mhz)
    for i, name in enumerate(table.layers):
        layer = g.layer(name)
        k = g.layers.index(layer) - 1
        while k >= 0 and g.layers[k].kind in ("FIFO", "WidthConverter"):
            k -= 1
        parts = [copy.deepcopy(x) for x in ([g.layers[k]] if g.layers[k].kind == "SlidingWindow" else []) + [layer]]
        real, _ = _cheapest(parts, budget, table.family)
        est = table.lut[name][table.triple(assignment, i)]
        assert abs(est - real) <= 0.10 * real, (name, est, real)
    assert table.total(assignment) == sum(table.lut[n][table.triple(assignment, i)] for i, n in enumerate(table.layers))


def test_cost_grows_with_bits_and_rate(tables):
    import torch

    from hwgen.mixed.cost import cost_table
    fmodel, xte, table = tables("mlp")
    for n in table.layers:
        for (p, w, a), lut in table.lut[n].items():
            if w == 2 and (p, 4, a) in table.lut[n]:
                assert table.lut[n][(p, 4, a)] > lut, (n, p, a)
    slow = cost_table(fmodel, torch.from_numpy(xte), 4, 1e5, bits=(2, 4))
    for n in table.layers:
        for t, lut in slow.lut[n].items():
            assert lut < table.lut[n][t], (n, t)


def test_unreachable_rate_is_an_error(tables):
    import torch

    from hwgen.errors import HwgenError
    from hwgen.mixed.cost import cost_table
    fmodel, xte, _ = tables("mlp")
    with pytest.raises(HwgenError) as e:
        cost_table(fmodel, torch.from_numpy(xte[:1]), 4, 1e9, bits=(2,))
    assert str(e.value) == "layer fc0: no folding reaches 1e+09 frames/s at 100 MHz (needs at most 0 cycles per frame)"
    with pytest.raises(HwgenError) as e:
        cost_table(fmodel, torch.from_numpy(xte[:1]), 4, 1e6, bits=(2, 9))
    assert str(e.value) == "cost: candidate bit widths must be 1..8, not 9"
