"""An existing Brevitas model → the float model and bit widths :mod:`hwgen.mixed.quantize` starts from.

:func:`to_float` reads a Brevitas ``nn.Sequential`` (nested ones are walked) of
``QuantIdentity``, ``QuantLinear``, ``QuantConv2d``, ``QuantReLU``, ``QuantHardTanh``,
``TruncAvgPool2d`` and plain ``BatchNorm1d/2d``, ``MaxPool2d``, ``Flatten``,
``Dropout``, ``ReLU``, ``Hardtanh``, ``Identity``, and returns a :class:`Start`: the
float ``nn.Sequential`` that :func:`~hwgen.mixed.quantize.segments` accepts, the
assignment ``{layer name: (w_bits, a_bits)}`` the Brevitas model is at (layer names as
:func:`~hwgen.mixed.quantize.quant_layers` gives them: ``fc0``, ``conv0``, ``dw0`` …)
and the bits of its input quantiser.

The mapping, module by module (float modules keep their place and dotted path, so
every error names the path in the Brevitas model):

* ``QuantLinear``/``QuantConv2d`` → ``nn.Linear``/``nn.Conv2d`` with the same float
  weight and bias tensors (copied) and the same stride/padding/dilation/groups; the
  weight bits become the layer's ``w_bits`` (a binary weight quantiser: 1).
* ``QuantReLU`` → ``nn.ReLU``; ``QuantHardTanh`` → ``nn.Hardtanh(min_val, max_val)``;
  ``QuantIdentity`` → dropped.  The one enabled activation quantiser between a layer
  and the next gives the layer's ``a_bits`` (a binary sign quantiser: 1); the last layer
  may have none (``a_bits = None``: float logits).  It may follow MaxPool2d/Flatten/
  Dropout (they commute with it; ``quantize`` puts it before them).  A model ``quantize``
  made at ``a_bits = 1`` reads back without the ReLU/Hardtanh the sign replaced, which
  quantises to the same model.
* ``TruncAvgPool2d`` → ``nn.AvgPool2d`` with its window; BatchNorm (with its running
  statistics), ``MaxPool2d``, ``Flatten``, ``Dropout``, ``ReLU``, ``Hardtanh`` and
  ``Identity`` are deep-copied.
* The ``QuantIdentity`` before the first layer is the input quantiser: unsigned,
  2..8 bits, like the one :func:`~hwgen.mixed.quantize.quantize` makes.

What :func:`~hwgen.mixed.quantize.quantize` cannot rebuild is a one-line
:class:`~hwgen.errors.HwgenError` naming the module: per-channel or asymmetric weight
scaling, float (unquantised) weights, quantised layer inputs/outputs inside
``QuantLinear``/``QuantConv2d``, a layer whose output is not quantised before the
next layer, two activation quantisers after one layer, 1-bit integer (non-bipolar)
quantisers, a bipolar quantiser after a ReLU, an unsigned ``QuantIdentity`` with no
ReLU before it, a signed or 1-bit input quantiser, and any other module type.

What the assignment format does not carry is not kept: ``quantize`` uses Brevitas'
default quantisers (per-tensor float scales, max-abs weight scaling, float biases), so
power-of-two scales, narrow-range activations, bias quantisers, a ``TruncAvgPool2d``
bit width other than its input's, and a signed quantiser after a ReLU (``quantize``
makes it an unsigned ``QuantReLU``) change when the model is quantised again.
:func:`copy_scales` carries the learned activation scales across to a model
``quantize`` made wherever the two quantisers are alike.
"""

import copy
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import HwgenError
from .quantize import check_bits, segments

__all__ = ["Start", "to_float", "copy_scales"]

_ACCEPTED = ("QuantIdentity, QuantLinear, QuantConv2d, QuantReLU, QuantHardTanh, TruncAvgPool2d, BatchNorm1d/2d, "
             "MaxPool2d, Flatten, Dropout, ReLU, Hardtanh, Identity or an nn.Sequential of them")


@dataclass
class Start:
    """A Brevitas model read back as a starting point for :func:`~hwgen.mixed.quantize.quantize`.

    ``model``: the float ``nn.Sequential``; ``assignment``: ``{layer name: (w_bits, a_bits)}``;
    ``in_bits``: the input quantiser's bits.  ``quantize(start.model, start.assignment,
    start.in_bits)`` rebuilds the Brevitas model (see the module docstring for what changes).
    """

    model: object
    assignment: dict
    in_bits: int


