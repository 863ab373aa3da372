"""hwgen.mixed.quantize: float models → Brevitas models at per-layer bit widths that hwgen builds exactly.

For the digits MLP and CNN of the examples (and a nested CNN with average pooling,
depthwise convolution, Hardtanh and Dropout) at uniform and mixed assignments (1-bit
weights and activations, 2, 3, 8 bits): quantise, export, ``hwgen.build``, and the
built IR graph's outputs equal Brevitas' (ARCHITECTURE §2, ties aside).  The float
weights and BatchNorm state reach the quantised model; every unsupported model or
assignment is a one-line HwgenError naming the layer.
"""

import os
import sys

import numpy as np
import pytest

from refs import assert_matches_brevitas

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from digits import load_digits_split, seed_everything, train
from digits_cnn import float_cnn
from digits_mlp import float_mlp
from models import randomise_norms

pytestmark = pytest.mark.filterwarnings("ignore")


def nested_cnn():
    import torch.nn as nn
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2)),
        nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4), nn.Hardtanh()),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 10))


MODELS = {"mlp": (float_mlp, (64,)), "cnn": (float_cnn, (1, 8, 8)), "nested": (nested_cnn, (1, 8, 8))}

CASES = {
    "mlp-w2a2": ("mlp", {"fc0": (2, 2), "fc1": (2, 2), "fc2": (2, None)}),
    "mlp-w8a8": ("mlp", {"fc0": (8, 8), "fc1": (8, 8), "fc2": (8, None)}),
    "mlp-mixed-1bit": ("mlp", {"fc0": (1, 1), "fc1": (3, 2), "fc2": (8, None)}),
    "mlp-w3a3-1bit-last": ("mlp", {"fc0": (3, 3), "fc1": (3, 3), "fc2": (1, None)}),
    "cnn-w3a3": ("cnn", {"conv0": (3, 3), "conv1": (3, 3), "fc0": (3, None)}),
    "cnn-mixed-1bit": ("cnn", {"conv0": (2, 4), "conv1": (1, 1), "fc0": (4, None)}),
    "nested-avgpool-dw": ("nested", {"conv0": (4, 3), "dw0": (3, 2), "fc0": (2, None)}),
}


def randomised(kind, seed):
    """The float model with seeded random weights and BatchNorm state (so BatchNorm is no identity)."""
    return randomise_norms(MODELS[kind][0], seed)


@pytest.fixture(scope="module")
def trained():
    """kind -> (float model trained for 3 epochs on digits, held-out images); each trained once."""
    cache = {}

    def get(kind):
        if kind not in cache:
            seed_everything(0)
            xtr, ytr, xte, _ = load_digits_split(0)
            shape = (-1,) + MODELS[kind][1]
            cache[kind] = train(MODELS[kind][0](), xtr.reshape(shape), ytr, epochs=3, seed=0), xte.reshape(shape)
        return cache[kind]
    return get


