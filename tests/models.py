"""Brevitas MLP factory for tests: any mix of the features hwgen lowers.

A spec is a dict::

    {"in": 12, "in_bits": 4, "in_signed": False,
     "layers": [{"out": 10, "w": 3, "wq": "tensor"|"channel"|"po2"|"bipolar",
                 "bias": None|"float"|"quant", "bn": False, "act": "relu"|"hardtanh"|"identity"|"bipolar"|None,
                 "a": 3, "narrow": False}, ...]}
"""

import numpy as np

__all__ = ["make_mlp", "export", "SPECS"]


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