@dataclass
class _Seg:
    """One QuantLinear/QuantConv2d and what follows it up to the next one, as read from the Brevitas model."""

    path: str
    layer: object
    w_bits: object = None
    act: tuple = None       # (path, "relu" | "hardtanh") of the activation function, float or quantised
    quant: tuple = None     # (path, module) of the activation quantiser
    a_bits: object = None


def _name(m):
    return type(m).__name__


def _leaves(module, prefix=""):
    """(dotted path, module) of every leaf in forward order, through nested nn.Sequential."""
    import torch.nn as nn
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, path + ".")
        else:
            yield path, child


def _bits(value):
    """A Brevitas bit width (a tensor) as an int when it is whole, else as the float it is."""
    v = float(value)
    return int(v) if v.is_integer() else v


def _act_proxy(m):
    """The enabled activation quantiser proxy of a QuantIdentity/QuantReLU/QuantHardTanh, or None."""
    aq = getattr(m, "act_quant", None)
    return aq if aq is not None and aq.is_quant_enabled else None


def _is_binary(tensor_quant):
    return "Binary" in type(tensor_quant).__name__


def _tensor_quant(aq):
    return aq.fused_activation_quant_proxy.tensor_quant


def _hardtanh_range(m):
    """(min_val, max_val) of a QuantHardTanh: its quantiser's clamp range, or its float Hardtanh's."""
    import torch.nn as nn
    aq = m.act_quant
    if aq.is_quant_enabled:
        inj = aq.quant_injector
        return float(inj.min_val), float(inj.max_val)
    impl = aq.fused_activation_quant_proxy.activation_impl
    return (float(impl.min_val), float(impl.max_val)) if isinstance(impl, nn.Hardtanh) else (-1.0, 1.0)


