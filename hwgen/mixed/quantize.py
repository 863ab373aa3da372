"""A float PyTorch model → a Brevitas model at any per-layer bit-width assignment.

The float model is an ``nn.Sequential`` (nested ones are flattened) of
``Linear``, ``Conv2d``, ``BatchNorm1d/2d``, ``ReLU``, ``Hardtanh``, ``MaxPool2d``,
``AvgPool2d``, ``Flatten``, ``Dropout`` and ``Identity``.  Each ``Linear``/``Conv2d``
starts a *segment*: the layer, an optional BatchNorm, an optional activation, then
pooling/Flatten, in that order (the order hwgen's frontend accepts, see
``examples/digits_mlp.py`` and ``examples/digits_cnn.py``).

Layer names are the ones ``hwgen build`` gives the layers it makes of them (its
report and folding files use the same names): ``fc0, fc1, …`` for ``Linear``,
``conv0, …`` for ``Conv2d`` and ``dw0, …`` for depthwise ``Conv2d``, counted per
kind in forward order.

An assignment maps every layer name to ``(w_bits, a_bits)``: the weight bits and
the bits of the activation quantiser after the layer (after its BatchNorm and
activation function, before pooling), both 1..8.  1 bit means bipolar: sign
weights scaled by their mean magnitude, and sign activations (which replace a
ReLU: the sign of the BatchNorm output).  ``a_bits`` may be ``None`` only for the
last layer, whose output then stays the accumulator (float logits).
"""

import copy
from dataclasses import dataclass, field

from ..errors import HwgenError

__all__ = ["quant_layers", "quantize", "uniform", "segments", "Segment", "BITS"]

BITS = range(1, 9)
_ORDER = "layer, BatchNorm, ReLU/Hardtanh, then MaxPool2d/AvgPool2d/Flatten/Dropout/Identity"


@dataclass
class Segment:
    """One Linear/Conv2d layer and the modules up to the next one (``(path, module)`` pairs)."""

    name: str
    path: str
    layer: object
    norm: tuple = None
    act: tuple = None
    after: list = field(default_factory=list)

    @property
    def act_kind(self):
        """``"relu"``, ``"hardtanh"`` or ``None``: the activation function after the layer."""
        import torch.nn as nn
        if self.act is None:
            return None
        return "relu" if isinstance(self.act[1], nn.ReLU) else "hardtanh"

    @property
    def quant_point(self):
        """The module whose output the activation quantiser replaces or follows."""
        return (self.act or self.norm or (self.path, self.layer))[1]


def _kinds():
    import torch.nn as nn
    return {"layer": (nn.Linear, nn.Conv2d), "norm": (nn.BatchNorm1d, nn.BatchNorm2d),
            "act": (nn.ReLU, nn.Hardtanh),
            "after": (nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity)}


def _leaves(module, prefix=""):
    """(dotted path, module) of every leaf in forward order, through nested nn.Sequential."""
    import torch.nn as nn
    accepted = tuple(t for ts in _kinds().values() for t in ts)
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, path + ".")
        elif isinstance(child, accepted):
            yield path, child
        else:
            raise HwgenError(f"module {path} ({type(child).__name__}): not supported; accepted: nn.Sequential of "
                             "Linear, Conv2d, BatchNorm1d/2d, ReLU, Hardtanh, MaxPool2d, AvgPool2d, Flatten, Dropout")


def _layer_prefix(path, layer):
    """The name prefix hwgen's lowering gives this layer; raises for convolutions it cannot lower."""
    import torch.nn as nn
    if isinstance(layer, nn.Linear):
        return "fc"
    if layer.dilation != (1, 1):
        raise HwgenError(f"module {path} (Conv2d): dilation {list(layer.dilation)} is not supported; accepted: 1")
    if layer.padding_mode != "zeros":
        raise HwgenError(f"module {path} (Conv2d): padding_mode {layer.padding_mode!r} is not supported; accepted: 'zeros'")
    if layer.groups == 1:
        return "conv"
    if layer.groups == layer.in_channels == layer.out_channels:
        return "dw"
    raise HwgenError(f"module {path} (Conv2d): groups={layer.groups} is not supported; accepted: 1 or the number "
                     f"of channels ({layer.in_channels}) with one filter per channel")


