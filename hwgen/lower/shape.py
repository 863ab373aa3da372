"""Lowering of layout ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity, Dropout."""

import numpy as np

from ..errors import UnsupportedError
from .values import Acc, Const, IntConst, IntTensor

__all__ = ["lower_shape", "SHAPE_OPS"]

SHAPE_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout")


def lower_shape(ctx, node):
    op = node.op_type
    x = ctx.get(node.input[0], node)
    out = node.output[0]
    if op in ("Identity", "Dropout"):
        ctx.values[out] = x
        return
    new_shape = ctx.shape(out)
    if isinstance(x, (Const, IntConst)):
        raise UnsupportedError(f"node {node.name} ({op}): reshaping a constant outside constant folding is not supported")
    if op == "Transpose":
        # (a transpose of the float model input is the host head's: lower/host_ops.py)
        raise UnsupportedError(f"node {node.name} (Transpose): only a transpose of the model input (batch axis kept) is supported")
    if isinstance(x, IntTensor) and x.producer is None:
        # still on the host: the head reshapes (quantiser constants are per tensor)
        if np.asarray(x.scale).size > 1 or np.asarray(x.zero_point).size > 1:
            raise UnsupportedError(f"node {node.name} ({op}): reshaping an input quantised per channel is not supported; accepted: per-tensor input quantisation")
        ctx.values[out] = IntTensor(tuple(new_shape), x.dt, x.scale, x.zero_point, None, x.node)
        return
    if tuple(new_shape) == tuple(x.shape) or (len(new_shape) == 2 and len(x.shape) == 2):
        if isinstance(x, Acc):
            ctx.values[out] = Acc(tuple(new_shape), x.base, x.lo, x.hi, x.ops, x.node)
        else:
            ctx.values[out] = IntTensor(tuple(new_shape), x.dt, x.scale, x.zero_point, x.producer, x.node)
        return
    # flattening a feature map: the stream stays channels-last, the consumer's weights are permuted
    if isinstance(x, IntTensor) and len(x.shape) == 4 and len(new_shape) == 2 and x.perm is None \
            and int(new_shape[1]) == int(np.prod(x.shape[1:])) and not (x.shape[2] == 1 and x.shape[3] == 1):
        _, c, h, w = x.shape
        # IR element i = (y·W + x)·C + ch  is ONNX element ch·H·W + y·W + x
        perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
        ctx.values[out] = IntTensor(tuple(new_shape), x.dt, x.scale, x.zero_point, x.producer, x.node, perm=perm)
        return
    # (N, C) <-> (N, C, 1, 1) style reshapes keep the element order
    if isinstance(x, IntTensor) and int(np.prod(new_shape[1:])) == int(np.prod(x.shape[1:])) \
            and (len(x.shape) == 2 or all(d == 1 for d in x.shape[2:])) \
            and (len(new_shape) == 2 or all(d == 1 for d in new_shape[2:])) \
            and np.asarray(x.scale).size == 1:
        ctx.values[out] = IntTensor(tuple(new_shape), x.dt, x.scale, x.zero_point, x.producer, x.node)
        return
    raise UnsupportedError(f"node {node.name} ({op}): reshaping {x.shape} to {tuple(new_shape)} inside the accelerator is not supported yet")