def _float_layer(path, m):
    """The nn.Linear/nn.Conv2d twin of a QuantLinear/QuantConv2d (float weights copied) and its weight bits."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn

    what = f"module {path} ({_name(m)})"
    if not m.weight_quant.is_quant_enabled:
        raise HwgenError(f"{what}: weights must be quantised, not float (weight_quant=None)")
    for io in ("input", "output"):
        if getattr(m, f"{io}_quant").is_quant_enabled:
            raise HwgenError(f"{what}: {io}_quant must be None, not enabled; accepted: a QuantIdentity/QuantReLU/"
                             f"QuantHardTanh {'before' if io == 'input' else 'after'} the layer")
    with torch.no_grad():
        qw = m.quant_weight()
    if qw.scale.numel() > 1:
        raise HwgenError(f"{what}: weight scaling must be per-tensor, not per-channel ({qw.scale.numel()} scales)")
    if qw.zero_point is not None and bool((qw.zero_point != 0).any()):
        raise HwgenError(f"{what}: weights must have zero point 0, not {float(qw.zero_point.flatten()[0]):g} "
                         "(asymmetric)")
    w_bits = _bits(qw.bit_width)
    if w_bits == 1 and not _is_binary(m.weight_quant.tensor_quant):
        raise HwgenError(f"{what}: 1-bit weights must be bipolar (a binary quantiser such as "
                         "SignedBinaryWeightPerTensorConst), not a 1-bit integer quantiser")
    w, bias = m.weight, m.bias
    kw = {"bias": bias is not None, "device": w.device, "dtype": w.dtype}
    if isinstance(m, qnn.QuantLinear):
        f = nn.Linear(m.in_features, m.out_features, **kw)
    else:
        f = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                      dilation=m.dilation, groups=m.groups, padding_mode=m.padding_mode, **kw)
    with torch.no_grad():
        f.weight.copy_(w)
        if bias is not None:
            f.bias.copy_(bias)
    return f, w_bits


def _read(model):
    """(input quantiser (path, module), [_Seg], {path: float module or None}) of a Brevitas model."""
    import brevitas.nn as qnn
    import torch.nn as nn

    if not isinstance(model, nn.Sequential):
        raise HwgenError(f"model: must be an nn.Sequential, not {_name(model)}")
    plain = (nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.ReLU, nn.Hardtanh, nn.Identity)
    inq, segs, out = None, [], {}
    for path, m in _leaves(model):
        what = f"module {path} ({_name(m)})"
        seg = segs[-1] if segs else None
        if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d)):
            if inq is None:
                raise HwgenError(f"{what}: the input must be quantised by a QuantIdentity before the first layer, "
                                 "not fed in float")
            if seg is not None and seg.quant is None:
                raise HwgenError(f"module {seg.path} ({_name(seg.layer)}): its output must be quantised before the "
                                 f"next layer ({path}), not left float; accepted: a QuantReLU, QuantHardTanh or "
                                 "QuantIdentity after it")
            out[path], w_bits = _float_layer(path, m)
            segs.append(_Seg(path, m, w_bits))
            continue
        quant_types = (qnn.QuantIdentity, qnn.QuantReLU, qnn.QuantHardTanh, qnn.TruncAvgPool2d)
        if not isinstance(m, quant_types) and (not isinstance(m, plain) or type(m).__module__.startswith("brevitas")):
            raise HwgenError(f"{what}: must be one of {_ACCEPTED}, not {_name(m)}")
        aq = _act_proxy(m) if isinstance(m, (qnn.QuantIdentity, qnn.QuantReLU, qnn.QuantHardTanh)) else None
        if seg is None:                                  # before the first layer
            if isinstance(m, qnn.QuantIdentity):
                if aq is None:
                    out[path] = None                     # a disabled quantiser is an identity
                    continue
                if inq is not None:
                    raise HwgenError(f"{what}: the input must be quantised once, not again after module {inq[0]}")
                in_bits = _bits(aq.bit_width())
                if isinstance(in_bits, bool) or not isinstance(in_bits, int) or not 2 <= in_bits <= 8:
                    raise HwgenError(f"{what}: input bits must be 2..8, not {in_bits}")
                _check_symmetric(what, aq)
                if aq.is_signed:
                    raise HwgenError(f"{what}: the input quantiser must be unsigned (quantize feeds inputs in [0, 1] "
                                     "through an unsigned QuantIdentity), not signed")
                inq, out[path] = (path, m), None
                continue
            if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)):
                raise HwgenError(f"{what}: must be a QuantIdentity, Flatten, Dropout or Identity before the first "
                                 f"layer, not {_name(m)}")
            out[path] = copy.deepcopy(m)
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.Hardtanh, qnn.QuantReLU, qnn.QuantHardTanh)):
            if seg.quant is not None:
                raise HwgenError(f"{what}: must come before the activation quantiser at {seg.quant[0]}, not after it")
        if isinstance(m, (nn.ReLU, qnn.QuantReLU)):
            seg.act = (path, "relu")
            out[path] = nn.ReLU()
        elif isinstance(m, (nn.Hardtanh, qnn.QuantHardTanh)):
            seg.act = (path, "hardtanh")
            out[path] = copy.deepcopy(m) if isinstance(m, nn.Hardtanh) else nn.Hardtanh(*_hardtanh_range(m))
        elif isinstance(m, qnn.QuantIdentity):
            out[path] = None
        elif isinstance(m, qnn.TruncAvgPool2d):
            if seg.quant is None or seg.a_bits == 1:
                found = "float" if seg.quant is None else "1-bit bipolar"
                raise HwgenError(f"{what}: its input must be quantised to 2..8 bits by an activation quantiser before "
                                 f"it, not {found}")
            if m.ceil_mode or m.divisor_override is not None:
                raise HwgenError(f"{what}: ceil_mode must be False and divisor_override None, not {m.ceil_mode} and "
                                 f"{m.divisor_override}")
            out[path] = nn.AvgPool2d(m.kernel_size, m.stride)
        else:
            out[path] = copy.deepcopy(m)
        if aq is not None:
            _quantiser(seg, path, m, aq)
    if not segs:
        raise HwgenError("model: has no QuantLinear or QuantConv2d layer; accepted: at least one")
    last = segs[-1]
    if last.quant is None and last.act is not None:
        raise HwgenError(f"module {last.path} ({_name(last.layer)}): its output must be quantised after the "
                         f"{'ReLU' if last.act[1] == 'relu' else 'Hardtanh'} at {last.act[0]}, not left float; "
                         "accepted: a QuantReLU, QuantHardTanh or QuantIdentity after it")
    return inq, segs, out


def _check_symmetric(what, aq):
    zp = aq.zero_point()
    if zp is not None and bool((zp != 0).any()):
        raise HwgenError(f"{what}: the activation quantiser must have zero point 0, not {float(zp.flatten()[0]):g} "
                         "(asymmetric)")


def _quantiser(seg, path, m, aq):
    """Record the enabled activation quantiser ``m`` (at ``path``) as ``seg``'s, checking it can be rebuilt."""
    import brevitas.nn as qnn

    what = f"module {path} ({_name(m)})"
    if seg.quant is not None:
        raise HwgenError(f"{what}: the output of layer {seg.path} must be quantised once, not again after "
                         f"module {seg.quant[0]}")
    _check_symmetric(what, aq)
    a_bits = _bits(aq.bit_width())
    if a_bits == 1:
        if not (isinstance(m, qnn.QuantIdentity) and _is_binary(_tensor_quant(aq))):
            raise HwgenError(f"{what}: 1-bit activations must be bipolar (a QuantIdentity with a binary quantiser "
                             f"such as SignedBinaryActPerTensorConst), not a {_name(m)} with a 1-bit integer quantiser")
        if seg.act is not None and seg.act[1] == "relu":
            raise HwgenError(f"{what}: a bipolar quantiser must follow the layer, its BatchNorm or a Hardtanh, not "
                             f"the ReLU at {seg.act[0]}")
    elif isinstance(m, qnn.QuantIdentity) and not aq.is_signed and (seg.act is None or seg.act[1] != "relu"):
        raise HwgenError(f"{what}: an activation quantiser with no ReLU before it must be signed, not unsigned; "
                         "accepted: a QuantReLU, or a ReLU before the QuantIdentity")
    seg.quant, seg.a_bits = (path, m), a_bits


