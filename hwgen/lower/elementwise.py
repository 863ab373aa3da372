"""Lowering of per-channel element-wise ops into the pending segment chain.

Only monotone per-channel functions are accepted (they become thresholds):
Add/Sub/Mul/Div by a constant, BatchNormalization, Relu, Clip, Max/Min with a
constant, Identity/Dropout.  On a concatenation of differently quantised tensors
(a :class:`PendingConcat`) each input takes the op with its own channels' constants.
"""

import numpy as np

from ..errors import UnsupportedError
from .context import channel_vector
from .quant import _attr, int_to_acc
from .values import Acc, Const, IntConst, IntTensor, PendingConcat

__all__ = ["lower_elementwise", "ELEMENTWISE_OPS"]

ELEMENTWISE_OPS = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip", "Max", "Min")


def _fold_const(node, vals):
    a = [v.value if isinstance(v, Const) else v.real() for v in vals]
    f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
         "Max": np.maximum, "Min": np.minimum}.get(node.op_type)
    if f is None or len(a) != 2:
        raise UnsupportedError(f"node {node.name} ({node.op_type}): constant folding of this op is not supported")
    return Const(f(a[0], a[1]))


def lower_elementwise(ctx, node):
    op = node.op_type
    ins = [ctx.get(n, node) if n else None for n in node.input]
    tensors = [v for v in ins if isinstance(v, (Acc, IntTensor, PendingConcat))]
    if not tensors:
        if all(isinstance(v, (Const, IntConst)) for v in ins if v is not None):
            ctx.values[node.output[0]] = _fold_const(node, [v for v in ins if v is not None])
            return
        raise UnsupportedError(f"node {node.name} ({op}): operates on the float model input before any quantiser; accepted: a quantiser first")
    if len(tensors) > 1:
        if op in ("Add", "Sub") and len(tensors) == 2:
            from .branch import lower_add_streams
            return lower_add_streams(ctx, node, ins[0], ins[1], negate_b=(op == "Sub"))
        raise UnsupportedError(f"node {node.name} ({op}): {op} of two computed tensors is not supported; accepted: Add or Sub of two quantised tensors")
    x = tensors[0]
    xi = ins.index(x)
    pending = x if isinstance(x, PendingConcat) else None
    if pending is not None:     # the op's own chain, for the whole concatenation; then shared out to its parts
        x = Acc(tuple(pending.shape), None, None, None, [], pending.node)
    elif isinstance(x, IntTensor):
        x = int_to_acc(x)
    shape = x.shape
    where = f"node {node.name} ({op})"

    def finite(v, what):
        v = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise UnsupportedError(f"{where}: {what} must be finite, not {v[~np.isfinite(v)].ravel()[:3].tolist()}")
        return v

    def cv(i, what):
        return channel_vector(finite(ctx.const(node.input[i], node, what), what), shape, f"{where}: {what}")

    ops = list(x.ops)
    if op in ("Add", "Mul", "Max", "Min"):
        c = cv(1 - xi, "operand")
        ops.append({"op": {"Add": "add", "Mul": "mul", "Max": "max", "Min": "min"}[op], "value": c})
    elif op == "Sub":
        c = cv(1 - xi, "operand")
        if xi == 0:
            ops.append({"op": "add", "value": -np.asarray(c) if np.ndim(c) else -c})
        else:
            ops += [{"op": "mul", "value": -1.0}, {"op": "add", "value": c}]
    elif op == "Div":
        if xi != 0:
            raise UnsupportedError(f"{where}: dividing a constant by a tensor is not monotone; accepted: tensor / constant")
        c = cv(1, "divisor")
        if np.any(np.asarray(c) == 0):
            raise UnsupportedError(f"{where}: divisor must be non-zero")
        ops.append({"op": "div", "value": c})
    elif op == "BatchNormalization":
        if xi != 0:
            raise UnsupportedError(f"{where}: only the data input may be a tensor")
        def bn(i, what):      # BatchNormalization parameters are (C,) along axis 1
            v = finite(ctx.const(node.input[i], node, what), what)
            v = v.reshape((1, -1) + (1,) * (len(shape) - 2)) if v.size > 1 else v
            return np.asarray(channel_vector(v, shape, f"{where}: {what}"), dtype=np.float64)

        gamma, beta, mean, var = (bn(i, n) for i, n in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
        eps = float(_attr(node, "epsilon", 1e-5))
        if np.any(var + eps <= 0):
            bad = np.atleast_1d(var + eps)
            raise UnsupportedError(f"{where}: variance + epsilon must be positive, not "
                                   f"{[float(f'{v:.6g}') for v in bad[bad <= 0][:3]]}")
        inv = gamma / np.sqrt(var + eps)
        ops += [{"op": "add", "value": -mean if mean.ndim else float(-mean)},
                {"op": "mul", "value": inv if inv.ndim else float(inv)},
                {"op": "add", "value": beta if beta.ndim else float(beta)}]
    elif op == "Relu":
        ops.append({"op": "relu"})
    elif op == "Clip":
        lo = _attr(node, "min", None)
        hi = _attr(node, "max", None)
        if len(node.input) > 1 and node.input[1]:
            lo = cv(1, "min")
        if len(node.input) > 2 and node.input[2]:
            hi = cv(2, "max")
        if lo is not None:
            ops.append({"op": "max", "value": lo})
        if hi is not None:
            ops.append({"op": "min", "value": hi})
    else:
        raise UnsupportedError(f"{where}: not an element-wise op hwgen lowers")
    if pending is not None:
        from .branch import pending_elementwise
        ctx.values[node.output[0]] = pending_elementwise(pending, ops)
        return
    ctx.values[node.output[0]] = Acc(shape, x.base, x.lo, x.hi, ops, node.name)