def segments(model):
    """(modules before the first layer, [Segment]) of a float model; raises HwgenError on what it cannot map."""
    import torch.nn as nn
    if not isinstance(model, nn.Sequential):
        raise HwgenError(f"model: must be an nn.Sequential, not {type(model).__name__}")
    kinds, counters = _kinds(), {}
    head, segs, stage = [], [], 0
    for path, m in _leaves(model):
        if isinstance(m, kinds["layer"]):
            prefix = _layer_prefix(path, m)
            segs.append(Segment(f"{prefix}{counters.get(prefix, 0)}", path, m))
            counters[prefix] = counters.get(prefix, 0) + 1
            stage = 0
            continue
        kind = next(k for k in ("norm", "act", "after") if isinstance(m, kinds[k]))
        if not segs:
            if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)):
                raise HwgenError(f"module {path} ({type(m).__name__}): not supported before the first Linear/Conv2d; "
                                 "accepted: Flatten, Dropout, Identity")
            head.append((path, m))
            continue
        seg, rank = segs[-1], ("norm", "act", "after").index(kind) + 1
        if rank < stage or (rank == stage and kind != "after"):
            raise HwgenError(f"layer {seg.name}: {type(m).__name__} at {path} is out of order; accepted: {_ORDER}")
        stage = rank
        if kind == "after":
            seg.after.append((path, m))
        else:
            setattr(seg, kind, (path, m))
    if not segs:
        raise HwgenError("model: has no Linear or Conv2d layer; accepted: at least one")
    return head, segs


def quant_layers(model):
    """Names of the float model's quantisable layers (``["fc0", "fc1", …]``), in forward order."""
    return [s.name for s in segments(model)[1]]


def uniform(model, w_bits, a_bits):
    """The assignment giving every layer ``(w_bits, a_bits)``; the last layer's output stays unquantised."""
    names = quant_layers(model)
    return {n: (w_bits, a_bits if i < len(names) - 1 else None) for i, n in enumerate(names)}


def check_bits(what, value, name):
    """Raise unless ``value`` is a bit width 1..8 (``what``: "weight" or "activation")."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in BITS:
        raise HwgenError(f"layer {name}: {what} bits must be 1..8, not {value!r}")


def _check_assignment(segs, assignment):
    names = [s.name for s in segs]
    unknown = [k for k in assignment if k not in names]
    if unknown:
        raise HwgenError(f"assignment: layer {unknown[0]!r} is not in the model; layers are {', '.join(names)}")
    missing = [n for n in names if n not in assignment]
    if missing:
        raise HwgenError(f"assignment: layer {missing[0]} has no bit widths; every layer needs (w_bits, a_bits)")
    for s in segs:
        pair = assignment[s.name]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise HwgenError(f"layer {s.name}: bit widths must be a pair (w_bits, a_bits), not {pair!r}")
        w, a = pair
        check_bits("weight", w, s.name)
        if a is None and s is not segs[-1]:
            raise HwgenError(f"layer {s.name}: activation bits must be 1..8, not None (only the last layer may "
                             "leave its output unquantised)")
        if a is None and s.act is not None:
            raise HwgenError(f"layer {s.name}: the {type(s.act[1]).__name__} after it needs activation bits 1..8, not None")
        if a is not None:
            check_bits("activation", a, s.name)


def _binary_weight_quant():
    """Sign weights scaled by the tensor's mean magnitude (a BipolarQuant in QONNX)."""
    from brevitas.core.function_wrapper import TensorClampSte
    from brevitas.inject.enum import ScalingImplType, StatsOp
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    class SignedBinaryWeightPerTensorMeanAbs(SignedBinaryWeightPerTensorConst):
        scaling_impl_type = ScalingImplType.STATS
        scaling_stats_op = StatsOp.AVE
        scaling_min_val = 1e-10
        tensor_clamp_impl = TensorClampSte
    return SignedBinaryWeightPerTensorMeanAbs


