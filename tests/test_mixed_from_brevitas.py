"""hwgen.mixed.from_brevitas: an existing Brevitas model → the float model, assignment and input bits it is at.

Round trips at bits 1, 2, 3, 4, 8 and two mixed assignments, for an MLP and a nested CNN
with depthwise convolution, average and max pooling, Hardtanh and Dropout: a model made
by ``quantize`` (then trained a few steps, and also reloaded from its checkpoint) reads
back to the same weights, BatchNorm state, assignment and input bits, and quantising
that again with :func:`copy_scales` gives bit-identical outputs.  Hand-written Brevitas
models (tests/models.py's and a nested CNN) read back to the expected assignment; every
refusal is a one-line HwgenError, tested in full.  Pure Python, seconds.
"""

import functools
import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import CNN_SPECS, SPECS, make_cnn, make_mlp, randomise_norms

pytestmark = pytest.mark.filterwarnings("ignore")
log = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def float_mlp():
    import torch.nn as nn
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(10, 8), nn.Hardtanh(), nn.Linear(8, 6), nn.BatchNorm1d(6), nn.Linear(6, 4))


def float_cnn():
    import torch.nn as nn
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2)),
        nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4), nn.Hardtanh(),
        nn.Conv2d(4, 6, 1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(24, 5))


MODELS = {"mlp": (float_mlp, (12,)), "cnn": (float_cnn, (2, 8, 8))}


def randomised(kind, seed):
    """The float model with seeded random weights and BatchNorm state (so BatchNorm is no identity)."""
    return randomise_norms(MODELS[kind][0], seed)


def grid_assignment(kind, b):
    """Every layer at (b, b), the last one's output float; AvgPool2d needs 2 bits before it."""
    from hwgen.mixed import uniform
    a = uniform(MODELS[kind][0](), b, b)
    if kind == "cnn":
        a["conv0"] = (b, max(b, 2))
    return a


CASES = {f"{kind}-b{b}": (kind, b) for kind in MODELS for b in (1, 2, 3, 4, 8)}
CASES["mlp-mixed"] = ("mlp", {"fc0": (1, 3), "fc1": (8, 1), "fc2": (2, 8), "fc3": (3, 4)})
CASES["cnn-mixed"] = ("cnn", {"conv0": (8, 2), "dw0": (2, 1), "conv1": (1, 4), "fc0": (4, 3)})


def _v(t):
    return t.value if hasattr(t, "value") else t


def _inputs(kind, n, seed):
    import torch
    return torch.rand((n,) + MODELS[kind][1], generator=torch.Generator().manual_seed(seed))


