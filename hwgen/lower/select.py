"""Lowering of classifier heads: ArgMax (and the ``--topk`` build option) -> LabelSelect.

Selecting the largest scores on integers is exact only when every class's
score is the same increasing function of its integer: a quantised output
(one scale) or a raw accumulator followed by a positive per-tensor scale and
a per-tensor offset.  Anything else (per-channel bias after the last MatMul)
is refused rather than approximated.
"""

import numpy as np

from ..dataflow import LabelSelect
from ..errors import UnsupportedError
from .quant import _attr
from .values import Acc, IntTensor

__all__ = ["lower_argmax", "append_label_select", "scores_are_monotone"]


def scores_are_monotone(x):
    """True when the scores' order is the order of their integers."""
    if isinstance(x, IntTensor):
        return np.asarray(x.scale).size == 1 and np.asarray(x.zero_point).size == 1 and float(np.asarray(x.scale).reshape(())) > 0
    for op in x.ops:
        v = op.get("value", op.get("scale", 1.0))
        if np.ndim(v) != 0 or (op["op"] in ("mul", "div") and v <= 0) or op["op"] not in ("mul", "div", "add", "dequant"):
            return False
        if op["op"] == "dequant" and np.ndim(op.get("zero_point", 0)) != 0:
            return False
    return True


def _materialise(ctx, x, where):
    """The integer stream behind scores ``x`` (an MVAU's raw accumulator for an Acc)."""
    if isinstance(x, IntTensor):
        return x
    base = x.base
    if isinstance(base, IntTensor):
        return base
    ctx.close_layer(base, where, out_dt="raw")
    return IntTensor(tuple(x.shape), base.out_dt, np.float64(1.0), np.float64(0.0), base, where)


def append_label_select(ctx, x, k, where, out):
    if not isinstance(x, (Acc, IntTensor)):
        raise UnsupportedError(f"{where}: top-k needs class scores computed by the accelerator")
    if len(x.shape) == 4 and tuple(x.shape[2:]) != (1, 1) or len(x.shape) not in (2, 4):
        raise UnsupportedError(f"{where}: top-k needs a vector of class scores, not a tensor of shape {x.shape}")
    if not scores_are_monotone(x):
        raise UnsupportedError(f"{where}: the class scores are a different function of each class's integer "
                               "(per-channel scale or bias after the last layer), so selecting them on integers would not be exact; "
                               "accepted: a quantised output (QuantIdentity) or a last layer without bias")
    t = _materialise(ctx, x, where)
    C = int(x.shape[1])
    if not 1 <= k <= C:
        raise UnsupportedError(f"{where}: k={k} must be between 1 and the number of classes {C}")
    layer = LabelSelect(ctx.new_name("topk"), channels=C, k=k, in_dt=t.dt)
    ctx.add_layer(layer, where, t)
    ctx.values[out] = IntTensor((x.shape[0], k), layer.odt, np.float64(1.0), np.float64(0.0), layer, where)
    return layer


def lower_argmax(ctx, node):
    where = f"node {node.name} (ArgMax)"
    x = ctx.get(node.input[0], node)
    if int(_attr(node, "axis", 0)) % len(x.shape) != 1:
        raise UnsupportedError(f"{where}: only ArgMax over the class axis (1) is supported")
    if int(_attr(node, "select_last_index", 0)):
        raise UnsupportedError(f"{where}: select_last_index=1 is not supported; accepted: 0 (ties to the lowest index)")
    append_label_select(ctx, x, 1, where, node.output[0])
