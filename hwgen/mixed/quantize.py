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
from dataclasses import dataclass, field

from ..errors import HwgenError

__all__ = ["quant_layers", "quantize", "uniform", "segments", "Segment", "Join", "BITS"]   # and Residual (lazy)

BITS = range(1, 9)
_ORDER = "layer, BatchNorm, ReLU/Hardtanh, then MaxPool2d/AvgPool2d/Flatten/Dropout/Identity"
_JOIN_ORDER = "Residual, then MaxPool2d/AvgPool2d/Flatten/Dropout/Identity"
_BODY = "Linear, Conv2d, BatchNorm1d/2d, ReLU, Hardtanh, Dropout, Identity"
RESIDUAL_ACTS = ("relu", "hardtanh", None)


@dataclass
class Segment:
    """One Linear/Conv2d layer and the modules up to the next one (``(path, module)`` pairs)."""

    name: str
    path: str
    layer: object
    norm: tuple = None
    act: tuple = None
    after: list = field(default_factory=list)
    source: str = None          # the layer whose quantised output it reads (None: the model input)

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


@dataclass
class Join:
    """The add of a :class:`Residual` block: ``act(skip + body)`` and the quantiser after it."""

    name: str
    path: str
    module: object
    skip: str = None            # the layer whose quantised output is the block input (None: the model input)
    body: list = field(default_factory=list)     # names of the body's layers, in forward order
    after: list = field(default_factory=list)
    conv: bool = False          # a convolutional block (else fully connected)

    @property
    def act_kind(self):
        """``"relu"``, ``"hardtanh"`` or ``None``: the activation function after the add."""
        return self.module.act

    @property
    def sources(self):
        """The producers of the add's two inputs: the skip's, then the body's last layer."""
        return (self.skip, self.body[-1])

    @property
    def quant_point(self):
        return self.module


_RESIDUAL = {}


def _residual_class():
    """:class:`Residual`, made on first use (``import hwgen.mixed`` does not import torch)."""
    if "float" not in _RESIDUAL:
        import torch.nn as nn

        class Residual(nn.Module):
            """``act(x + body(x))``: a residual block of a float model for :func:`quantize`.

            ``body``: an ``nn.Sequential`` of shape-preserving Linear/Conv2d segments (BatchNorm,
            ReLU/Hardtanh; Dropout/Identity); ``act``: ``"relu"``, ``"hardtanh"`` or ``None``."""

            def __init__(self, body, act="relu"):
                super().__init__()
                if not isinstance(body, nn.Sequential):
                    raise HwgenError(f"Residual: body must be an nn.Sequential, not {type(body).__name__}")
                if act not in RESIDUAL_ACTS:
                    raise HwgenError(f"Residual: act must be 'relu', 'hardtanh' or None, not {act!r}")
                self.body, self.act = body, act

            def forward(self, x):
                y = x + self.body(x)
                if self.act == "relu":
                    return nn.functional.relu(y)
                if self.act == "hardtanh":
                    return nn.functional.hardtanh(y)
                return y

            def extra_repr(self):
                return f"act={self.act!r}"

        Residual.__module__, Residual.__qualname__ = __name__, "Residual"       # picklable
        _RESIDUAL["float"] = Residual
    return _RESIDUAL["float"]


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


def _kinds():
    import torch.nn as nn
    return {"layer": (nn.Linear, nn.Conv2d), "norm": (nn.BatchNorm1d, nn.BatchNorm2d),
            "act": (nn.ReLU, nn.Hardtanh),
            "after": (nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity)}


def _leaves(module, prefix=""):
    """(dotted path, module) of every leaf in forward order, through nested nn.Sequential."""
    import torch.nn as nn
    accepted = tuple(t for ts in _kinds().values() for t in ts) + (_residual_class(),)
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, path + ".")
        elif isinstance(child, accepted):
            yield path, child
        else:
            raise HwgenError(f"module {path} ({type(child).__name__}): not supported; accepted: nn.Sequential of "
                             "Linear, Conv2d, BatchNorm1d/2d, ReLU, Hardtanh, MaxPool2d, AvgPool2d, Flatten, Dropout, "
                             "Residual")


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
    """(modules before the first layer, [Segment or Join]) of a float model, in forward order (a
    Residual's body layers, then its :class:`Join`); raises HwgenError on what it cannot map."""
    import torch.nn as nn
    if not isinstance(model, nn.Sequential):
        raise HwgenError(f"model: must be an nn.Sequential, not {type(model).__name__}")
    Residual = _residual_class()
    counters, head, segs, stage = {}, [], [], 0
    for path, m in _leaves(model):
        source = segs[-1].name if segs else None
        if isinstance(m, Residual):
            _check_flattened(path, segs)
            segs += _residual(path, m, counters, source)
            stage = 3
            continue
        if isinstance(m, _kinds()["layer"]):
            segs.append(_new_segment(path, m, counters, source))
            stage = 0
            continue
        if not segs:
            if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)):
                raise HwgenError(f"module {path} ({type(m).__name__}): not supported before the first Linear/Conv2d; "
                                 "accepted: Flatten, Dropout, Identity")
            head.append((path, m))
            continue
        stage = _place(segs[-1], path, m, stage)
    if not segs:
        raise HwgenError("model: has no Linear or Conv2d layer; accepted: at least one")
    if isinstance(segs[-1], Join):
        raise HwgenError(f"model: the last layer must be a Linear or Conv2d, not the Residual at {segs[-1].path} "
                         f"({segs[-1].name})")
    return head, segs


