"""What runs on the host around the accelerator: the head and the tail.

The *head* turns the model's float input into the first quantiser's integers;
the *tail* turns the accelerator's last integers into the model's float
outputs.  Both are plain JSON (stored in ``model.json`` and ``manifest.json``)
so any driver can apply them.

Element-wise chains of ops (``ops``) are also what lowering evaluates, in
float64, to derive thresholds; :func:`eval_ops` is that one interpreter.
Every op's constant broadcasts along the last (channel) axis.

The head's ``pre`` ops (:func:`eval_pre`) are the model's own float work before
its first quantiser (an input scaling, a first convolution on the float image):
they run in float64 on the tensor in the model's own layout, batch axis first,
constants broadcasting as in ONNX.
"""

import numpy as np

from .errors import HwgenError

__all__ = ["eval_ops", "eval_pre", "quantise", "apply_head", "apply_tail", "random_inputs", "ROUNDING_MODES"]

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "ROUND_TO_ZERO", "HALF_UP", "HALF_DOWN")


def _round(x, mode):
    mode = str(mode).upper()
    if mode in ("ROUND", "HALF_EVEN"):  # half to even, as torch.round / np.round
        return np.round(x)
    if mode == "CEIL":
        return np.ceil(x)
    if mode == "FLOOR":
        return np.floor(x)
    if mode in ("ROUND_TO_ZERO", "DOWN"):
        return np.trunc(x)
    if mode == "UP":                    # away from zero
        return np.sign(x) * np.ceil(np.abs(x))
    if mode == "HALF_UP":               # half away from zero
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if mode == "HALF_DOWN":             # half towards zero
        return np.sign(x) * np.ceil(np.abs(x) - 0.5)
    raise HwgenError(f"rounding mode must be one of {', '.join(ROUNDING_MODES)}, not {mode!r}")


def quantise(x, q):
    """The integer output of a QONNX Quant/BipolarQuant described by dict ``q``."""
    x = np.asarray(x, dtype=np.float64)
    if q.get("bipolar"):
        return np.where(x >= 0, 1, -1).astype(np.int64)
    if q.get("thresholds") is not None:  # QONNX MultiThreshold: base + step · #{T ≤ x}
        T = np.asarray(q["thresholds"], dtype=np.float64)            # (C or 1, N)
        count = (x[..., None] >= T).sum(axis=-1)
        return (q["base"] + q.get("step", 1) * count).astype(np.int64)
    if q.get("trunc"):                  # QONNX Trunc (v1 and v2)
        y = np.round(x / np.asarray(q["scale"], dtype=np.float64) + np.asarray(q["zero_point"], dtype=np.float64))
        y = y / np.asarray(q["trunc_scale"], dtype=np.float64)
        if q["trunc"] == 2:
            y = np.clip(y, q["qmin"], q["qmax"])
        return _round(y, q.get("rounding_mode", "FLOOR")).astype(np.int64)
    scale = np.asarray(q["scale"], dtype=np.float64)
    zp = np.asarray(q.get("zero_point", 0.0), dtype=np.float64)
    y = _round(x / scale + zp, q.get("rounding_mode", "ROUND"))
    return np.clip(y, q["qmin"], q["qmax"]).astype(np.int64)


def eval_ops(ops, x, dtype=np.float64):
    """Evaluate an element-wise op chain on ``x`` (channel axis last)."""
    y = np.asarray(x, dtype=dtype)
    for op in ops:
        kind = op["op"]
        v = np.asarray(op["value"], dtype=dtype) if "value" in op else None
        if kind == "add":
            y = y + v
        elif kind == "mul":
            y = y * v
        elif kind == "div":
            y = y / v
        elif kind == "relu":
            y = np.maximum(y, 0)
        elif kind == "max":
            y = np.maximum(y, v)
        elif kind == "min":
            y = np.minimum(y, v)
        elif kind == "quant":
            y = quantise(y, op).astype(dtype)
        elif kind == "dequant":
            y = (y - np.asarray(op.get("zero_point", 0.0), dtype=dtype)) * np.asarray(op["scale"], dtype=dtype)
        elif kind == "sigmoid":
            y = 1 / (1 + np.exp(-y))
        elif kind == "tanh":
            y = np.tanh(y)
        elif kind == "softmax":
            e = np.exp(y - y.max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        elif kind == "logsoftmax":
            m = y.max(axis=-1, keepdims=True)
            y = y - m - np.log(np.exp(y - m).sum(axis=-1, keepdims=True))
        else:
            raise HwgenError(f"host op must be one of add, mul, div, relu, max, min, quant, dequant, sigmoid, tanh, softmax, logsoftmax, not {kind!r}")
    return y


def _conv2d(x, w, bias, strides, pads, group):
    """ONNX Conv (NCHW, weights (O, I/group, kh, kw)) in float64."""
    n, c, _, _ = x.shape
    o, icg, kh, kw = w.shape
    t, left, b, r = pads
    x = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::strides[0], ::strides[1]]
    og = o // group
    ys = [np.einsum("nchwij,ocij->nohw", win[:, g * icg:(g + 1) * icg], w[g * og:(g + 1) * og], optimize=True)
          for g in range(group)]
    y = np.concatenate(ys, axis=1)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64).reshape(1, -1, 1, 1)
    return y