def _train_a_little(q, kind, seed, steps=3):
    """A few SGD steps in training mode: scales collect statistics and move, BatchNorm stats move."""
    import torch
    q.train()
    opt = torch.optim.SGD(q.parameters(), lr=0.02)
    g = torch.Generator().manual_seed(seed)
    for i in range(steps):
        out = _v(q(_inputs(kind, 16, seed + i)))
        loss = torch.nn.functional.cross_entropy(out, torch.randint(out.shape[1], (len(out),), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return q.eval()


def _state_pairs(a, b):
    """Matching (Linear/Conv2d/BatchNorm) modules of two models, float or Brevitas, in forward order."""
    import torch.nn as nn
    kinds = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)
    ma, mb = [m for m in a.modules() if isinstance(m, kinds)], [m for m in b.modules() if isinstance(m, kinds)]
    assert len(ma) == len(mb)
    return list(zip(ma, mb))


def _assert_same_float_state(a, b):
    import torch
    for x, y in _state_pairs(a, b):
        sx = {k: v for k, v in x.state_dict().items() if "quant" not in k}
        sy = {k: v for k, v in y.state_dict().items() if "quant" not in k}
        assert sorted(sx) == sorted(sy)
        for k in sx:
            torch.testing.assert_close(sy[k], sx[k], rtol=0, atol=0)


def _case(name):
    kind, bits = CASES[name]
    assignment = grid_assignment(kind, bits) if isinstance(bits, int) else bits
    in_bits = max(bits, 2) if isinstance(bits, int) else 3
    return kind, assignment, in_bits


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_of_quantize(case):
    """quantize(f) → to_float gives f's weights and BatchNorm state, the assignment and the input bits."""
    import torch.nn as nn

    from hwgen.mixed import quantize
    from hwgen.mixed.from_brevitas import to_float
    from hwgen.mixed.quantize import segments

    kind, assignment, in_bits = _case(case)
    f = randomised(kind, 3)
    start = to_float(quantize(f, assignment, in_bits))
    assert start.assignment == assignment and start.in_bits == in_bits
    assert not start.model.training
    _assert_same_float_state(f, start.model)
    # the float modules come back, except the ReLU/Hardtanh a 1-bit (sign) activation replaced
    dropped = {s.act[1] for s in segments(f)[1] if assignment[s.name][1] == 1 and s.act is not None}
    expect = [type(m) for m in f.modules() if not isinstance(m, nn.Sequential) and m not in dropped]
    assert [type(m) for m in start.model.modules() if not isinstance(m, nn.Sequential)] == expect


@pytest.mark.parametrize("phase", ["collecting", "checkpoint"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_requantised_outputs_equal(case, phase):
    """A trained Brevitas model → to_float → quantize → copy_scales computes exactly what it computed.

    ``collecting``: the activation scales are still in their statistics-collection phase;
    ``checkpoint``: the model was reloaded from its state dict, so the scales are learned parameters.
    """
    import torch

    from hwgen.mixed import quantize
    from hwgen.mixed.from_brevitas import copy_scales, to_float

    kind, assignment, in_bits = _case(case)
    torch.manual_seed(4)
    src = quantize(MODELS[kind][0]().eval(), assignment, in_bits)
    for m in src.modules():   # BatchNorm statistics of the data (a cumulative average), so signs vary
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.momentum = None
    src.train()
    with torch.no_grad():
        for i in range(4):
            src(_inputs(kind, 64, 50 + i))
    src = _train_a_little(src, kind, seed=10)
    if phase == "checkpoint":
        loaded = quantize(MODELS[kind][0](), assignment, in_bits)
        loaded.load_state_dict(src.state_dict())
        src = loaded.eval()
    start = to_float(src)
    assert start.assignment == assignment and start.in_bits == in_bits
    _assert_same_float_state(src, start.model)

    q = quantize(start.model, start.assignment, start.in_bits).eval()
    x = _inputs(kind, 64, seed=99)
    with torch.no_grad():
        want = _v(src(x))
        before = float((_v(q(x)) - want).abs().max())
        copied = copy_scales(src, q)
        got = _v(q(x))
    log.info("%s/%s: max |diff| %.3g before copy_scales, copied %s", case, phase, before, copied)
    assert before > 0, "the learned scales are what copy_scales must carry"
    assert len(copied) == 1 + sum(a is not None for _, a in assignment.values())
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert len(torch.unique(want, dim=0)) > len(x) // 4, "a nearly constant network proves little"


# --------------------------------------------------------------------------- hand-written models
def _unsigned(spec):
    return dict(spec, in_signed=False)


MLP_SPECS = {  # spec, expected assignment, expected input bits, same quantisers as quantize's (exact round trip)
    "w4a4_relu_bn": (SPECS["w4a4_relu_bn"], {"fc0": (4, 4), "fc1": (4, None)}, 4, True),
    "a2_relu_w2": (SPECS["a2_relu_w2"], {"fc0": (2, 2), "fc1": (4, 8), "fc2": (4, 5)}, 2, True),
    "bipolar_w_mixed": (_unsigned(SPECS["bipolar_w_mixed"]), {"fc0": (1, 2), "fc1": (2, 2), "fc2": (8, None)}, 3, False),
    "po2_quantbias": (_unsigned(SPECS["po2_quantbias"]), {"fc0": (4, 4), "fc1": (3, 2), "fc2": (2, None)}, 4, False),
    "hardtanh_narrow_bn": (_unsigned(SPECS["hardtanh_narrow_bn"]), {"fc0": (3, 3), "fc1": (2, 4), "fc2": (4, None)}, 2, False),
    "quant_output": (_unsigned(SPECS["quant_output"]), {"fc0": (4, 4), "fc1": (3, 4)}, 4, False),
    "cnn_stride2_nonsquare_dw": (CNN_SPECS["stride2_nonsquare_dw"], {"conv0": (2, 3), "dw0": (4, 4), "fc0": (3, None)}, 4, True),
    "cnn_k5_s3_pad2_pointwise_s2": (CNN_SPECS["k5_s3_pad2_pointwise_s2"], {"conv0": (4, 4), "conv1": (3, 3), "fc0": (4, None)}, 5, True),
}


@pytest.mark.parametrize("name", sorted(MLP_SPECS))
def test_tests_models(name):
    """tests/models.py's Brevitas MLPs and CNNs read back; where their quantisers are quantize's, exactly."""
    import torch

    from hwgen.mixed import quantize
    from hwgen.mixed.from_brevitas import copy_scales, to_float

    spec, assignment, in_bits, exact = MLP_SPECS[name]
    cnn = name.startswith("cnn")
    src = (make_cnn if cnn else make_mlp)(spec, seed=2)
    shape = tuple(spec["in"]) if cnn else (spec["in"],)
    g = torch.Generator().manual_seed(7)
    src.train()
    with torch.no_grad():
        for _ in range(3):   # collect activation statistics
            src(torch.rand((16,) + shape, generator=g))
    src.eval()
    start = to_float(src)
    assert start.assignment == assignment and start.in_bits == in_bits
    _assert_same_float_state(src, start.model)
    q = quantize(start.model, start.assignment, start.in_bits).eval()
    copied = copy_scales(src, q)
    x = torch.rand((32,) + shape, generator=g)
    with torch.no_grad():
        want, got = _v(src(x)), _v(q(x))
    log.info("%s: copied %s, max |diff| %.3g", name, copied, float((got - want).abs().max()))
    assert got.shape == want.shape
    if exact:
        assert len(copied) == 1 + sum(a is not None for _, a in assignment.values())
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    else:
        assert "0" in copied   # the input quantisers are alike


def hand_cnn():
    """A nested Brevitas CNN: ReLU + QuantIdentity after MaxPool, binary depthwise weights,
    QuantHardTanh, TruncAvgPool2d, Dropout, a bipolar activation and float logits."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=6, return_quant_tensor=True)),
        nn.Sequential(qnn.QuantConv2d(2, 4, 3, padding=1, weight_bit_width=5, bias=True), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.MaxPool2d(2), qnn.QuantIdentity(bit_width=3, return_quant_tensor=True)),
        qnn.QuantConv2d(4, 4, 3, padding=1, groups=4, weight_quant=SignedBinaryWeightPerTensorConst, bias=False),
        nn.BatchNorm2d(4),
        qnn.QuantHardTanh(bit_width=4, min_val=-0.5, max_val=1.5, return_quant_tensor=True),
        qnn.TruncAvgPool2d(2, 2, bit_width=4, return_quant_tensor=True),
        nn.Flatten(), nn.Dropout(0.2),
        qnn.QuantLinear(16, 6, bias=True, weight_bit_width=8), nn.BatchNorm1d(6),
        qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True),
        qnn.QuantLinear(6, 3, bias=True, weight_bit_width=2)).eval()


def test_hand_written_cnn():
    import torch
    import torch.nn as nn

    from hwgen.mixed import quantize
    from hwgen.mixed.from_brevitas import copy_scales, to_float

    src = hand_cnn()
    start = to_float(src)
    assert start.assignment == {"conv0": (5, 3), "dw0": (1, 4), "fc0": (8, 1), "fc1": (2, None)}
    assert start.in_bits == 6
    leaves = [(p, m) for p, m in start.model.named_modules() if p and not isinstance(m, nn.Sequential)]
    assert [(p, type(m).__name__) for p, m in leaves] == [
        ("1.0", "Conv2d"), ("1.1", "BatchNorm2d"), ("1.2", "ReLU"), ("1.3", "MaxPool2d"), ("2", "Conv2d"),
        ("3", "BatchNorm2d"), ("4", "Hardtanh"), ("5", "AvgPool2d"), ("6", "Flatten"), ("7", "Dropout"),
        ("8", "Linear"), ("9", "BatchNorm1d"), ("11", "Linear")]
    m = dict(leaves)
    assert (m["4"].min_val, m["4"].max_val) == (-0.5, 1.5)
    assert (m["5"].kernel_size, m["5"].stride) == (2, 2)
    c = m["2"]
    assert c.groups == 4 and c.bias is None and c.padding == (1, 1) and c.stride == (1, 1)
    _assert_same_float_state(src, start.model)
    # float forward = the Brevitas model with its quantisers off, up to the TruncAvgPool/quantiser rounding
    q = quantize(start.model, start.assignment, start.in_bits).eval()
    # the input, QuantHardTanh and bipolar quantisers are quantize's; conv0's signed QuantIdentity after a ReLU
    # becomes an unsigned QuantReLU
    assert copy_scales(src, q) == ["0", "7", "13"]
    with torch.no_grad():
        out = _v(q(torch.rand(4, 2, 8, 8)))
    assert out.shape == (4, 3)


def test_training_mode_and_nesting_kept():
    from hwgen.mixed.from_brevitas import to_float
    src = hand_cnn().train()
    start = to_float(src)
    assert start.model.training and all(m.training for m in start.model.modules())
    assert list(dict(start.model.named_children())) == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "11"]
    assert len(start.model[0]) == 0      # the nested input quantiser left an empty Sequential


# --------------------------------------------------------------------------- refusals
ACCEPTED = ("QuantIdentity, QuantLinear, QuantConv2d, QuantReLU, QuantHardTanh, TruncAvgPool2d, BatchNorm1d/2d, "
            "MaxPool2d, Flatten, Dropout, ReLU, Hardtanh, Identity or an nn.Sequential of them")


@functools.lru_cache(maxsize=1)
def _bad_models():
    """name -> (model, full error message) for every refusal; made once (to_float changes nothing)."""
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import (Int8WeightPerChannelFloat, ShiftedUint8ActPerTensorFloat, ShiftedUint8WeightPerTensorFloat,
                                SignedBinaryActPerTensorConst, Uint8ActPerTensorFloat)

    def qin(bits=4):
        return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)

    def lin(i=4, o=3, **kw):
        return qnn.QuantLinear(i, o, bias=True, weight_bit_width=kw.pop("w", 4), **kw)

    def relu(bits=4, **kw):
        return qnn.QuantReLU(bit_width=bits, return_quant_tensor=True, **kw)

    shifted = qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, bit_width=4)
    shifted.train()
    import torch
    shifted(torch.linspace(-2.0, -1.0, 32).reshape(8, 4))   # collect statistics: the zero point moves off 0
    shifted.eval()
    asym = lin(weight_quant=ShiftedUint8WeightPerTensorFloat)
    with torch.no_grad():
        asym.weight.copy_(torch.linspace(-1.0, 3.0, 12).reshape(3, 4))
    seq = nn.Sequential
    return {
        "not-sequential": (nn.ModuleList([qin(), lin()]), "model: must be an nn.Sequential, not ModuleList"),
        "unsupported": (seq(qin(), lin(), qnn.QuantSigmoid(bit_width=4)),
                        f"module 2 (QuantSigmoid): must be one of {ACCEPTED}, not QuantSigmoid"),
        "float-linear": (seq(qin(), nn.Linear(4, 3)), f"module 1 (Linear): must be one of {ACCEPTED}, not Linear"),
        "float-avgpool": (seq(qin(), qnn.QuantConv2d(1, 2, 3, weight_bit_width=4), relu(), nn.AvgPool2d(2)),
                          f"module 3 (AvgPool2d): must be one of {ACCEPTED}, not AvgPool2d"),
        "no-layer": (seq(qin(), nn.Flatten()), "model: has no QuantLinear or QuantConv2d layer; accepted: at least one"),
        "no-input-quant": (seq(nn.Flatten(), lin(), relu()),
                           "module 1 (QuantLinear): the input must be quantised by a QuantIdentity before the first "
                           "layer, not fed in float"),
        "input-twice": (seq(qin(), seq(qin()), lin()),
                        "module 1.0 (QuantIdentity): the input must be quantised once, not again after module 0"),
        "input-1bit": (seq(qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst), lin()),
                       "module 0 (QuantIdentity): input bits must be 2..8, not 1"),
        "input-9bit": (seq(qin(9), lin()), "module 0 (QuantIdentity): input bits must be 2..8, not 9"),
        "input-signed": (seq(qnn.QuantIdentity(bit_width=4), lin()),
                         "module 0 (QuantIdentity): the input quantiser must be unsigned (quantize feeds inputs in "
                         "[0, 1] through an unsigned QuantIdentity), not signed"),
        "input-asymmetric": (seq(shifted, lin()),
                             "module 0 (QuantIdentity): the activation quantiser must have zero point 0, not "
                             "15 (asymmetric)"),
        "head-relu": (seq(qin(), relu(), lin()),
                      "module 1 (QuantReLU): must be a QuantIdentity, Flatten, Dropout or Identity before the first "
                      "layer, not QuantReLU"),
        "float-weights": (seq(qin(), qnn.QuantLinear(4, 3, bias=True, weight_quant=None)),
                          "module 1 (QuantLinear): weights must be quantised, not float (weight_quant=None)"),
        "input-quant-in-layer": (seq(qin(), lin(input_quant=Uint8ActPerTensorFloat)),
                                 "module 1 (QuantLinear): input_quant must be None, not enabled; accepted: a "
                                 "QuantIdentity/QuantReLU/QuantHardTanh before the layer"),
        "output-quant-in-layer": (seq(qin(), lin(output_quant=Uint8ActPerTensorFloat)),
                                  "module 1 (QuantLinear): output_quant must be None, not enabled; accepted: a "
                                  "QuantIdentity/QuantReLU/QuantHardTanh after the layer"),
        "per-channel": (seq(qin(), lin(weight_quant=Int8WeightPerChannelFloat)),
                        "module 1 (QuantLinear): weight scaling must be per-tensor, not per-channel (3 scales)"),
        "asymmetric-weights": (seq(qin(), asym),
                               "module 1 (QuantLinear): weights must have zero point 0, not 4 (asymmetric)"),
        "1bit-int-weights": (seq(qin(), lin(w=1)),
                             "module 1 (QuantLinear): 1-bit weights must be bipolar (a binary quantiser such as "
                             "SignedBinaryWeightPerTensorConst), not a 1-bit integer quantiser"),
        "16bit-weights": (seq(qin(), lin(w=16)), "layer fc0: weight bits must be 1..8, not 16"),
        "10bit-acts": (seq(qin(), lin(), relu(10), lin(3, 2)), "layer fc0: activation bits must be 1..8, not 10"),
        "unquantised-hidden": (seq(qin(), lin(), nn.BatchNorm1d(3), nn.ReLU(), nn.Dropout(), lin(3, 2)),
                               "module 1 (QuantLinear): its output must be quantised before the next layer (5), not "
                               "left float; accepted: a QuantReLU, QuantHardTanh or QuantIdentity after it"),
        "float-quantrelu": (seq(qin(), lin(), qnn.QuantReLU(act_quant=None), lin(3, 2)),
                            "module 1 (QuantLinear): its output must be quantised before the next layer (3), not "
                            "left float; accepted: a QuantReLU, QuantHardTanh or QuantIdentity after it"),
        "unquantised-last-relu": (seq(qin(), lin(), relu(), lin(3, 2), nn.ReLU()),
                                  "module 3 (QuantLinear): its output must be quantised after the ReLU at 4, not left "
                                  "float; accepted: a QuantReLU, QuantHardTanh or QuantIdentity after it"),
        "quantised-twice": (seq(qin(), lin(), relu(), qnn.QuantIdentity(bit_width=4), lin(3, 2)),
                            "module 3 (QuantIdentity): the output of layer 1 must be quantised once, not again after "
                            "module 2"),
        "bn-after-quant": (seq(qin(), lin(), qnn.QuantIdentity(bit_width=4), nn.BatchNorm1d(3), lin(3, 2)),
                           "module 3 (BatchNorm1d): must come before the activation quantiser at 2, not after it"),
        "relu-after-quant": (seq(qin(), lin(), qnn.QuantIdentity(bit_width=4), nn.ReLU(), lin(3, 2)),
                             "module 3 (ReLU): must come before the activation quantiser at 2, not after it"),
        "1bit-relu": (seq(qin(), lin(), relu(1), lin(3, 2)),
                      "module 2 (QuantReLU): 1-bit activations must be bipolar (a QuantIdentity with a binary "
                      "quantiser such as SignedBinaryActPerTensorConst), not a QuantReLU with a 1-bit integer quantiser"),
        "bipolar-after-relu": (seq(qin(), lin(), nn.ReLU(), qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
                                   lin(3, 2)),
                               "module 3 (QuantIdentity): a bipolar quantiser must follow the layer, its BatchNorm or "
                               "a Hardtanh, not the ReLU at 2"),
        "unsigned-identity": (seq(qin(), lin(), qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4),
                                  lin(3, 2)),
                              "module 2 (QuantIdentity): an activation quantiser with no ReLU before it must be "
                              "signed, not unsigned; accepted: a QuantReLU, or a ReLU before the QuantIdentity"),
        "avgpool-float-input": (seq(qin(), qnn.QuantConv2d(1, 2, 3, weight_bit_width=4), nn.ReLU(),
                                    qnn.TruncAvgPool2d(2, 2, bit_width=4), relu()),
                                "module 3 (TruncAvgPool2d): its input must be quantised to 2..8 bits by an activation "
                                "quantiser before it, not float"),
        "avgpool-bipolar-input": (seq(qin(), qnn.QuantConv2d(1, 2, 3, weight_bit_width=4),
                                      qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
                                      qnn.TruncAvgPool2d(2, 2, bit_width=4)),
                                  "module 3 (TruncAvgPool2d): its input must be quantised to 2..8 bits by an activation "
                                  "quantiser before it, not 1-bit bipolar"),
        "avgpool-ceil": (seq(qin(), qnn.QuantConv2d(1, 2, 3, weight_bit_width=4), relu(),
                             qnn.TruncAvgPool2d(2, 2, ceil_mode=True, bit_width=4)),
                         "module 3 (TruncAvgPool2d): ceil_mode must be False and divisor_override None, not True and None"),
        "dilation": (seq(qin(), qnn.QuantConv2d(1, 2, 3, dilation=2, weight_bit_width=4)),
                     "module 1 (Conv2d): dilation [2, 2] is not supported; accepted: 1"),
        "grouped": (seq(qin(), qnn.QuantConv2d(4, 8, 3, groups=2, weight_bit_width=4)),
                    "module 1 (Conv2d): groups=2 is not supported; accepted: 1 or the number of channels (4) with one "
                    "filter per channel"),
        "out-of-order": (seq(qin(), lin(), nn.Dropout(), nn.BatchNorm1d(3), relu(), lin(3, 2)),
                         "layer fc0: BatchNorm1d at 3 is out of order; accepted: layer, BatchNorm, ReLU/Hardtanh, "
                         "then MaxPool2d/AvgPool2d/Flatten/Dropout/Identity"),
    }


BAD = sorted(_bad_models())


@pytest.mark.parametrize("name", BAD)
def test_refusals(name):
    from hwgen.errors import HwgenError
    from hwgen.mixed.from_brevitas import to_float
    model, message = _bad_models()[name]
    with pytest.raises(HwgenError) as e:
        to_float(model)
    assert str(e.value) == message


def test_tests_models_refusals():
    """tests/models.py's signed-input, per-channel, bipolar-input and global-pooling models are refused."""
    from hwgen.errors import HwgenError
    from hwgen.mixed.from_brevitas import to_float
    cases = [
        (make_mlp(SPECS["po2_quantbias"]), "module 0 (QuantIdentity): the input quantiser must be unsigned"),
        (make_mlp(_unsigned(SPECS["w8a8_channel"])),
         "module 1 (QuantLinear): weight scaling must be per-tensor, not per-channel (6 scales)"),
        (make_mlp(SPECS["bipolar_acts"]), "module 0 (QuantIdentity): input bits must be 2..8, not 1"),
        (make_cnn(_unsigned(CNN_SPECS["avgpool_gap_k1"])),
         f"module 7 (AdaptiveAvgPool2d): must be one of {ACCEPTED}, not AdaptiveAvgPool2d"),
    ]
    for model, message in cases:
        with pytest.raises(HwgenError) as e:
            to_float(model)
        assert str(e.value).startswith(message), str(e.value)


def test_copy_scales_skips_other_bits():
    """A quantiser at other bits keeps its own state: a scale learned at 4 bits means nothing at 2."""
    from hwgen.errors import HwgenError
    from hwgen.mixed import quantize
    from hwgen.mixed.from_brevitas import copy_scales
    mlp = randomised("mlp", 1)
    a4 = {"fc0": (4, 4), "fc1": (4, 4), "fc2": (4, 4), "fc3": (4, None)}
    src = _train_a_little(quantize(mlp, a4, 4), "mlp", seed=1)
    dst = quantize(mlp, dict(a4, fc1=(4, 2)), 4)
    assert copy_scales(src, dst) == ["0", "4", "10"]
    short = quantize(mlp[:6], {"fc0": (4, 4), "fc1": (4, None)}, 4)
    with pytest.raises(HwgenError) as e:
        copy_scales(src, short)
    assert str(e.value) == "target: must have the source's layers fc0, fc1, fc2, fc3, not fc0, fc1"
    cnn = quantize(randomised("cnn", 1), grid_assignment("cnn", 4), 4)
    with pytest.raises(HwgenError) as e:
        copy_scales(src, cnn)
    assert str(e.value) == "target: must have the source's layers fc0, fc1, fc2, fc3, not conv0, dw0, conv1, fc0"
