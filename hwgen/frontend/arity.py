"""The inputs of each ONNX/QONNX op hwgen reads: checked on the file as given, before the clean-up.

A node of one of these ops with too few or too many inputs, an empty required input or no
output is refused with a one-line error naming the op's inputs (the clean-up's own errors on
such a node are long, and would name its renamed tensors).
"""

from ..errors import UnsupportedError

__all__ = ["INPUTS", "check_arity"]

_X = (1, 1, "x")
_TWO = (2, 2, "two operands")

#: op -> (required inputs, most inputs (None: any number), what they are); a required input may not be empty
INPUTS = {
    "Quant": (4, 4, "x, scale, zero point, bit width"), "IntQuant": (4, 4, "x, scale, zero point, bit width"),
    "BipolarQuant": (2, 2, "x, scale"),
    "Trunc": (5, 6, "x, scale, zero point, input bit width, [output scale,] output bit width"),
    "MultiThreshold": (2, 2, "x, thresholds"), "MatMul": (2, 2, "x, weights"), "Gemm": (2, 3, "x, weights, bias"),
    "Conv": (2, 3, "x, weights, bias"), "Concat": (1, None, "the tensors to join"), "ArgMax": _X,
    "Reshape": (1, 2, "x, shape"), "Squeeze": (1, 2, "x, axes"), "Unsqueeze": (1, 2, "x, axes"),
    "Dropout": (1, 3, "x, ratio, training mode"), "ReduceMean": (1, 2, "x, axes"), "ReduceMax": (1, 2, "x, axes"),
    # per-channel element-wise ops
    "Add": _TWO, "Sub": _TWO, "Mul": _TWO, "Div": _TWO, "Max": _TWO, "Min": _TWO,
    "BatchNormalization": (5, 5, "x, scale, bias, mean, variance"), "Relu": _X, "Clip": (1, 3, "x, min, max"),
    # pooling and layout
    "MaxPool": _X, "AveragePool": _X, "GlobalAveragePool": _X, "GlobalMaxPool": _X,
    "Flatten": _X, "Transpose": _X, "Identity": _X,
}


def check_arity(node):
    """A node of an op of :data:`INPUTS` has the inputs it takes (none of the required ones empty) and an output."""
    if node.op_type not in INPUTS:
        return
    lo, hi, what = INPUTS[node.op_type]
    where = f"node {node.name} ({node.op_type})"
    n = len(node.input)
    if n < lo or (hi is not None and n > hi):
        count = f"{lo}" if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"
        raise UnsupportedError(f"{where}: takes {count} input{'s' if hi != 1 else ''} ({what}), not {n}")
    for i in range(lo):
        if not node.input[i]:
            raise UnsupportedError(f"{where}: input {i} ({what.split(', ')[i] if hi is not None else 'tensor'}) is empty; "
                                   f"accepted: {what}")
    if not node.output or not node.output[0]:
        raise UnsupportedError(f"{where}: has no output")
