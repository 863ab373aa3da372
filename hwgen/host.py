"""What runs on the host around the accelerator: the head and the tail.

The *head* turns the model's float input into the first quantiser's integers;
the *tail* turns the accelerator's last integers into the model's float
outputs.  Both are plain JSON (stored in ``model.json`` and ``manifest.json``)
so any driver can apply them.

Element-wise chains of ops (``ops``) are also what lowering evaluates, in
float64, to derive thresholds; :func:`eval_ops` is that one interpreter.
Every op's constant broadcasts along the last (channel) axis.
"""

import numpy as np

from .errors import HwgenError

__all__ = ["eval_ops", "quantise", "apply_head", "apply_tail", "random_inputs", "ROUNDING_MODES"]

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


def apply_head(head, x):
    """Float model input (N, *input_shape[1:]) -> IR integer input (N, *ir_shape)."""
    x = np.asarray(x, dtype=np.float64)
    want = tuple(head["input_shape"][1:])
    if x.shape[1:] != want:
        raise HwgenError(f"input {head['input_name']}: shape {x.shape[1:]} must be {want} (after the batch axis)")
    # the quantiser's constants broadcast against the original (batch-less) layout
    q = dict(head["quant"])
    q["scale"] = np.asarray(q["scale"], dtype=np.float64).reshape(head["quant_param_shape"])
    q["zero_point"] = np.asarray(q.get("zero_point", 0.0), dtype=np.float64).reshape(head["quant_param_shape"])
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


def random_inputs(head, n, rng):
    """``n`` random float inputs spanning the first quantiser's whole range."""
    shape = (n,) + tuple(head["input_shape"][1:])
    q = head["quant"]
    if q.get("bipolar"):
        return rng.standard_normal(shape)
    scale = np.asarray(q["scale"], dtype=np.float64).reshape(head["quant_param_shape"])
    zp = np.asarray(q.get("zero_point", 0.0), dtype=np.float64).reshape(head["quant_param_shape"])
    lo = (q["qmin"] - zp - 1) * scale
    hi = (q["qmax"] - zp + 1) * scale
    return lo + (hi - lo) * rng.random(shape)