def _rebuild(module, out, prefix=""):
    """``module``'s nested nn.Sequential structure with every leaf replaced by ``out[path]`` (None: dropped)."""
    import torch.nn as nn
    children = OrderedDict()
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            children[name] = _rebuild(child, out, path + ".")
        elif out[path] is not None:
            children[name] = out[path]
    return nn.Sequential(children)


def to_float(model):
    """A Brevitas ``nn.Sequential`` → :class:`Start` (float model, assignment, input bits).

    The float model keeps the Brevitas model's module names (dropped quantisers leave gaps)
    and training mode.  Raises :class:`~hwgen.errors.HwgenError` on what
    :func:`~hwgen.mixed.quantize.quantize` cannot rebuild (see the module docstring).
    """
    inq, segs, out = _read(model)
    fmodel = _rebuild(model, out).train(model.training)
    _, fsegs = segments(fmodel)
    assert [s.path for s in fsegs] == [s.path for s in segs]
    assignment = {}
    for s, f in zip(segs, fsegs):
        check_bits("weight", s.w_bits, f.name)
        if s.a_bits is not None:
            check_bits("activation", s.a_bits, f.name)
        assignment[f.name] = (s.w_bits, s.a_bits)
    return Start(fmodel, assignment, _bits(inq[1].act_quant.bit_width()))


def _quantisers(model):
    """[(path, module)] of a Brevitas model's input quantiser then every layer's activation quantiser (or None)."""
    inq, segs, _ = _read(model)
    return [inq] + [s.quant for s in segs]


def _signature(aq):
    """What must agree for two activation quantisers' learned state to mean the same."""
    tq = _tensor_quant(aq)
    shapes = [(k, tuple(v.shape)) for k, v in list(tq.named_parameters()) + list(tq.named_buffers())]
    return ([type(m).__name__ for m in tq.modules()], shapes, float(aq.bit_width()), bool(aq.is_signed),
            bool(aq.is_narrow_range))


def copy_scales(source, target):
    """Copy the learned activation-quantiser state of Brevitas model ``source`` into ``target``.

    ``target`` is typically ``quantize(to_float(source).model, assignment, in_bits)``.  The
    input quantisers and each layer's activation quantiser are paired in forward order; a pair's
    scale parameters, statistics buffers and collection counters are copied when the two
    quantisers are alike (same scaling implementation, bits, signedness and range), so the copy
    computes what the source computes.  Returns the paths in ``target`` that were copied; the
    others (e.g. at other bits) keep their own state.
    """
    import torch

    names = [list(to_float(m).assignment) for m in (source, target)]
    if names[0] != names[1]:
        raise HwgenError(f"target: must have the source's layers {', '.join(names[0])}, not {', '.join(names[1])}")
    src, dst = _quantisers(source), _quantisers(target)
    copied = []
    for s, d in zip(src, dst):
        if s is None or d is None:
            continue
        sa, da = s[1].act_quant, d[1].act_quant
        if _signature(sa) != _signature(da):
            continue
        st, dt = _tensor_quant(sa), _tensor_quant(da)
        with torch.no_grad():
            for (_, sv), (_, dv) in zip(list(st.named_parameters()) + list(st.named_buffers()),
                                        list(dt.named_parameters()) + list(dt.named_buffers())):
                dv.copy_(sv)
        for sm, dm in zip(st.modules(), dt.modules()):
            if hasattr(sm, "counter"):
                dm.counter = sm.counter
        copied.append(d[0])
    return copied
