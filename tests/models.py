"""Brevitas MLP factory for tests: any mix of the features hwgen lowers.

A spec is a dict::

    {"in": 12, "in_bits": 4, "in_signed": False,
     "layers": [{"out": 10, "w": 3, "wq": "tensor"|"channel"|"po2"|"bipolar",
                 "bias": None|"float"|"quant", "bn": False, "act": "relu"|"hardtanh"|"identity"|"bipolar"|None,
                 "a": 3, "narrow": False}, ...]}
"""

import numpy as np

__all__ = ["make_mlp", "export", "SPECS", "make_cnn", "export_cnn", "CNN_SPECS", "L", "C", "make_branchy", "export_branchy"]


def _weight_kw(layer):
    from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat, SignedBinaryWeightPerTensorConst
    from brevitas.quant.fixed_point import Int8WeightPerTensorFixedPoint
    wq = layer.get("wq", "tensor")
    if wq == "bipolar" or layer["w"] == 1:
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    q = {"tensor": Int8WeightPerTensorFloat, "channel": Int8WeightPerChannelFloat,
         "po2": Int8WeightPerTensorFixedPoint}[wq]
    return {"weight_quant": q, "weight_bit_width": layer["w"]}


def _act(layer):
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryActPerTensorConst
    from brevitas.quant.fixed_point import Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
    act, a, narrow = layer.get("act"), layer.get("a", 4), layer.get("narrow", False)
    po2 = layer.get("apo2", False)
    if act is None:
        return None
    if act == "bipolar" or a == 1 and act != "relu":
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    if act == "relu":
        kw = {"act_quant": Uint8ActPerTensorFixedPoint} if po2 else {}
        return qnn.QuantReLU(bit_width=a, return_quant_tensor=True, **kw)
    if act == "hardtanh":
        return qnn.QuantHardTanh(bit_width=a, max_val=1.0, min_val=-1.0, narrow_range=narrow, return_quant_tensor=True)
    if act == "identity":
        kw = {"act_quant": Int8ActPerTensorFixedPoint} if po2 else {}
        return qnn.QuantIdentity(bit_width=a, narrow_range=narrow, return_quant_tensor=True, **kw)
    raise ValueError(act)


def make_mlp(spec, seed=0):
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import Int8ActPerTensorFloat, Int8Bias, Uint8ActPerTensorFloat

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    in_q = Int8ActPerTensorFloat if spec.get("in_signed", True) else Uint8ActPerTensorFloat
    if spec.get("in_bits", 4) == 1:
        from brevitas.quant import SignedBinaryActPerTensorConst
        mods = [qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)]
    else:
        mods = [qnn.QuantIdentity(act_quant=in_q, bit_width=spec.get("in_bits", 4), return_quant_tensor=True)]
    fan_in = spec["in"]
    for layer in spec["layers"]:
        bias = layer.get("bias")
        kw = _weight_kw(layer)
        if bias == "quant":
            kw["bias_quant"] = Int8Bias
        lin = qnn.QuantLinear(fan_in, layer["out"], bias=bias is not None, **kw)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(layer["out"], fan_in) / np.sqrt(fan_in))
            if bias is not None:
                lin.bias.copy_(torch.randn(layer["out"]) * 0.3)
        mods.append(lin)
        if layer.get("bn"):
            bn = nn.BatchNorm1d(layer["out"])
            with torch.no_grad():
                g = rng.uniform(0.3, 2.0, layer["out"]) * np.where(rng.random(layer["out"]) < 0.3, -1, 1)
                bn.weight.copy_(torch.tensor(g, dtype=torch.float32))
                bn.bias.copy_(torch.tensor(rng.normal(0, 0.5, layer["out"]), dtype=torch.float32))
                bn.running_mean.copy_(torch.tensor(rng.normal(0, 0.5, layer["out"]), dtype=torch.float32))
                bn.running_var.copy_(torch.tensor(rng.uniform(0.2, 2.0, layer["out"]), dtype=torch.float32))
            mods.append(bn)
        act = _act(layer)
        if act is not None:
            mods.append(act)
        fan_in = layer["out"]
    return nn.Sequential(*mods).eval()


def export(model, spec, path):
    import torch

    import hwgen
    return hwgen.export_brevitas(model, torch.randn(1, spec["in"]), path)


def L(out, w, act="relu", a=3, **kw):
    d = {"out": out, "w": w, "act": act, "a": a}
    d.update(kw)
    return d


