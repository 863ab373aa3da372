"""Lowering of float work on the model input before its first quantiser: it joins the host head.

A network's own pre-processing (bnn_pynq's ``2·x − 1``, an ImageNet model's
first convolution on the float image, its BatchNorm and ReLU) computes on
floats, so it cannot be integer hardware; it is exactly what the host does
before quantising anyway.  Each such node appends one op to the
:class:`~hwgen.lower.values.FloatInput`'s ``ops``; the input quantiser then
stores them as the head's ``pre`` ops, evaluated in float64 by
:func:`hwgen.host.eval_pre` (ONNX layout, batch axis first).
"""

import numpy as np

from ..errors import UnsupportedError
from .conv import window_attrs
from .quant import _attr
from .values import Const, FloatInput, IntConst

__all__ = ["HOST_OPS", "lower_on_host", "is_host_input"]

HOST_OPS = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip", "Max", "Min", "Conv", "MatMul", "Gemm",
            "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout")
_ACCEPTED = "element-wise ops with constants (Add, Sub, Mul, Div, Max, Min), BatchNormalization, Relu, Clip, Conv, MatMul, Gemm, reshapes"


def is_host_input(ctx, node):
    """True when ``node`` computes on the float model input (a FloatInput among its inputs)."""
    return any(n and isinstance(ctx.values.get(n), FloatInput) for n in node.input)


def _started(x):
    """``x``'s ops, with a pending transpose/reshape of the legacy head made explicit first."""
    if x.ops:
        return list(x.ops)
    ops = []
    shape = tuple(x.shape)
    if x.transpose:
        ops.append({"op": "transpose", "perm": [0] + [p + 1 for p in x.transpose]})
    ops.append({"op": "reshape", "shape": list(shape[1:])})
    return ops


def _finite(where, what, v):
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise UnsupportedError(f"{where}: {what} must be finite, not {v[~np.isfinite(v)].ravel()[:3].tolist()}")
    return v


def _const(ctx, node, i, what):
    v = ctx.get(node.input[i], node)
    if not isinstance(v, (Const, IntConst)):
        raise UnsupportedError(f"node {node.name} ({node.op_type}): on the float model input, the {what} must be a "
                               f"constant, not a computed tensor")
    return _finite(f"node {node.name} ({node.op_type})", what, v.value if isinstance(v, Const) else v.real())


def lower_on_host(ctx, node):
    """Record ``node`` (whose input is the float model input) as a host op of the head."""
    op = node.op_type
    where = f"node {node.name} ({op})"
    if op not in HOST_OPS:
        raise UnsupportedError(f"{where}: computes on the float model input before its first quantiser, where hwgen "
                               f"runs it on the host; accepted there: {_ACCEPTED}")
    ins = [ctx.get(n, node) if n else None for n in node.input]
    floats = [i for i, v in enumerate(ins) if isinstance(v, FloatInput)]
    if len(floats) > 1:
        raise UnsupportedError(f"{where}: combines the float model input with itself; accepted: one float operand and constants")
    xi = floats[0]
    x = ins[xi]
    out = node.output[0]
    if op in ("Identity", "Dropout"):
        ctx.values[out] = x
        return
    shape = tuple(ctx.shape(out))
    if not x.ops and op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
        ctx.values[out] = FloatInput(shape, x.name, x.transpose)        # the legacy head reshapes after quantising
        return
    if not x.ops and op == "Transpose":
        perm = [int(p) for a in node.attribute if a.name == "perm" for p in a.ints]
        if not x.transpose and perm and perm[0] == 0:
            ctx.values[out] = FloatInput(shape, x.name, tuple(p - 1 for p in perm[1:]))
            return
    ops = _started(x)
    if op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
        ops.append({"op": "reshape", "shape": list(shape[1:])})
    elif op == "Transpose":
        perm = [int(p) for a in node.attribute if a.name == "perm" for p in a.ints] or list(range(len(x.shape)))[::-1]
        if perm[0] != 0:
            raise UnsupportedError(f"{where}: a transpose of the float input must keep the batch axis first, not perm {perm}")
        ops.append({"op": "transpose", "perm": perm})
    elif op in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
        if xi not in (0, 1) or len(ins) != 2:
            raise UnsupportedError(f"{where}: needs two operands")
        c = _const(ctx, node, 1 - xi, "operand")
        name = {"Add": "add", "Mul": "mul", "Max": "max", "Min": "min", "Sub": "sub", "Div": "div"}[op]
        if xi == 1 and op in ("Sub", "Div"):
            name = "r" + name                                           # constant − x, constant / x
        ops.append({"op": name, "value": c})
    elif op == "BatchNormalization":
        if xi != 0:
            raise UnsupportedError(f"{where}: only the data input may be a tensor")
        gamma, beta, mean, var = (_const(ctx, node, i, w) for i, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
        eps = float(_attr(node, "epsilon", 1e-5))
        if np.any(var + eps <= 0):
            raise UnsupportedError(f"{where}: variance + epsilon must be positive")
        ops.append({"op": "batchnorm", "scale": gamma, "bias": beta, "mean": mean, "var": var, "eps": eps})
    elif op == "Relu":
        ops.append({"op": "relu"})
    elif op == "Clip":
        lo, hi = _attr(node, "min", None), _attr(node, "max", None)
        if len(node.input) > 1 and node.input[1]:
            lo = _const(ctx, node, 1, "min")
        if len(node.input) > 2 and node.input[2]:
            hi = _const(ctx, node, 2, "max")
        if lo is not None:
            ops.append({"op": "max", "value": lo})
        if hi is not None:
            ops.append({"op": "min", "value": hi})
    elif op == "Conv":
        if xi != 0:
            raise UnsupportedError(f"{where}: the weights must be a constant")
        w = _const(ctx, node, 1, "weight")
        if w.ndim != 4 or len(x.shape) != 4:
            raise UnsupportedError(f"{where}: only 2-D convolutions are supported, not weights of shape {w.shape}")
        kernel, stride, pads = window_attrs(node, list(w.shape[2:]))
        group = int(_attr(node, "group", 1))
        if x.shape[1] != w.shape[1] * group or w.shape[0] % group:
            raise UnsupportedError(f"{where}: weights of shape {w.shape} with group {group} do not fit the input {tuple(x.shape)}")
        bias = _const(ctx, node, 2, "bias").reshape(-1) if len(node.input) > 2 and node.input[2] else None
        ops.append({"op": "conv", "weight": w, "bias": bias, "strides": list(stride), "pads": list(pads), "group": group})
    elif op in ("MatMul", "Gemm"):
        if xi != 0:
            raise UnsupportedError(f"{where}: the weights must be a constant")
        w = _const(ctx, node, 1, "weight")
        if op == "Gemm":
            if _attr(node, "transA", 0):
                raise UnsupportedError(f"{where}: transA must be 0, not 1")
            if _attr(node, "transB", 0):
                w = w.T
            w = w * float(_attr(node, "alpha", 1.0))
        if w.ndim != 2:
            raise UnsupportedError(f"{where}: weights must be a matrix, not of shape {w.shape}")
        bias = None
        if op == "Gemm" and len(node.input) > 2 and node.input[2]:
            bias = _const(ctx, node, 2, "bias") * float(_attr(node, "beta", 1.0))
        ops.append({"op": "matmul", "weight": w, "bias": bias})
    ctx.values[out] = FloatInput(shape, x.name, None, tuple(ops))
