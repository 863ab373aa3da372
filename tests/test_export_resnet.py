"""The FINN/Brevitas reference ResNet (``brevitas_examples.bnn_pynq``) through the exporter and lowering.

Its ``QuantBasicBlock.forward`` asserts that its residual add is between QuantTensors. Brevitas'
dynamo exporter turns QuantTensors off (``return_quant_tensor`` off, ``skip_create_quant_tensor``
on) and its trace then fails on that assert; the manager restores the flags only when the export
returns, so before ``hwgen.frontend.export._private_copy`` the TorchScript fallback (and the user's
module afterwards) got a model returning plain tensors and failed on the same assert. Here:

* a small network made of the same ``QuantBasicBlock`` (stem, identity block, strided block with
  its 1x1 downsample branch, optional max-pool, ``TruncAvgPool2d`` FLOOR/ROUND, ``QuantLinear``
  with an ``Int32Bias``) exports unmodified, computes what the module computes (QONNX
  ``execute_onnx`` against the module in float64), leaves the module as it was, and lowers to an
  IR whose integers, through head and tail, give the module's float64 outputs;
* a module that ``copy.deepcopy`` refuses is exported itself, as before;
* ``resnet18_4w4a`` itself (slow): exported unmodified, checked the same way; and, behind an
  8-bit input quantiser (its first conv takes the float image, which the host head does not yet
  compute), lowered and checked against the module in float64.

Against float64 Brevitas, the one difference allowed is a tie (ARCHITECTURE §2) of the classifier's
Int32 bias: ``bias / (input scale · weight scale)`` on a half-integer, which the file's float32
constants (and float32 Brevitas) and float64 Brevitas round to neighbouring integers: one step on
that output channel of every frame (``_assert_is_the_module`` shows it; the ``bias-tie`` case meets one).

Models: BatchNorm affine parameters randomised (weight U(0.25, 1.75), bias N(0, 0.3)) and a
calibration pass in training mode on ``torch.rand`` inputs, so every quantiser's scale is its own.
"""

import copy

import numpy as np
import pytest

import hwgen

SEED = 20261204


def _randomised_and_calibrated(model, shape, seed):
    """``model`` with its BatchNorms' affine parameters drawn (seeded) and its quantisers
    calibrated by a few training-mode forwards on ``torch.rand`` inputs; in eval mode."""
    import torch
    import torch.nn as nn
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g, dtype=torch.float64).float() * 1.5 + 0.25)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, *shape, generator=g))
    return model.eval()