def _new_segment(path, m, counters, source):
    prefix = _layer_prefix(path, m)
    seg = Segment(f"{prefix}{counters.get(prefix, 0)}", path, m, source=source)
    counters[prefix] = counters.get(prefix, 0) + 1
    return seg


def _place(seg, path, m, stage):
    """Put BatchNorm/activation/pooling module ``m`` into ``seg`` (the current segment or join); the new stage."""
    kinds = _kinds()
    kind = next(k for k in ("norm", "act", "after") if isinstance(m, kinds[k]))
    rank = ("norm", "act", "after").index(kind) + 1
    if rank < stage or (rank == stage and kind != "after"):
        order = _JOIN_ORDER if isinstance(seg, Join) else _ORDER
        raise HwgenError(f"layer {seg.name}: {type(m).__name__} at {path} is out of order; accepted: {order}")
    if kind == "after":
        seg.after.append((path, m))
    else:
        setattr(seg, kind, (path, m))
    return rank


def _check_flattened(path, segs):
    """Refuse a Residual whose input is a flattened feature map (hwgen adds only unflattened streams)."""
    import torch.nn as nn
    if not segs:
        return
    prev = segs[-1]
    conv = isinstance(prev.layer, nn.Conv2d) if isinstance(prev, Segment) else prev.conv
    flat = [p for p, m in prev.after if isinstance(m, nn.Flatten)]
    if conv and flat:
        raise HwgenError(f"module {path} (Residual): its input must be a feature map or a Linear layer's output, "
                         f"not the flattened feature map of {prev.name} (Flatten at {flat[0]})")


def _residual(path, block, counters, skip):
    """The body's segments and the :class:`Join` of Residual ``block`` at ``path``."""
    import torch.nn as nn
    kinds, Residual = _kinds(), _residual_class()
    body, stage = [], 0
    for p, m in _leaves(block.body, f"{path}.body."):
        if isinstance(m, Residual):
            raise HwgenError(f"module {p} (Residual): a Residual inside another Residual's body is not supported; "
                             "accepted: Residual blocks in the top-level nn.Sequential")
        if isinstance(m, kinds["layer"]):
            body.append(_new_segment(p, m, counters, body[-1].name if body else skip))
            stage = 0
            continue
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Flatten)) or not body:
            where = "inside a Residual body" if body else "at the start of a Residual body"
            raise HwgenError(f"module {p} ({type(m).__name__}): not supported {where}; accepted: {_BODY}, "
                             "starting with Linear or Conv2d")
        stage = _place(body[-1], p, m, stage)
    if not body:
        raise HwgenError(f"module {path} (Residual): the body must have a Linear or Conv2d layer, not none")
    _check_shape_preserving(path, body)
    join = Join(f"add{counters.get('add', 0)}", path, block, skip, [s.name for s in body],
                conv=isinstance(body[0].layer, nn.Conv2d))
    counters["add"] = counters.get("add", 0) + 1
    return body + [join]


def _check_shape_preserving(path, body):
    import torch.nn as nn
    for s in body:
        m = s.layer
        if isinstance(m, nn.Conv2d):
            k = tuple(m.kernel_size)
            same = tuple((x - 1) // 2 for x in k)
            pad = m.padding if isinstance(m.padding, tuple) else (m.padding,) * 2
            if tuple(m.stride) != (1, 1) or any(x % 2 == 0 for x in k) or (tuple(pad) != same and m.padding != "same"):
                raise HwgenError(f"layer {s.name}: a Residual body must keep the feature map's size: stride must be 1 "
                                 f"with an odd kernel and padding (kernel - 1) / 2 = {list(same)}, not stride "
                                 f"{list(m.stride)}, kernel {list(k)}, padding {list(pad)}")
    first, last = body[0].layer, body[-1].layer
    n_in = first.in_features if isinstance(first, nn.Linear) else first.in_channels
    n_out = last.out_features if isinstance(last, nn.Linear) else last.out_channels
    if n_in != n_out or isinstance(first, nn.Linear) != isinstance(last, nn.Linear):
        what = "features" if isinstance(first, nn.Linear) else "channels"
        raise HwgenError(f"module {path} (Residual): the body's output must have the {n_in} {what} of its input, "
                         f"not {n_out} ({type(last).__name__} {body[-1].name})")


def quant_layers(model):
    """Names of the float model's quantisable layers (``["fc0", "fc1", …]``), in forward order."""
    return [s.name for s in segments(model)[1]]


def uniform(model, w_bits, a_bits):
    """The assignment giving every layer ``(w_bits, a_bits)``; the last layer's output stays unquantised;
    a residual add gets ``(None, a_bits)``."""
    segs = segments(model)[1]
    return {s.name: (None if isinstance(s, Join) else w_bits, a_bits if i < len(segs) - 1 else None)
            for i, s in enumerate(segs)}


def power_of_two(segs):
    """Names of the layers (``None``: the input quantiser) whose activation quantiser has a power-of-two
    scale: those feeding a residual add, and the adds'."""
    out = set()
    for s in segs:
        if isinstance(s, Join):
            out |= {s.name, *s.sources}
    return out


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