def _quant_layer(layer, w_bits):
    """The Brevitas twin of a Linear/Conv2d with the float weights copied in."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn

    kw = {"weight_quant": _binary_weight_quant()} if w_bits == 1 else {"weight_bit_width": w_bits}
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        q = qnn.QuantLinear(layer.in_features, layer.out_features, bias=bias, **kw)
    else:
        q = qnn.QuantConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                            padding=layer.padding, groups=layer.groups, bias=bias, **kw)
    with torch.no_grad():
        q.weight.copy_(layer.weight)
        if bias:
            q.bias.copy_(layer.bias)
    return q


def _act_quant(act_kind, act, a_bits):
    """The quantiser after a layer: bipolar at 1 bit, QuantReLU/QuantHardTanh, or a signed QuantIdentity."""
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryActPerTensorConst

    if a_bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    if act_kind == "relu":
        return qnn.QuantReLU(bit_width=a_bits, return_quant_tensor=True)
    if act_kind == "hardtanh":
        return qnn.QuantHardTanh(bit_width=a_bits, min_val=act.min_val, max_val=act.max_val, return_quant_tensor=True)
    return qnn.QuantIdentity(bit_width=a_bits, return_quant_tensor=True)


def _avg_pool(seg, pool, a_bits):
    """A TruncAvgPool2d: the integer window sum shifted back to the ``a_bits`` of the activation it averages."""
    import brevitas.nn as qnn

    if a_bits is None or a_bits == 1:
        raise HwgenError(f"layer {seg.name}: AvgPool2d needs activation bits 2..8 before it, not {a_bits}")
    if pool.padding not in (0, (0, 0)) or pool.ceil_mode:
        raise HwgenError(f"layer {seg.name}: AvgPool2d with padding {pool.padding} / ceil_mode={pool.ceil_mode} is "
                         "not supported; accepted: padding 0, ceil_mode False")
    return qnn.TruncAvgPool2d(pool.kernel_size, pool.stride, bit_width=a_bits, return_quant_tensor=True)


def _quant_segment(seg, w_bits, a_bits):
    import torch.nn as nn
    mods = [_quant_layer(seg.layer, w_bits)]
    if seg.norm is not None:
        mods.append(copy.deepcopy(seg.norm[1]))
    if a_bits is not None:
        mods.append(_act_quant(seg.act_kind, seg.act and seg.act[1], a_bits))
    for _, m in seg.after:
        mods.append(_avg_pool(seg, m, a_bits) if isinstance(m, nn.AvgPool2d) else copy.deepcopy(m))
    return mods


def quantize(float_model, assignment, in_bits=4):
    """A Brevitas ``nn.Sequential`` computing ``float_model`` at the per-layer bit widths of ``assignment``.

    ``assignment``: ``{layer name: (w_bits, a_bits)}`` for every name of :func:`quant_layers`.
    The input (assumed in [0, 1]) goes through an unsigned ``in_bits``-bit QuantIdentity.  Float
    weights, biases and BatchNorm state are copied; weights use Brevitas' per-tensor max-abs scale
    (narrow range) from 2 bits, sign × mean |W| at 1 bit.  The result is in the float model's
    training mode and exports with :func:`hwgen.export_brevitas`.
    """
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import Uint8ActPerTensorFloat

    head, segs = segments(float_model)
    _check_assignment(segs, assignment)
    if isinstance(in_bits, bool) or not isinstance(in_bits, int) or not 2 <= in_bits <= 8:
        raise HwgenError(f"input: in_bits must be 2..8, not {in_bits!r}")
    mods = [qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=in_bits, return_quant_tensor=True)]
    mods += [copy.deepcopy(m) for _, m in head]
    for s in segs:
        mods += _quant_segment(s, *assignment[s.name])
    return nn.Sequential(*mods).train(float_model.training)