# A grid over the features of the MLP issue, each combination layer by layer.
SPECS = {
    "w4a4_relu_bn": {"in": 12, "in_bits": 4, "in_signed": False,
                     "layers": [L(10, 4, a=4, bn=True, bias="float"), L(6, 4, act=None, bias="float")]},
    "bipolar_w_mixed": {"in": 9, "in_bits": 3, "layers": [L(7, 1, a=2, bn=True), L(5, 2, act="hardtanh", a=2), L(3, 8, act=None)]},
    "w8a8_channel": {"in": 10, "in_bits": 8, "layers": [L(6, 8, wq="channel", a=8, bias="float"), L(4, 3, wq="channel", act=None, bias="float")]},
    "po2_quantbias": {"in": 8, "in_bits": 4, "layers": [L(6, 4, wq="po2", bias="quant", act="identity", a=4, apo2=True),
                                                        L(5, 3, wq="po2", bias="quant", act="relu", a=2, apo2=True), L(3, 2, act=None)]},
    "hardtanh_narrow_bn": {"in": 6, "in_bits": 2, "layers": [L(10, 3, act="hardtanh", a=3, narrow=True, bn=True, bias="float"),
                                                            L(4, 2, act="identity", a=4, bn=True), L(2, 4, act=None, bias="float")]},
    "bipolar_acts": {"in": 8, "in_bits": 1, "layers": [L(6, 1, act="bipolar", bn=True), L(5, 2, act="bipolar", bn=True), L(3, 3, act=None)]},
    "a2_relu_w2": {"in": 5, "in_bits": 2, "in_signed": False, "layers": [L(9, 2, act="relu", a=2, bn=True), L(4, 4, act="relu", a=8), L(3, 4, act="identity", a=5)]},
    "quant_output": {"in": 7, "in_bits": 4, "layers": [L(5, 4, act="relu", a=4), L(3, 3, act="identity", a=4, narrow=True)]},
}


# --------------------------------------------------------------------------- CNNs
def make_cnn(spec, seed=0):
    """Brevitas CNN from a spec::

        {"in": (C, H, W), "in_bits": 8, "in_signed": True,
         "layers": [{"type": "conv", "out": 8, "k": 3, "s": 1, "p": 1, "w": 4, "dw": False, "bn": True,
                     "bias": None|"float", "act": "relu"|..., "a": 4},
                    {"type": "maxpool", "k": 2, "s": 2, "p": 0},
                    {"type": "avgpool", "k": 2, "s": 2, "bits": 6},   # Brevitas TruncAvgPool2d
                    {"type": "gap", "a": 4},                          # AdaptiveAvgPool2d(1) + QuantIdentity
                    {"type": "flatten"}, {"type": "fc", ...same keys as MLP layers...}]}
    """
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    c, h, w = spec["in"]
    in_q = Int8ActPerTensorFloat if spec.get("in_signed", True) else Uint8ActPerTensorFloat
    if spec.get("in_bits", 8) == 1:
        from brevitas.quant import SignedBinaryActPerTensorConst
        mods = [qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)]
    else:
        mods = [qnn.QuantIdentity(act_quant=in_q, bit_width=spec.get("in_bits", 8), return_quant_tensor=True)]
    feat = None
    for layer in spec["layers"]:
        t = layer["type"]
        if t == "conv":
            k, s, p = layer.get("k", 3), layer.get("s", 1), layer.get("p", 0)
            dw = layer.get("dw", False)
            out = c if dw else layer["out"]
            kw = _weight_kw(layer)
            conv = qnn.QuantConv2d(c, out, k, stride=s, padding=p, groups=c if dw else 1,
                                   bias=layer.get("bias") is not None, **kw)
            with torch.no_grad():
                fan = (1 if dw else c) * (k if isinstance(k, int) else k[0] * k[1]) ** (2 if isinstance(k, int) else 1)
                conv.weight.copy_(torch.randn_like(conv.weight) / np.sqrt(fan))
                if conv.bias is not None:
                    conv.bias.copy_(torch.randn(out) * 0.3)
            mods.append(conv)
            c = out
            kh, kw_ = (k, k) if isinstance(k, int) else k
            sh, sw = (s, s) if isinstance(s, int) else s
            ph, pw = (p, p) if isinstance(p, int) else p
            h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw_) // sw + 1
            if layer.get("bn"):
                bn = nn.BatchNorm2d(c)
                with torch.no_grad():
                    g = rng.uniform(0.3, 2.0, c) * np.where(rng.random(c) < 0.3, -1, 1)
                    bn.weight.copy_(torch.tensor(g, dtype=torch.float32))
                    bn.bias.copy_(torch.tensor(rng.normal(0, 0.5, c), dtype=torch.float32))
                    bn.running_mean.copy_(torch.tensor(rng.normal(0, 0.5, c), dtype=torch.float32))
                    bn.running_var.copy_(torch.tensor(rng.uniform(0.2, 2.0, c), dtype=torch.float32))
                mods.append(bn)
            act = _act(layer)
            if act is not None:
                mods.append(act)
        elif t == "maxpool":
            k, s, p = layer.get("k", 2), layer.get("s", layer.get("k", 2)), layer.get("p", 0)
            mods.append(nn.MaxPool2d(k, s, p))
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif t == "avgpool":
            k, s = layer.get("k", 2), layer.get("s", layer.get("k", 2))
            mods.append(qnn.TruncAvgPool2d(kernel_size=k, stride=s, bit_width=layer.get("bits", 8), return_quant_tensor=True))
            h, w = (h - k) // s + 1, (w - k) // s + 1
        elif t == "gap":
            mods += [nn.AdaptiveAvgPool2d(1), qnn.QuantIdentity(bit_width=layer.get("a", 4), return_quant_tensor=True)]
            h = w = 1
        elif t == "flatten":
            mods.append(nn.Flatten())
            feat = c * h * w
        elif t == "fc":
            bias = layer.get("bias")
            kw = _weight_kw(layer)
            lin = qnn.QuantLinear(feat, layer["out"], bias=bias is not None, **kw)
            with torch.no_grad():
                lin.weight.copy_(torch.randn(layer["out"], feat) / np.sqrt(feat))
                if bias is not None:
                    lin.bias.copy_(torch.randn(layer["out"]) * 0.3)
            mods.append(lin)
            act = _act(layer)
            if act is not None:
                mods.append(act)
            feat = layer["out"]
        else:
            raise ValueError(t)
    return nn.Sequential(*mods).eval()