def test_layer_names_follow_hwgen():
    from hwgen.mixed import quant_layers, uniform
    assert quant_layers(float_mlp()) == ["fc0", "fc1", "fc2"]
    assert quant_layers(float_cnn()) == ["conv0", "conv1", "fc0"]
    assert quant_layers(nested_cnn()) == ["conv0", "dw0", "fc0"]
    assert uniform(float_cnn(), 4, 3) == {"conv0": (4, 3), "conv1": (4, 3), "fc0": (4, None)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_build_equals_brevitas(case, tmp_path, trained):
    """Quantise a briefly trained float model (no QAT), export, build: the IR graph's outputs equal the
    Brevitas model's on held-out digits, and its layers carry the assigned types."""
    import torch

    import hwgen
    from hwgen.host import apply_head, apply_tail
    from hwgen.mixed import quantize

    kind, assignment = CASES[case]
    fmodel, xte = trained(kind)
    qmodel = quantize(fmodel, assignment, in_bits=4).eval()
    x = xte[:24]
    path = str(tmp_path / f"{case}.onnx")
    hwgen.export_brevitas(qmodel, torch.from_numpy(x[:1]), path)
    b = hwgen.build(path, str(tmp_path / case), fps=1e5, progress=False)
    g = b.graph
    out = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    assert len(np.unique(out, axis=0)) > len(x) // 2, "a nearly constant network proves little"
    assert_matches_brevitas(qmodel, x, out, 1e-5 * max(1.0, float(np.abs(out).max())))

    compute = [l for l in g.layers if l.kind in ("MVAU", "ConstMVAU", "VVAU")]
    assert [l.name for l in compute] == list(assignment)
    a_prev = 4
    for l in compute:
        w, a = assignment[l.name]
        assert l.wdt.name == "BIPOLAR" if w == 1 else l.wdt.signed and l.wdt.bits <= w, (l.name, l.wdt.name)
        assert l.in_dt.name == "BIPOLAR" if a_prev == 1 else l.in_dt.bits == a_prev, (l.name, l.in_dt.name)
        a_prev = a


def test_float_state_is_copied():
    import torch
    import torch.nn as nn
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU, TruncAvgPool2d

    from hwgen.mixed import quantize
    fmodel = randomised("nested", 1)
    q = quantize(fmodel, {"conv0": (4, 3), "dw0": (1, 2), "fc0": (5, None)})
    assert not q.training
    fl = [m for m in fmodel.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
    ql = [m for m in q.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
    assert [type(m) for m in ql] == [QuantConv2d, nn.BatchNorm2d, QuantConv2d, nn.BatchNorm2d, QuantLinear]
    for f, m in zip(fl, ql):
        for k, v in f.state_dict().items():
            torch.testing.assert_close(m.state_dict()[k], v, rtol=0, atol=0)
    kinds = [type(m) for m in q]
    assert kinds[0] is QuantIdentity and QuantReLU in kinds and TruncAvgPool2d in kinds
    assert ql[2].groups == 4 and ql[2].bias is None


def test_one_bit_activation_is_bipolar():
    """a_bits = 1 replaces the ReLU by a bipolar sign of the BatchNorm output."""
    from brevitas.nn import QuantIdentity, QuantReLU

    from hwgen.mixed import quantize
    q = quantize(float_mlp().eval(), {"fc0": (4, 1), "fc1": (4, 4), "fc2": (4, None)})
    acts = [m for m in q if isinstance(m, (QuantIdentity, QuantReLU))]
    assert [type(m) for m in acts] == [QuantIdentity, QuantIdentity, QuantReLU]
    assert acts[1].act_quant.is_quant_enabled and float(acts[1].act_quant.bit_width()) == 1.0


@pytest.mark.parametrize("model, assignment, message", [
    ("mlp", {"fc0": (9, 4), "fc1": (4, 4), "fc2": (4, None)}, "layer fc0: weight bits must be 1..8, not 9"),
    ("mlp", {"fc0": (4, 0), "fc1": (4, 4), "fc2": (4, None)}, "layer fc0: activation bits must be 1..8, not 0"),
    ("mlp", {"fc0": (4, 4), "fc1": (4, None), "fc2": (4, None)}, "layer fc1: activation bits must be 1..8, not None"),
    ("mlp", {"fc0": (4, 4), "fc1": (4.0, 4), "fc2": (4, None)}, "layer fc1: weight bits must be 1..8, not 4.0"),
    ("mlp", {"fc0": (4, 4), "fc1": (4, 4)}, "assignment: layer fc2 has no bit widths"),
    ("mlp", {"fc0": (4, 4), "fc1": (4, 4), "fc2": (4, None), "fc9": (4, 4)}, "assignment: layer 'fc9' is not in the model; layers are fc0, fc1, fc2"),
    ("mlp", {"fc0": 4, "fc1": (4, 4), "fc2": (4, None)}, "layer fc0: bit widths must be a pair (w_bits, a_bits), not 4"),
    ("nested", {"conv0": (4, 1), "dw0": (4, 4), "fc0": (4, None)}, "layer conv0: AvgPool2d needs activation bits 2..8 before it, not 1"),
])
def test_bad_assignments(model, assignment, message):
    from hwgen.errors import HwgenError
    from hwgen.mixed import quantize
    with pytest.raises(HwgenError) as e:
        quantize(MODELS[model][0](), assignment)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def _bad_models():
    import torch.nn as nn
    return [
        (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)), "module 1 (Sigmoid): not supported; accepted: nn.Sequential of Linear"),
        (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Linear(3, 2)), "layer fc0: BatchNorm1d at 2 is out of order; accepted: layer, BatchNorm"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU()), "layer conv0: ReLU at 2 is out of order"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "module 0 (ReLU): not supported before the first Linear/Conv2d"),
        (nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), "module 0 (Conv2d): dilation [2, 2] is not supported; accepted: 1"),
        (nn.Sequential(nn.Conv2d(4, 8, 3, groups=2)), "module 0 (Conv2d): groups=2 is not supported; accepted: 1 or the number of channels (4)"),
        (nn.Sequential(nn.Sequential(nn.Flatten()), nn.Dropout()), "model: has no Linear or Conv2d layer; accepted: at least one"),
        (nn.ModuleList([nn.Linear(2, 2)]), "model: must be an nn.Sequential, not ModuleList"),
    ]


@pytest.mark.parametrize("i", range(8))
def test_unsupported_models(i):
    from hwgen.errors import HwgenError
    from hwgen.mixed import quant_layers
    model, message = _bad_models()[i]
    with pytest.raises(HwgenError) as e:
        quant_layers(model)
    assert str(e.value).startswith(message), str(e.value)


def test_bad_input_bits_and_unquantised_activation():
    import torch.nn as nn

    from hwgen.errors import HwgenError
    from hwgen.mixed import quantize, uniform
    with pytest.raises(HwgenError, match=r"^input: in_bits must be 2..8, not 1$"):
        quantize(float_mlp(), uniform(float_mlp(), 4, 4), in_bits=1)
    relu_last = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(HwgenError, match=r"^layer fc0: the ReLU after it needs activation bits 1..8, not None$"):
        quantize(relu_last, {"fc0": (4, None)})
