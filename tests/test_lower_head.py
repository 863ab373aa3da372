"""The host head: the model's own float work before its first quantiser runs on the host, in float64.

References are independent of hwgen: the Brevitas module run in float64 (``module.double()``)
and torch's own float64 convolution; the integers the accelerator sees are compared with the
integers Brevitas' first quantiser produces."""

import numpy as np
import pytest
import torch
import torch.nn as nn

SEED = 20261204


def _export(module, x, path):
    import hwgen
    hwgen.export_brevitas(module, torch.from_numpy(x).float(), path, progress=False)
    return path


def _ir(path, x):
    from hwgen.frontend import load
    from hwgen.host import apply_head, apply_tail
    from hwgen.lower import lower
    g = lower(load(path))
    return g, apply_tail(g.tail, g.execute(apply_head(g.head, x)))


def _double(module, x):
    import copy
    m = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        y = m(torch.from_numpy(x))
    return getattr(y, "value", y).numpy()


class Bnn(nn.Module):
    """bnn_pynq's FC front: flatten, ``2·x − 1``, a bipolar input quantiser, one binary layer."""

    def __init__(self, bits):
        super().__init__()
        import brevitas.nn as qnn
        from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
        if bits == 1:
            self.q = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        else:
            self.q = qnn.QuantIdentity(bit_width=bits, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16, 5, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        x = 2.0 * x - torch.tensor([1.0])
        return self.fc(self.q(x))


@pytest.mark.parametrize("bits", [1, 8])
def test_affine_preprocessing_joins_the_head(tmp_path, bits):
    """``2·x − 1`` before the first quantiser: recorded as the head's pre ops, exact against float64 Brevitas,
    and hwgen's random inputs span the quantiser's whole range through it."""
    from hwgen.host import apply_head, random_inputs
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    m = Bnn(bits).eval()
    x = rng.random((64, 1, 4, 4))
    g, y = _ir(_export(m, x[:1], str(tmp_path / "m.onnx")), x)
    assert [op["op"] for op in g.head["pre"]] == ["reshape", "mul", "sub"]
    np.testing.assert_array_equal(y, _double(m, x))
    xr = random_inputs(g.head, 400, rng)
    assert xr.min() >= -0.01 and xr.max() <= 1.01          # [0, 1] maps onto the quantiser's range [-1, 1]
    q = apply_head(g.head, xr)
    lo, hi = (-1, 1) if bits == 1 else (-128, 127)
    assert q.min() == lo and q.max() == hi


class FloatStem(nn.Module):
    """An ImageNet-style stem: a convolution on the float image (stride 2, padding 1), BatchNorm, a
    per-channel unsigned activation quantiser, then a depthwise convolution that reads it."""

    def __init__(self):
        super().__init__()
        import brevitas.nn as qnn
        c = 6
        self.conv = qnn.QuantConv2d(3, c, 3, stride=2, padding=1, bias=False, weight_bit_width=8)
        self.bn = nn.BatchNorm2d(c)
        self.act = qnn.QuantReLU(bit_width=4, per_channel_broadcastable_shape=(1, c, 1, 1),
                                 scaling_stats_permute_dims=(1, 0, 2, 3), scaling_per_output_channel=True,
                                 return_quant_tensor=True)
        self.dw = qnn.QuantConv2d(c, c, 3, groups=c, padding=1, bias=False, weight_bit_width=4)
        self.bn2 = nn.BatchNorm2d(c)
        self.act2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)

    def forward(self, x):
        return self.act2(self.bn2(self.dw(self.act(self.bn(self.conv(x))))))


def test_float_convolution_before_the_first_quantiser(tmp_path):
    """The first convolution takes the float image: the host computes it (and its BatchNorm) in float64,
    the per-channel input scale it leaves moves into the depthwise layer's own thresholds."""
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    m = FloatStem()
    g_ = torch.Generator().manual_seed(SEED)
    for bn in (m.bn, m.bn2):
        bn.weight.data = torch.rand(6, generator=g_) + 0.5
        bn.bias.data = torch.randn(6, generator=g_) * 0.3
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(8, 3, 11, 11))
    m.eval()
    x = rng.standard_normal((16, 3, 11, 11))
    g, y = _ir(_export(m, x[:1], str(tmp_path / "stem.onnx")), x)
    assert [op["op"] for op in g.head["pre"]] == ["reshape", "conv", "batchnorm", "relu"]
    assert [l.kind for l in g.layers] == ["SlidingWindow", "VVAU"]
    assert np.asarray(g.head["quant"]["scale"]).size == 6               # quantised per channel on the host
    want = _double(m, x)
    # the output scale is the file's float32 number, the float64 module's is computed in float64: 1e-7
    # apart; one integer off is one step (the smallest non-zero output) apart
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=0)
    assert len(np.unique(np.round(want / want[want > 0].min()))) > 3     # several output levels seen


def test_eval_pre_convolution_matches_torch():
    """The head's convolution (strides, asymmetric pads, groups, bias) against torch's in float64."""
    from hwgen.host import eval_pre
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    op = {"op": "conv", "weight": w.tolist(), "bias": b.tolist(), "strides": [2, 1], "pads": [1, 0, 2, 1], "group": 2}
    got = eval_pre([op], x)
    xp = torch.nn.functional.pad(torch.from_numpy(x), (0, 1, 1, 2))          # (left, right, top, bottom)
    want = torch.nn.functional.conv2d(xp, torch.from_numpy(w), torch.from_numpy(b), stride=(2, 1), groups=2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_unsupported_float_work_is_named(tmp_path):
    """Float work the host head does not run is one line naming the node and what is accepted."""
    import onnx
    from qonnx_builder import GraphBuilder
    from hwgen.frontend import load
    from hwgen.lower import lower
    from hwgen.errors import UnsupportedError
    b = GraphBuilder((1, 2, 4, 4))
    b.cur = b.node("MaxPool", [b.cur], kernel_shape=[2, 2], strides=[2, 2])
    b.act(0.25, bits=4, signed=False)
    path = str(tmp_path / "m.onnx")
    onnx.save(b.model((1, 2, 2, 2)), path)
    with pytest.raises(UnsupportedError) as e:
        lower(load(path))
    assert str(e.value) == ("node MaxPool_n2 (MaxPool): computes on the float model input before its first quantiser, where "
                            "hwgen runs it on the host; accepted there: element-wise ops with constants (Add, Sub, Mul, "
                            "Div, Max, Min), BatchNormalization, Relu, Clip, Conv, MatMul, Gemm, reshapes")