def export_cnn(model, spec, path):
    import torch

    import hwgen
    return hwgen.export_brevitas(model, torch.randn(1, *spec["in"]), path)


def C(out, k=3, w=4, act="relu", a=4, **kw):
    d = {"type": "conv", "out": out, "k": k, "w": w, "act": act, "a": a}
    d.update(kw)
    return d


CNN_SPECS = {
    "conv_pad_bn_maxpool_fc": {"in": (1, 8, 8), "in_bits": 8, "layers": [
        C(4, 3, p=1, bn=True), {"type": "maxpool", "k": 2}, C(6, 3, w=3, a=3, bn=True, bias="float"),
        {"type": "flatten"}, {"type": "fc", "out": 5, "w": 4, "act": None, "bias": "float"}]},
    "stride2_nonsquare_dw": {"in": (3, 9, 7), "in_bits": 4, "in_signed": False, "layers": [
        C(6, (3, 2), s=2, p=(1, 0), w=2, a=3, bn=True), C(0, 3, dw=True, p=1, w=4, a=4, bn=True, bias="float"),
        {"type": "maxpool", "k": 3, "s": 2, "p": 1}, {"type": "flatten"}, {"type": "fc", "out": 4, "w": 3, "act": None}]},
    "avgpool_gap_k1": {"in": (2, 6, 6), "in_bits": 3, "layers": [
        C(5, 1, w=4, a=4, act="identity"), {"type": "avgpool", "k": 2, "bits": 5}, C(7, 3, p=1, w=2, a=2, bn=True),
        {"type": "gap", "a": 4}, {"type": "flatten"}, {"type": "fc", "out": 3, "w": 4, "act": None, "bias": "float"}]},
    "k5_s3_pad2_pointwise_s2": {"in": (3, 11, 10), "in_bits": 5, "in_signed": False, "layers": [
        C(6, 5, s=3, p=2, w=4, a=4, bn=True, bias="float"), C(5, 1, s=2, w=3, a=3, act="identity", bn=True),
        {"type": "flatten"}, {"type": "fc", "out": 3, "w": 4, "act": None}]},
    "k7_maxpool_pad_k2": {"in": (2, 9, 9), "in_bits": 4, "layers": [
        C(4, 7, p=3, w=3, a=3, bn=True), {"type": "maxpool", "k": 3, "s": 3, "p": 1}, C(5, 2, w=2, a=2, act="hardtanh", bn=True),
        {"type": "gap", "a": 3}, {"type": "flatten"}, {"type": "fc", "out": 4, "w": 3, "act": None, "bias": "float"}]},
    "kernel_is_input_bipolar": {"in": (2, 5, 5), "in_bits": 1, "layers": [
        C(8, 3, w=1, act="bipolar", bn=True), C(6, 3, w=1, act="hardtanh", a=2, bn=True),
        {"type": "flatten"}, {"type": "fc", "out": 4, "w": 2, "act": None}]},
}


# --------------------------------------------------------------------------- branching graphs
def _v(t):
    return t.value if hasattr(t, "value") else t


def random_batchnorm(c, d=1):
    """A BatchNorm (1-d or 2-d) with random affine parameters and statistics (gamma of either sign)."""
    import torch
    import torch.nn as nn
    m = nn.BatchNorm1d(c) if d == 1 else nn.BatchNorm2d(c)
    with torch.no_grad():
        m.weight.uniform_(-1.5, 1.5)
        m.bias.normal_(0, 0.3)
        m.running_mean.normal_(0, 0.3)
        m.running_var.uniform_(0.3, 2.0)
    return m


