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
from .context import channel_vector
from .quant import _attr, finish_segment, int_to_acc
from .values import Acc, IntTensor, PendingConcat

__all__ = ["lower_add_streams", "lower_concat", "requantise_concat", "MAX_MULTIPLIER"]

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


def _equal_types(xs):
    """Do the concat's inputs all hold integers of one type, scale and zero point (today's plain Concat)?"""
    if not all(isinstance(x, IntTensor) for x in xs):
        return False
    a = xs[0]
    return all(np.asarray(v).size == 1 for x in xs for v in (x.scale, x.zero_point)) and \
        all(x.dt == a.dt and float(np.asarray(x.scale).reshape(())) == float(np.asarray(a.scale).reshape(())) and
            float(np.asarray(x.zero_point).reshape(())) == float(np.asarray(a.zero_point).reshape(())) for x in xs[1:])


def _part(x, where):
    """A concat input as an Acc the next quantiser requantises."""
    if isinstance(x, IntTensor):
        x = int_to_acc(x)
    if not isinstance(x, Acc):
        raise UnsupportedError(f"{where}: inputs must be quantised tensors or accumulators, not {type(x).__name__}")
    if getattr(x.base, "perm", None) is not None:
        raise UnsupportedError(f"{where}: concatenating flattened feature maps is not supported")
    return x


def lower_concat(ctx, node):
    """Inputs of one type and scale: a Concat layer.  Otherwise the concatenation waits for the next
    quantiser (a :class:`PendingConcat`): quant(cat(a, b)) = cat(quant(a), quant(b)), each part
    requantised with its own channels' thresholds (:func:`requantise_concat`)."""
    where = f"node {node.name} (Concat)"
    xs = [ctx.get(n, node) for n in node.input]
    axis = int(_attr(node, "axis", 1))
    rank = len(xs[0].shape) if hasattr(xs[0], "shape") else 0
    if axis % max(rank, 1) != 1:
        raise UnsupportedError(f"{where}: only concatenation along channels (axis 1) is supported, not axis {axis}")
    if _equal_types(xs):
        for x in xs:
            _int_input(x, where)
        for x in xs[1:]:
            if tuple(x.shape[2:]) != tuple(xs[0].shape[2:]):
                raise UnsupportedError(f"{where}: inputs must have the same spatial size")
        chans = tuple(int(x.shape[1]) for x in xs)
        layer = Concat(ctx.new_name("concat"), spatial=tuple(xs[0].ir_shape[:-1]), channels_in=chans, dt=xs[0].dt)
        ctx.add_layer(layer, node.name, xs)
        shape = (xs[0].shape[0], sum(chans)) + tuple(xs[0].shape[2:])
        ctx.values[node.output[0]] = IntTensor(shape, xs[0].dt, xs[0].scale, xs[0].zero_point, layer, node.name)
        return
    parts = []
    for x in xs:        # a pending concat among the inputs: its parts join this one
        parts.extend(x.parts if isinstance(x, PendingConcat) else [_part(x, where)])
    for p in parts[1:]:
        if len(p.shape) != len(parts[0].shape) or tuple(p.shape[2:]) != tuple(parts[0].shape[2:]):
            raise UnsupportedError(f"{where}: inputs must have the same spatial size")
    shape = (parts[0].shape[0], sum(int(p.shape[1]) for p in parts)) + tuple(parts[0].shape[2:])
    ctx.values[node.output[0]] = PendingConcat(shape, parts, node.name, requantise_concat)


def pending_elementwise(pending, ops):
    """``pending`` after the per-channel element-wise ``ops`` (scalars or one value per channel of the
    concatenation): each part takes them with the values of its own channels."""
    parts, c0 = [], 0
    for p in pending.parts:
        c = int(p.shape[1])
        mine = [{k: (v[c0:c0 + c] if np.ndim(v) == 1 else v) for k, v in op.items()} for op in ops]
        parts.append(Acc(tuple(p.shape), p.base, p.lo, p.hi, list(p.ops) + mine, p.node))
        c0 += c
    return PendingConcat(tuple(pending.shape), parts, pending.node, pending.finish)


def _channels(v, shape, c0, c, what):
    """The quantiser parameter ``v`` (broadcast to ``shape``) for channels ``c0 … c0+c−1``."""
    v = channel_vector(v, shape, what)
    if np.ndim(v) == 0:
        return v
    return np.asarray(v)[c0:c0 + c].reshape((1, c) + (1,) * (len(shape) - 2))


def requantise_concat(ctx, node, pending, q, dt, out_scale=None, out_zp=None):
    """``quant(cat(parts))`` as ``cat(quant(part) for part)``: each part through :func:`finish_segment`
    with the quantiser's parameters of its channels (a Thresholding, an accumulator closed with its
    thresholds, or nothing for an identity), then one Concat of the results, all of type ``dt``."""
    shape, outs, c0 = tuple(pending.shape), [], 0
    for part in pending.parts:
        c = int(part.shape[1])
        qp = {k: (_channels(v, shape, c0, c, f"node {node.name}: quantiser {k}") if k in ("scale", "zero_point", "trunc_scale")
                  else np.asarray(v)[c0:c0 + c] if k == "thresholds" else v) for k, v in q.items()}
        kw = {k: None if v is None else _channels(v, shape, c0, c, f"node {node.name}: {k}")
              for k, v in (("out_scale", out_scale), ("out_zp", out_zp))}
        before = dict(ctx.int_outputs)
        outs.append(finish_segment(ctx, node, part, qp, dt, **kw))
        for k in [k for k, v in ctx.int_outputs.items() if before.get(k) != v]:
            if k in before:     # a part's layer holds only some channels of the quantiser's output
                ctx.int_outputs[k] = before[k]
            else:
                del ctx.int_outputs[k]
        c0 += c
    layer = Concat(ctx.new_name("concat"), spatial=tuple(outs[0].ir_shape[:-1]),
                   channels_in=tuple(int(o.shape[1]) for o in outs), dt=dt)
    ctx.add_layer(layer, pending.node, outs)
    ctx.int_outputs[layer.name] = node.output[0]
    scale = np.asarray(q["scale"] if out_scale is None else out_scale, dtype=np.float64)
    zp = np.asarray(q["zero_point"] if out_zp is None else out_zp, dtype=np.float64)
    return IntTensor(shape, dt, scale, zp, layer, node.name)