def _mini(seed, maxpool=False, round_pool=False, blocks=((8, 1), (16, 2)), act=4):
    """A small ResNet of ``brevitas_examples``' own ``QuantBasicBlock`` (its QuantTensor asserts
    included), wired as ``QuantResNet`` wires it: one shared ReLU per residual stream (4-bit stem,
    ``act``-bit blocks). The 4x4 average pool truncates its sum to 8 bits: a no-op for 4-bit inputs
    (16 · 15 fits 8 bits, as in resnet18_4w4a), dropping 2 bits (FLOOR or ROUND) for 6-bit ones."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import Int8WeightPerTensorFloat, Int32Bias, TruncTo8bit
    from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock

    class Mini(nn.Module):
        def __init__(s):
            super().__init__()
            s.qin = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            s.conv1 = qnn.QuantConv2d(3, 8, 3, padding=1, bias=False, weight_bit_width=8)
            s.bn1 = nn.BatchNorm2d(8)
            shared = s.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            s.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if maxpool else nn.Identity()
            layers, cin = [], 8
            for planes, stride in blocks:
                b = QuantBasicBlock(cin, planes, stride=stride, shared_quant_act=shared, act_bit_width=act,
                                    weight_bit_width=4)
                layers.append(b)
                shared, cin = b.relu_out, planes
            s.layers = nn.Sequential(*layers)
            s.pool = qnn.TruncAvgPool2d(kernel_size=4, trunc_quant=TruncTo8bit,
                                        float_to_int_impl_type="ROUND" if round_pool else "FLOOR")
            s.fc = qnn.QuantLinear(cin, 10, bias=True, weight_bit_width=8, bias_quant=Int32Bias,
                                   weight_quant=Int8WeightPerTensorFloat)

        def forward(s, x):
            out = s.layers(s.maxpool(s.relu(s.bn1(s.conv1(s.qin(x))))))
            out = s.pool(out)
            return s.fc(out.view(out.size(0), -1))

    torch.manual_seed(seed)
    hw = 4 * (2 if maxpool else 1) * int(np.prod([stride for _, stride in blocks]))   # 4x4 at the pool
    return _randomised_and_calibrated(Mini(), (3, hw, hw), seed), (3, hw, hw)


def _float64(model, x, in_place=False):
    """``model`` run in float64 (a float64 copy; ``in_place``: the model itself turned float64)."""
    import torch
    with torch.no_grad():
        o = (model if in_place else copy.deepcopy(model)).double()(torch.from_numpy(x.astype(np.float64)))
    return (o.value if hasattr(o, "value") else o).numpy()


def _quantised_biases(model, x, dtype):
    """Output channel -> the float value of each QuantLinear's quantised bias, ``model`` run on ``x``
    in ``dtype`` (the bias is quantised at the scale ``input scale · weight scale`` of that run)."""
    import brevitas.nn as qnn
    import torch
    m = copy.deepcopy(model).to(dtype)
    found, hooks = {}, []
    for name, layer in m.named_modules():
        if isinstance(layer, qnn.QuantLinear) and layer.bias is not None:
            def grab(mod, inp, name=name):
                found[name] = mod.bias_quant(mod.bias, inp[0], mod.quant_weight()).value.numpy()
            hooks.append(layer.register_forward_pre_hook(grab))
    with torch.no_grad():
        m(torch.from_numpy(x[:1]).to(dtype))
    return found


def _assert_is_the_module(got, model, x, tol, what):
    """``got`` (computed with the exported file's float32 constants) = the module in float64, to
    ``tol``.  Where they differ, it must be a tie (ARCHITECTURE §2) of the last layer's bias
    quantisation: ``bias / (input scale · weight scale)`` lies so near a half-integer that float32
    (the file's constants, and Brevitas in float32) and float64 Brevitas round it to neighbouring
    integers; the difference is then exactly that step on that output channel, on every frame."""
    import torch
    ref = _float64(model, x)
    diff = float(np.abs(got - ref).max())
    print(f"max |{what} - module float64| = {diff:.3g} (outputs up to {np.abs(ref).max():.3g})")
    bad = np.abs(got - ref) > tol
    if not bad.any():
        return
    b32, b64 = _quantised_biases(model, x, torch.float32), _quantised_biases(model, x, torch.float64)
    assert len(b64) == 1, f"{what} differs from the module in float64 with {len(b64)} quantised biases: not a bias tie"
    (layer,) = b64
    step = (b32[layer].astype(np.float64) - b64[layer]).reshape(1, -1)
    channels = sorted(set(np.nonzero(bad)[1].tolist()))
    print(f"channels {channels} of {layer}: float32 and float64 Brevitas quantise the bias to neighbouring "
          f"integers (a tie), steps {step[0, channels].tolist()}")
    assert np.all(step[0, channels] != 0), f"{what} differs from float64 Brevitas on channels {channels}: not a bias tie"
    np.testing.assert_allclose(got - step, ref, rtol=0, atol=tol, err_msg=f"{what}: not (only) a bias tie")


def _quant_flags(model):
    return {n: (getattr(m, "return_quant_tensor", None), getattr(m, "skip_create_quant_tensor", None),
                getattr(m, "export_mode", None), getattr(m, "export_handler", None))
            for n, m in model.named_modules()}


def _assert_onnx_is_the_module(path, model, shape, n, seed, in_place=False):
    """QONNX ``execute_onnx`` of the exported file = the module in float64 (float32 tolerance)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    w = ModelWrapper(str(path)).transform(InferShapes())
    iname, oname = w.graph.input[0].name, w.graph.output[0].name
    print(f"seed {seed}")
    x = np.random.default_rng(seed).random((n, 1, *shape)).astype(np.float32)
    got = np.concatenate([execute_onnx(w, {iname: xi})[oname] for xi in x])
    if in_place:
        ref = _float64(model, x[:, 0], in_place)
        print(f"max |execute_onnx - module float64| = {np.abs(got - ref).max():.3g}")
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * max(1.0, float(np.abs(ref).max())))
        return
    _assert_is_the_module(got, model, x[:, 0], 1e-5 * max(1.0, float(np.abs(got).max())), "execute_onnx")


def _assert_ir_is_the_module(path, model, n, seed):
    """tail(IR.execute(head(x))) = the module in float64 (the IR is exact; the tail's float64
    ``scale·acc + bias`` is the only rounding)."""
    from hwgen.host import apply_head, apply_tail, random_inputs
    from hwgen.lower import lower
    g = lower(hwgen.load(str(path)))
    print(f"seed {seed}")
    x = random_inputs(g.head, n, np.random.default_rng(seed)).astype(np.float32)
    got = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    _assert_is_the_module(got, model, x, 1e-6 * max(1.0, float(np.abs(got).max())), "IR")
    return g


@pytest.mark.filterwarnings("ignore")
def test_mini_resnet_exports_unmodified_and_stays_as_it_was(tmp_path, capsys):
    import torch
    model, shape = _mini(SEED)
    flags = _quant_flags(model)
    x = torch.rand(1, *shape, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        before = model(x)
    path = hwgen.export_brevitas(model, x, tmp_path / "mini.onnx")
    err = capsys.readouterr().err
    assert "export Mini (dynamo exporter): failed after" in err and "export Mini (torchscript exporter): " in err
    assert "class GraphModule" not in err                 # torch.export's partial FX graph is not shown
    assert _quant_flags(model) == flags                   # the user's module: no exporter state left behind
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    _assert_onnx_is_the_module(path, model, shape, 4, SEED + 1)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("variant", [
    {}, {"maxpool": True}, {"blocks": ((8, 1), (8, 1), (16, 2))}, {"act": 6}, {"act": 6, "round_pool": True},
    {"seed": 6}],
    ids=["a4", "maxpool", "two-identity-blocks", "a6-floor-pool", "a6-round-pool", "bias-tie"])
def test_mini_resnet_lowers_exactly(tmp_path, variant):
    """Residual adds on one shared grid, the strided block's 1x1 downsample branch, a padded
    max-pool, TruncAvgPool2d (FLOOR and ROUND) and the Int32-bias classifier: IR = module (float64)."""
    variant = dict(variant)
    seed = variant.pop("seed", SEED)      # seed 6: channel 7's bias/scale sits on a half-integer (a tie, here)
    model, shape = _mini(seed, **variant)
    path = hwgen.export_brevitas(model, __import__("torch").rand(1, *shape), tmp_path / "mini.onnx", progress=False)
    g = _assert_ir_is_the_module(path, model, 64, seed + 2)
    kinds = [layer.kind for layer in g.compute_layers]
    assert kinds.count("AddStreams") == len(variant.get("blocks", ((8, 1), (16, 2))))
    assert kinds.count("Pool") == 1 + bool(variant.get("maxpool"))


def test_reason_names_what_torch_export_met():
    from hwgen.frontend.export import _reason
    e = RuntimeError("Failed to export the model with torch.export. \x1b[96mThis is step 1/3\x1b[0m of exporting.\n"
                     "- Modify the model code\n\n## Exception summary\n\n"
                     "<class 'AssertionError'>: Perform add among QuantTensors\n\n(Refer to the full stack trace)")
    assert _reason(e) == ("RuntimeError: Failed to export the model with torch.export: "
                          "<class 'AssertionError'>: Perform add among QuantTensors")
    assert _reason(ValueError("one\ntwo")) == "ValueError: one"


@pytest.mark.filterwarnings("ignore")
def test_a_module_deepcopy_refuses_is_exported_itself(tmp_path):
    import brevitas.nn as qnn
    import torch

    class Uncopyable(torch.nn.Module):
        def __init__(s):
            super().__init__()
            s.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.fc = qnn.QuantLinear(6, 3, bias=False, weight_bit_width=4)
            s.tag = torch.ones(1, requires_grad=True) * 2          # a non-leaf tensor: deepcopy refuses it

        def forward(s, x):
            return s.fc(s.q(x))

    torch.manual_seed(SEED)
    model = Uncopyable().eval()
    with pytest.raises(RuntimeError):
        copy.deepcopy(model)
    path = hwgen.export_brevitas(model, torch.rand(1, 6), tmp_path / "u.onnx", progress=False)
    _assert_onnx_is_the_module(path, model, (6,), 4, SEED + 6, in_place=True)


def _resnet18(seed):
    import torch
    from brevitas_examples.bnn_pynq.models import resnet18_4w4a
    torch.manual_seed(seed)
    return _randomised_and_calibrated(resnet18_4w4a(pretrained=False), (3, 32, 32), seed)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_resnet18_4w4a_exports_unmodified(tmp_path):
    import torch
    model = _resnet18(SEED)
    flags = _quant_flags(model)
    path = hwgen.export_brevitas(model, torch.rand(1, 3, 32, 32), tmp_path / "resnet18.onnx", progress=False)
    assert _quant_flags(model) == flags
    _assert_onnx_is_the_module(path, model, (3, 32, 32), 3, SEED + 3)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_resnet18_4w4a_lowers_behind_an_input_quantiser(tmp_path):
    """Everything after the first conv's input (8 residual adds, 3 strided blocks with 1x1
    downsample convs, TruncAvgPool2d, the Int32-bias classifier) lowers exactly."""
    import brevitas.nn as qnn
    import torch

    class Quantised(torch.nn.Module):
        def __init__(s, net):
            super().__init__()
            s.q, s.net = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True), net

        def forward(s, x):
            return s.net(s.q(x))

    model = _randomised_and_calibrated(Quantised(_resnet18(SEED)), (3, 32, 32), SEED + 4)
    path = hwgen.export_brevitas(model, torch.rand(1, 3, 32, 32), tmp_path / "resnet18q.onnx", progress=False)
    g = _assert_ir_is_the_module(path, model, 8, SEED + 5)
    kinds = [layer.kind for layer in g.compute_layers]
    assert kinds.count("AddStreams") == 8 and kinds.count("MVAU") == 21 and kinds.count("Pool") == 1
