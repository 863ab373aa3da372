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

Residual adds: a :class:`Residual` ``(body, act)`` anywhere in the top-level Sequential (not
inside another one's body) computes ``act(x + body(x))``; ``body`` is an ``nn.Sequential`` of
shape-preserving segments (Linear/Conv2d, BatchNorm, ReLU/Hardtanh; Dropout/Identity; no
pooling or Flatten).  The body's layers are named and quantised like any other (in forward
order); the add is a layer of its own, named as hwgen names the AddStreams layer it lowers to
(``add0, add1, …``), with the assignment entry ``(None, a_bits)``: the bits of the quantiser
after the add (and ``act``; 1 bit: the bipolar sign of the sum).  The skip input is the block
input, quantised by the quantiser before it; the body's last layer keeps its own.  Every
quantiser that feeds an add, and the add's own, has a power-of-two scale, so hwgen adds the two
integer streams with shifts (no constant multipliers) on a narrow accumulator.
"""

import copy

from ..errors import HwgenError
from .segments import (_RESIDUAL, BITS, Join, Segment, _residual_class, check_bits, power_of_two, quant_layers,
                       segments)

__all__ = ["quant_layers", "quantize", "uniform", "segments", "Segment", "Join", "BITS"]   # and Residual (lazy)


def _quant_residual_class():
    if "quant" not in _RESIDUAL:
        import torch.nn as nn

        class QuantResidual(nn.Module):
            """The Brevitas twin of a :class:`Residual`: ``quant(skip.value + body(skip).value)``."""

            def __init__(self, body, quant):
                super().__init__()
                self.body, self.quant = body, quant

            def forward(self, x):
                y = self.body(x)
                return self.quant(_value(x) + _value(y))

        QuantResidual.__module__, QuantResidual.__qualname__ = __name__, "QuantResidual"
        _RESIDUAL["quant"] = QuantResidual
    return _RESIDUAL["quant"]


def _value(t):
    return t.value if hasattr(t, "value") else t


def __getattr__(name):
    if name == "Residual":
        return _residual_class()
    if name == "QuantResidual":
        return _quant_residual_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def uniform(model, w_bits, a_bits):
    """The assignment giving every layer ``(w_bits, a_bits)``; the last layer's output stays unquantised;
    a residual add gets ``(None, a_bits)``."""
    segs = segments(model)[1]
    return {s.name: (None if isinstance(s, Join) else w_bits, a_bits if i < len(segs) - 1 else None)
            for i, s in enumerate(segs)}


def _check_assignment(segs, assignment):
    names = [s.name for s in segs]
    unknown = [k for k in assignment if k not in names]
    if unknown:
        raise HwgenError(f"assignment: layer {unknown[0]!r} is not in the model; layers are {', '.join(names)}")
    missing = [n for n in names if n not in assignment]
    if missing:
        raise HwgenError(f"assignment: layer {missing[0]} has no bit widths; every layer needs (w_bits, a_bits)"
                         + ("" if not any(isinstance(s, Join) for s in segs) else ", every add (None, a_bits)"))
    for s in segs:
        pair = assignment[s.name]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            what = "(None, a_bits)" if isinstance(s, Join) else "(w_bits, a_bits)"
            raise HwgenError(f"layer {s.name}: bit widths must be a pair {what}, not {pair!r}")
        w, a = pair
        if isinstance(s, Join):
            if w is not None:
                raise HwgenError(f"layer {s.name}: weight bits must be None (a residual add has no weights), not {w!r}")
            check_bits("activation", a, s.name)
            continue
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


def _act_quant(act_kind, act, a_bits, po2=False):
    """The quantiser after a layer: bipolar at 1 bit, QuantReLU/QuantHardTanh, or a signed QuantIdentity;
    ``po2``: with a power-of-two scale (bipolar's is 1)."""
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryActPerTensorConst

    if a_bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    if po2:
        return _po2_act_quant(act_kind, act, a_bits)
    if act_kind == "relu":
        return qnn.QuantReLU(bit_width=a_bits, return_quant_tensor=True)
    if act_kind == "hardtanh":
        return qnn.QuantHardTanh(bit_width=a_bits, min_val=act.min_val, max_val=act.max_val, return_quant_tensor=True)
    return qnn.QuantIdentity(bit_width=a_bits, return_quant_tensor=True)


def _po2_act_quant(act_kind, act, a_bits):
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
    from brevitas.quant.base import IntQuant, ParamMinMaxInitScaling, PerTensorPoTScaling8bit
    from brevitas.quant.solver.act import ActQuantSolver

    class Int8ActPerTensorFixedPointMinMaxInit(IntQuant, ParamMinMaxInitScaling, PerTensorPoTScaling8bit,
                                               ActQuantSolver):
        pass

    if act_kind == "relu":
        return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True)
    if act_kind == "hardtanh":
        lo, hi = (act.min_val, act.max_val) if act is not None else (-1.0, 1.0)
        return qnn.QuantHardTanh(act_quant=Int8ActPerTensorFixedPointMinMaxInit, bit_width=a_bits, min_val=lo,
                                 max_val=hi, return_quant_tensor=True)
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True)