def eval_pre(ops, x):
    """The head's float ``pre`` ops on ``x`` (N, *input_shape[1:]), in float64, ONNX layout."""
    y = np.asarray(x, dtype=np.float64)
    for op in ops:
        kind = op["op"]
        v = np.asarray(op["value"], dtype=np.float64) if "value" in op else None
        if kind in ("add", "mul", "div", "max", "min", "relu"):      # as on the tail (numpy broadcasting)
            y = eval_ops([op], y)
        elif kind == "sub":
            y = y - v
        elif kind == "rsub":
            y = v - y
        elif kind == "rdiv":
            y = v / y
        elif kind == "batchnorm":        # per channel (axis 1), as ONNX BatchNormalization
            shape = (1, -1) + (1,) * (y.ndim - 2)
            p = {k: np.asarray(op[k], dtype=np.float64).reshape(shape) for k in ("scale", "bias", "mean", "var")}
            y = (y - p["mean"]) / np.sqrt(p["var"] + op["eps"]) * p["scale"] + p["bias"]
        elif kind == "conv":
            y = _conv2d(y, np.asarray(op["weight"], dtype=np.float64), op.get("bias"), op["strides"], op["pads"], op["group"])
        elif kind == "matmul":
            y = y @ np.asarray(op["weight"], dtype=np.float64)
            if op.get("bias") is not None:
                y = y + np.asarray(op["bias"], dtype=np.float64)
        elif kind == "reshape":
            y = y.reshape((y.shape[0],) + tuple(op["shape"]))
        elif kind == "transpose":
            y = np.transpose(y, op["perm"])
        else:
            raise HwgenError(f"head op must be one of add, sub, rsub, mul, div, rdiv, max, min, relu, batchnorm, conv, "
                             f"matmul, reshape, transpose, not {kind!r}")
    return y


def _quant_params(head):
    """The input quantiser's scale and zero point, shaped to broadcast against the (batched) tensor it quantises
    (either may be one number while the other is per channel)."""
    q = head["quant"]
    out = []
    for k in ("scale", "zero_point"):
        v = np.asarray(q.get(k, 0.0), dtype=np.float64)
        out.append(v.reshape(head["quant_param_shape"]) if v.size > 1 else v.reshape(()))
    return out


def apply_head(head, x):
    """Float model input (N, *input_shape[1:]) -> IR integer input (N, *ir_shape)."""
    x = np.asarray(x, dtype=np.float64)
    want = tuple(head["input_shape"][1:])
    if x.shape[1:] != want:
        raise HwgenError(f"input {head['input_name']}: shape {x.shape[1:]} must be {want} (after the batch axis)")
    if head.get("pre"):
        x = eval_pre(head["pre"], x)
    # the quantiser's constants broadcast against the original (batch-less) layout, or the pre ops' result
    q = dict(head["quant"])
    q["scale"], q["zero_point"] = _quant_params(head)
    y = quantise(x, q)
    if head.get("transpose"):
        y = np.transpose(y, [0] + [a + 1 for a in head["transpose"]])
    return y.reshape((x.shape[0],) + tuple(head["ir_shape"]))


def apply_tail(tail, y):
    """IR integer output (N, *ir_shape) -> float model output (N, *output_shape[1:])."""
    y = np.asarray(y)
    out = eval_ops(tail.get("ops", []), y.astype(np.float64))
    if tail.get("transpose"):
        out = np.transpose(out, [0] + [a + 1 for a in tail["transpose"]])
    return out.reshape((y.shape[0],) + tuple(tail["output_shape"][1:]))


def _invert_range(ops, lo, hi):
    """The input range that scalar affine ``ops`` map onto [lo, hi], or None when they are not such ops."""
    for op in reversed(ops):
        kind, v = op["op"], np.asarray(op.get("value", 0.0), dtype=np.float64)
        if kind in ("reshape", "transpose"):
            continue
        if v.size != 1 or kind not in ("add", "sub", "mul", "div") or (kind in ("mul", "div") and float(v.ravel()[0]) == 0):
            return None
        v = float(v.ravel()[0])
        if kind == "add":
            lo, hi = lo - v, hi - v
        elif kind == "sub":
            lo, hi = lo + v, hi + v
        else:
            f = 1 / v if kind == "mul" else v
            lo, hi = sorted((lo * f, hi * f))
    return lo, hi


def random_inputs(head, n, rng):
    """``n`` random float inputs spanning the first quantiser's whole range.

    With ``pre`` ops that are a scalar affine map (``2·x − 1``) the range is mapped back through
    them; other pre ops (a convolution) get standard normal inputs, as normalised images are."""
    shape = (n,) + tuple(head["input_shape"][1:])
    q = head["quant"]
    pre = head.get("pre") or []
    if q.get("bipolar") and not pre:
        return rng.standard_normal(shape)
    scale, zp = _quant_params(head)
    lo = (q["qmin"] - zp - 1) * scale
    hi = (q["qmax"] - zp + 1) * scale
    if pre:
        if q.get("bipolar"):
            lo, hi = np.float64(-1.0), np.float64(1.0)
        span = _invert_range(pre, lo, hi) if np.size(lo) == 1 else None
        if span is None:
            return rng.standard_normal(shape)
        lo, hi = (float(np.asarray(v).ravel()[0]) for v in span)
    return lo + (hi - lo) * rng.random(shape)
