"""Lowering of branch joins: Add/Sub of two quantised tensors, Concat along channels.

An add re-aligns both integer inputs to a common grid: with per-tensor scales
``s_a`` and ``s_b`` (binary floats, so their ratio is an exact rational
``p/q``), ``s_a·a + s_b·b = u·(p·a + q·b)`` with ``u = s_a/p = s_b/q``; the
integer sum ``p·a + q·b`` is exact and the next quantiser becomes thresholds on it.
"""

from fractions import Fraction

import numpy as np

from ..dataflow import AddStreams, Concat
from ..errors import UnsupportedError
from .quant import _attr
from .values import Acc, IntTensor

__all__ = ["lower_add_streams", "lower_concat", "MAX_MULTIPLIER"]

MAX_MULTIPLIER = 1 << 32     # float32 scales: ratios of 24-bit mantissas times a power of two


def _scalar(v, what, where):
    v = np.asarray(v, dtype=np.float64)
    if v.size != 1:
        raise UnsupportedError(f"{where}: the {what} of both inputs must be per tensor, not per channel")
    return float(v.reshape(()))


def _int_input(x, where):
    if isinstance(x, Acc):
        raise UnsupportedError(f"{where}: both inputs must be quantised (put a QuantIdentity on each branch), not a raw accumulator")
    if not isinstance(x, IntTensor):
        raise UnsupportedError(f"{where}: inputs must be quantised tensors, not {type(x).__name__}")
    if x.perm is not None:
        raise UnsupportedError(f"{where}: adding flattened feature maps is not supported")
    return x


def lower_add_streams(ctx, node, a, b, negate_b=False):
    where = f"node {node.name} ({node.op_type})"
    a, b = _int_input(a, where), _int_input(b, where)
    if tuple(a.shape) != tuple(b.shape):
        raise UnsupportedError(f"{where}: both inputs must have the same shape, not {a.shape} and {b.shape}")
    sa, sb = _scalar(a.scale, "scale", where), _scalar(b.scale, "scale", where)
    za, zb = _scalar(a.zero_point, "zero point", where), _scalar(b.zero_point, "zero point", where)
    r = Fraction(sa) / Fraction(sb)
    p, q = r.numerator, r.denominator
    if p > MAX_MULTIPLIER or q > MAX_MULTIPLIER:
        raise UnsupportedError(f"{where}: the input scales {sa:g} and {sb:g} have no common integer grid with "
                               f"multipliers up to {MAX_MULTIPLIER} (ratio {p}/{q}); accepted: scales whose ratio is a small fraction, e.g. powers of two or equal scales")
    if negate_b:
        q = -q
    unit = sa / p
    shape = tuple(a.ir_shape)
    layer = AddStreams(ctx.new_name("add"), shape=shape, in_dt=a.dt, in_dt_b=b.dt, ka=int(p), kb=int(q), out_dt=None)
    ctx.add_layer(layer, node.name, [a, b], open=True)
    lo, hi = layer.acc_range
    C = a.channels
    ops = [{"op": "mul", "value": unit}]
    offset = -(sa * za + (-sb if negate_b else sb) * zb)
    if offset != 0:
        ops.append({"op": "add", "value": offset})
    ctx.values[node.output[0]] = Acc(tuple(a.shape), layer, np.full(C, lo, dtype=np.int64), np.full(C, hi, dtype=np.int64), ops, node.name)


def lower_concat(ctx, node):
    where = f"node {node.name} (Concat)"
    xs = [ctx.get(n, node) for n in node.input]
    xs = [_int_input(x, where) for x in xs]
    axis = int(_attr(node, "axis", 1))
    rank = len(xs[0].shape)
    if axis % rank != 1:
        raise UnsupportedError(f"{where}: only concatenation along channels (axis 1) is supported, not axis {axis}")
    for x in xs[1:]:
        if x.dt != xs[0].dt:
            raise UnsupportedError(f"{where}: all inputs must have the same data type, not {xs[0].dt} and {x.dt} (use one shared quantiser)")
        if _scalar(x.scale, "scale", where) != _scalar(xs[0].scale, "scale", where) or \
                _scalar(x.zero_point, "zero point", where) != _scalar(xs[0].zero_point, "zero point", where):
            raise UnsupportedError(f"{where}: all inputs must have the same scale and zero point (use one shared quantiser)")
        if tuple(x.shape[2:]) != tuple(xs[0].shape[2:]):
            raise UnsupportedError(f"{where}: inputs must have the same spatial size")
    chans = tuple(int(x.shape[1]) for x in xs)
    layer = Concat(ctx.new_name("concat"), spatial=tuple(xs[0].ir_shape[:-1]), channels_in=chans, dt=xs[0].dt)
    ctx.add_layer(layer, node.name, xs)
    shape = (xs[0].shape[0], sum(chans)) + tuple(xs[0].shape[2:])
    ctx.values[node.output[0]] = IntTensor(shape, xs[0].dt, xs[0].scale, xs[0].zero_point, layer, node.name)