def _avg_pool(seg, pool, a_bits):
    """A TruncAvgPool2d: the integer window sum shifted back to the ``a_bits`` of the activation it averages."""
    import brevitas.nn as qnn

    if a_bits is None or a_bits == 1:
        raise HwgenError(f"layer {seg.name}: AvgPool2d needs activation bits 2..8 before it, not {a_bits}")
    if pool.padding not in (0, (0, 0)) or pool.ceil_mode:
        raise HwgenError(f"layer {seg.name}: AvgPool2d with padding {pool.padding} / ceil_mode={pool.ceil_mode} is "
                         "not supported; accepted: padding 0, ceil_mode False")
    return qnn.TruncAvgPool2d(pool.kernel_size, pool.stride, bit_width=a_bits, return_quant_tensor=True)


def _quant_segment(seg, w_bits, a_bits, po2=False):
    mods = [_quant_layer(seg.layer, w_bits)]
    if seg.norm is not None:
        mods.append(copy.deepcopy(seg.norm[1]))
    if a_bits is not None:
        mods.append(_act_quant(seg.act_kind, seg.act and seg.act[1], a_bits, po2))
    return mods + _quant_after(seg, a_bits)


def _quant_after(seg, a_bits):
    import torch.nn as nn
    return [_avg_pool(seg, m, a_bits) if isinstance(m, nn.AvgPool2d) else copy.deepcopy(m) for _, m in seg.after]


def _quant_modules(segs, assignment):
    """The Brevitas modules of ``segs`` in order, each Residual's body and add in a ``QuantResidual``."""
    import torch.nn as nn
    po2 = power_of_two(segs)
    in_body = {n for s in segs if isinstance(s, Join) for n in s.body}
    mods, body = [], []
    for s in segs:
        w, a = assignment[s.name]
        if isinstance(s, Join):
            quant = _act_quant(s.act_kind, None, a, po2=True)
            mods.append(_quant_residual_class()(nn.Sequential(*body), quant))
            mods += _quant_after(s, a)
            body = []
            continue
        (body if s.name in in_body else mods).extend(_quant_segment(s, w, a, s.name in po2))
    return mods


def quantize(float_model, assignment, in_bits=4):
    """A Brevitas ``nn.Sequential`` computing ``float_model`` at the per-layer bit widths of ``assignment``.

    ``assignment``: ``{layer name: (w_bits, a_bits)}`` for every name of :func:`quant_layers`
    (``(None, a_bits)`` for a residual add).
    The input (assumed in [0, 1]) goes through an unsigned ``in_bits``-bit QuantIdentity.  Float
    weights, biases and BatchNorm state are copied; weights use Brevitas' per-tensor max-abs scale
    (narrow range) from 2 bits, sign × mean |W| at 1 bit.  The result is in the float model's
    training mode and exports with :func:`hwgen.export_brevitas`.
    """
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import Uint8ActPerTensorFixedPoint, Uint8ActPerTensorFloat

    head, segs = segments(float_model)
    _check_assignment(segs, assignment)
    if isinstance(in_bits, bool) or not isinstance(in_bits, int) or not 2 <= in_bits <= 8:
        raise HwgenError(f"input: in_bits must be 2..8, not {in_bits!r}")
    in_quant = Uint8ActPerTensorFixedPoint if None in power_of_two(segs) else Uint8ActPerTensorFloat
    mods = [qnn.QuantIdentity(act_quant=in_quant, bit_width=in_bits, return_quant_tensor=True)]
    mods += [copy.deepcopy(m) for _, m in head]
    if not any(isinstance(s, Join) for s in segs):
        for s in segs:
            mods += _quant_segment(s, *assignment[s.name])
    else:
        mods += _quant_modules(segs, assignment)
    return nn.Sequential(*mods).train(float_model.training)