def make_branchy(kind, seed=0):
    """Small Brevitas networks that are not a single chain.

    * ``res_mlp``: a residual MLP block whose two branches have different scales and bit widths;
    * ``res_cnn``: a residual conv block (same-padding convs) + a second block with a
      subtraction, global pooling and an FC;
    * ``concat_cnn``: two conv branches of different widths concatenated along channels
      (one shared quantiser), then a conv and an FC, ending in ArgMax.
    """
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)

    bn = random_batchnorm

    class ResMLP(nn.Module):
        def __init__(s):
            super().__init__()
            s.qin = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.fc0 = qnn.QuantLinear(8, 12, bias=True, weight_bit_width=4)
            s.a0 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            s.fc1 = qnn.QuantLinear(12, 12, bias=True, weight_bit_width=3)
            s.bn1 = bn(12)
            s.a1 = qnn.QuantIdentity(bit_width=5, return_quant_tensor=True)
            s.aout = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            s.fc2 = qnn.QuantLinear(12, 5, bias=True, weight_bit_width=4)

        def forward(s, x):
            x = s.qin(x)
            h = s.a0(s.fc0(x))
            y = s.a1(s.bn1(s.fc1(h)))
            return s.fc2(s.aout(_v(h) + _v(y)))

    class ResCNN(nn.Module):
        def __init__(s):
            super().__init__()
            s.qin = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.c0 = qnn.QuantConv2d(2, 6, 3, padding=1, weight_bit_width=4, bias=False)
            s.b0, s.a0 = bn(6, 2), qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
            s.c1 = qnn.QuantConv2d(6, 6, 3, padding=1, weight_bit_width=3, bias=False)
            s.b1, s.a1 = bn(6, 2), qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.r1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            s.c2 = qnn.QuantConv2d(6, 6, 1, weight_bit_width=4, bias=True)
            s.a2 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.r2 = qnn.QuantIdentity(bit_width=5, return_quant_tensor=True)
            s.pool = nn.AdaptiveAvgPool2d(1)
            s.qp = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.fc = qnn.QuantLinear(6, 4, bias=True, weight_bit_width=4)

        def forward(s, x):
            x = s.qin(x)
            h = s.a0(s.b0(s.c0(x)))
            y = s.a1(s.b1(s.c1(h)))
            z = s.r1(_v(h) + _v(y))
            w = s.a2(s.c2(z))
            u = s.r2(_v(z) - _v(w))
            return s.fc(torch.flatten(s.qp(s.pool(_v(u))), 1))

    class ConcatCNN(nn.Module):
        def __init__(s):
            super().__init__()
            s.qin = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
            s.ca = qnn.QuantConv2d(3, 4, 3, padding=1, weight_bit_width=3, bias=False)
            s.cb = qnn.QuantConv2d(3, 2, 1, weight_bit_width=4, bias=True)
            s.ba = bn(4, 2)
            s.shared = qnn.QuantReLU(bit_width=3, return_quant_tensor=True)
            s.c2 = qnn.QuantConv2d(6, 5, 3, weight_bit_width=2, bias=False)
            s.b2, s.a2 = bn(5, 2), qnn.QuantReLU(bit_width=2, return_quant_tensor=True)
            s.fc = qnn.QuantLinear(5 * 4 * 4, 6, bias=False, weight_bit_width=4)
            s.aout = qnn.QuantIdentity(bit_width=6, return_quant_tensor=True)

        def forward(s, x):
            x = s.qin(x)
            a = s.shared(s.ba(s.ca(x)))
            b = s.shared(s.cb(x))
            y = s.a2(s.b2(s.c2(torch.cat([_v(a), _v(b)], dim=1))))
            return torch.argmax(_v(s.aout(s.fc(torch.flatten(_v(y), 1)))), dim=1, keepdim=True)

    shapes = {"res_mlp": (8,), "res_cnn": (2, 6, 6), "concat_cnn": (3, 6, 6)}
    model = {"res_mlp": ResMLP, "res_cnn": ResCNN, "concat_cnn": ConcatCNN}[kind]().eval()
    return model, shapes[kind]


def export_branchy(kind, path, seed=0):
    import torch

    import hwgen
    model, shape = make_branchy(kind, seed)
    hwgen.export_brevitas(model, torch.randn(1, *shape), path)
    return model, shape


def randomise_norms(make, seed):
    """``make()`` built under a seeded torch, its BatchNorm state randomised (seeded: signs mixed,
    offsets and variances far from the identity), in eval mode."""
    import torch
    import torch.nn as nn
    torch.manual_seed(seed)
    model = make()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_((torch.rand(n, generator=g) + 0.3) * torch.where(torch.rand(n, generator=g) < 0.3, -1.0, 1.0))
                m.bias.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.2)
    return model.eval()
