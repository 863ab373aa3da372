"""A float PyTorch model read as *segments*: the quantisable layers hwgen builds, in forward order.

The float model is an ``nn.Sequential`` (nested ones are flattened) of ``Linear``, ``Conv2d``,
``BatchNorm1d/2d``, ``ReLU``, ``Hardtanh``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``, ``Dropout``,
``Identity`` and :class:`Residual` blocks; :func:`segments` names each Linear/Conv2d (``fc0``,
``conv0``, ``dw0`` …, as ``hwgen build`` names its layers) with the modules that follow it, and each
residual add (``add0`` …).  :mod:`hwgen.mixed.quantize` turns the segments into a Brevitas model at a
bit-width assignment; see there for the rules.
"""

from dataclasses import dataclass, field

from ..errors import HwgenError

__all__ = ["segments", "quant_layers", "power_of_two", "check_bits", "Segment", "Join", "BITS", "RESIDUAL_ACTS"]


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

        Residual.__module__, Residual.__qualname__ = "hwgen.mixed.quantize", "Residual"   # picklable, where it always was
        _RESIDUAL["float"] = Residual
    return _RESIDUAL["float"]


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
