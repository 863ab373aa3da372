"""Lowering of MatMul / Gemm with quantised weights into an MVAU."""

import numpy as np

from ..dataflow import MVAU, accumulator_range
from ..errors import UnsupportedError
from .context import channel_vector
from .quant import _attr, quantised_weights
from .values import Acc, IntTensor

__all__ = ["lower_matmul"]


def _weights(ctx, node, name, trans):
    """(W_int (MH, MW), per-row scale (MH,) or scalar, dt) from a quantised constant."""
    w = quantised_weights(ctx, node, name)
    if w.q.ndim != 2:
        raise UnsupportedError(f"node {node.name} ({node.op_type}): weights must be a matrix, not of shape {w.q.shape}")
    q = w.q.astype(np.int64)
    scale = np.broadcast_to(w.scale, q.shape)
    if not trans:                 # stored (MW, MH)
        q, scale = q.T, scale.T
    if not np.all(scale == scale[:, :1]):
        raise UnsupportedError(f"node {w.node} (Quant): weight scale varies along the input axis; accepted: per-tensor or per-output-channel")
    s = scale[:, 0].astype(np.float64)
    return q, (float(s[0]) if np.all(s == s[0]) else s.copy()), w.dt


def lower_matmul(ctx, node):
    x = ctx.get(node.input[0], node)
    gemm = node.op_type == "Gemm"
    if gemm and _attr(node, "transA", 0):
        raise UnsupportedError(f"node {node.name} (Gemm): transA must be 0, not 1")
    if isinstance(x, Acc) or not isinstance(x, IntTensor):
        raise UnsupportedError(f"node {node.name} ({node.op_type}): input must be the output of a quantiser (QuantIdentity/QuantReLU/…), not a float tensor")
    if len(x.shape) != 2:
        raise UnsupportedError(f"node {node.name} ({node.op_type}): input must be 2-D (batch, features), not of shape {x.shape}")
    W, s_w, wdt = _weights(ctx, node, node.input[1], trans=bool(gemm and _attr(node, "transB", 0)))
    mh, mw = W.shape
    if mw != x.shape[1]:
        raise UnsupportedError(f"node {node.name}: weight matrix {W.shape} does not match {x.shape[1]} input features")
    s_x = np.asarray(x.scale, dtype=np.float64)
    zp_x = np.asarray(x.zero_point, dtype=np.float64)
    if s_x.size != 1 or zp_x.size != 1:
        raise UnsupportedError(f"node {node.name} ({node.op_type}): the input quantiser must be per-tensor, not per-channel (scale of shape {s_x.shape})")
    s_x, zp_x = float(s_x.reshape(())), float(zp_x.reshape(()))

    if x.perm is not None:           # the input is a flattened feature map streamed channels-last
        W = W[:, x.perm]
    layer = MVAU(ctx.new_name("fc"), mw=mw, mh=mh, in_dt=x.dt, wdt=wdt, out_dt=None, weights=W)
    ctx.add_layer(layer, node.name, x, open=True)
    ops = []
    if zp_x != 0:
        ops.append({"op": "add", "value": -zp_x * W.sum(axis=1).astype(np.float64)})
    alpha = float(_attr(node, "alpha", 1.0)) if gemm else 1.0
    ops.append({"op": "mul", "value": s_x * np.asarray(s_w) * alpha})
    if gemm and len(node.input) > 2 and node.input[2]:
        beta = float(_attr(node, "beta", 1.0))
        b = ctx.const(node.input[2], node, "bias") * beta
        ops.append({"op": "add", "value": channel_vector(b, (1, mh), f"node {node.name}: bias")})
    lo, hi = accumulator_range(W, x.dt)
    ctx.values[node.output[0]] = Acc((x.shape[0], mh), layer, lo, hi, ops, node.name)
