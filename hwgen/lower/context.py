"""State shared by the lowering handlers while walking a QONNX graph."""

import numpy as np
from onnx import numpy_helper

from ..dtypes import smallest_dtype
from ..errors import UnsupportedError
from .values import Const, FloatInput, IntConst, IntTensor

__all__ = ["LoweringContext", "channel_vector"]


def channel_vector(value, shape, what):
    """A constant broadcast to a tensor of ``shape`` (N, C, ...) as a scalar or (C,) vector.

    Raises when it varies along any axis but the channel axis (1)."""
    v = np.asarray(value, dtype=np.float64)
    if v.size == 1:
        return float(v.reshape(()))
    try:
        b = np.broadcast_to(v, (1,) + tuple(shape[1:])) if len(v.shape) <= len(shape) else None
    except ValueError:
        b = None
    if b is None:
        raise UnsupportedError(f"{what}: constant of shape {v.shape} does not broadcast to the tensor shape {tuple(shape)}")
    b = b.reshape(b.shape[0], b.shape[1], -1) if len(shape) > 2 else b.reshape(1, -1, 1)
    if not np.all(b == b[:, :, :1]):
        raise UnsupportedError(f"{what}: constant of shape {v.shape} varies along a non-channel axis; accepted: a scalar or one value per channel")
    vec = b[0, :, 0]
    if np.all(vec == vec[0]):
        return float(vec[0])
    return vec.copy()


class LoweringContext:
    def __init__(self, model):
        self.model = model
        self.graph = model.graph
        self.values = {}
        self.layers = []
        self.open = {}              # layer name -> the node whose result it is: output stage not yet set
        self.head = None
        self.counters = {}
        self.sources = {}           # IR layer name -> ONNX node name(s)
        self.int_outputs = {}       # IR layer name -> ONNX tensor holding scale·(its integers − zp)
        for init in self.graph.initializer:
            with np.errstate(invalid="ignore"):      # a signalling NaN warns here; the quantiser rejects NaN
                value = numpy_helper.to_array(init).astype(np.float64)
            dt = self._int_annotation(init.name)
            if dt is not None and dt.allowed(value) and np.all(value == np.round(value)):
                # FINN-streamlined files: integer weights annotated with a datatype, no Quant node
                self.values[init.name] = IntConst(value.astype(np.int64), np.float64(1.0), np.float64(0.0), dt, init.name)
            else:
                self.values[init.name] = Const(value)
        inp = self.graph.input[0]
        self.input_name = inp.name
        self.input_shape = tuple(self._shape(inp.name))
        self.values[inp.name] = FloatInput(self.input_shape, inp.name)
        dt = self._int_annotation(inp.name)
        if dt is not None:          # an input annotated as integers: the head only rounds and clamps
            lo, hi = (-1, 1) if dt.name == "BIPOLAR" else (dt.min, dt.max)
            self.head = {"input_name": inp.name, "input_shape": list(self.input_shape), "node": "(annotation)",
                         "quant": {"scale": [1.0], "zero_point": [0.0], "qmin": lo, "qmax": hi, "rounding_mode": "ROUND",
                                   "bipolar": dt.name == "BIPOLAR", "dtype": dt.name},
                         "quant_param_shape": [], "transpose": None}
            self.values[inp.name] = IntTensor(self.input_shape, dt, np.float64(1.0), np.float64(0.0), None, inp.name)

    def _int_annotation(self, name):
        from ..dtypes import DType
        try:
            qdt = self.model.get_tensor_datatype(name)
        except Exception:  # noqa: BLE001 - no or unknown annotation
            return None
        n = getattr(qdt, "name", str(qdt))
        try:
            return DType(n) if n != "FLOAT32" else None
        except Exception:  # noqa: BLE001 - e.g. TERNARY, FIXED<…>: not an integer type hwgen knows
            return None

    def _shape(self, name):
        shape = self.model.get_tensor_shape(name)
        if shape is None:
            raise UnsupportedError(f"tensor {name}: shape unknown after shape inference")
        if any(not s or s < 0 for s in shape[1:]):       # qonnx reports a symbolic dimension as 0
            raise UnsupportedError(f"tensor {name}: shape {tuple(shape)} has an unknown, empty or negative dimension; "
                                   "accepted: positive sizes (only the batch axis may be symbolic)")
        return tuple(int(s) if s else 1 for s in shape)

    def shape(self, name):
        return self._shape(name)

    def new_name(self, prefix):
        k = self.counters.get(prefix, 0)
        self.counters[prefix] = k + 1
        return f"{prefix}{k}"

    def get(self, name, node=None):
        if name == "":
            return None
        if name not in self.values:
            where = f"node {node.name}" if node is not None else f"tensor {name}"
            raise UnsupportedError(f"{where}: input {name} is produced by nothing hwgen lowered")
        return self.values[name]

    def const(self, name, node, what):
        v = self.get(name, node)
        if isinstance(v, Const):
            return v.value
        if isinstance(v, IntConst):
            return v.real()
        raise UnsupportedError(f"node {node.name} ({node.op_type}): {what} must be a constant, not a computed tensor")

    @property
    def chain_end(self):
        return self.layers[-1] if self.layers else None

    def ref(self, consumes):
        """The stream reference of what a new layer reads: an IntTensor or an IR layer."""
        from ..dataflow.graph import INPUT
        if hasattr(consumes, "kind"):                 # an IR layer (a window generator's consumer)
            return consumes.name
        if consumes.producer is None:
            if self.head is not None and len(consumes.shape) == 4:
                self.head["transpose"] = [1, 2, 0]    # NCHW -> NHWC on the host
            return INPUT
        return consumes.producer.name

    def add_layer(self, layer, source, consumes, open=False):
        """Append ``layer`` reading ``consumes`` (an IntTensor, an IR layer, or a list of IntTensors).

        ``open``: an accumulating layer (MVAU, VVAU, AddStreams) whose output stage (thresholds,
        output type, the sign of its rows) the quantiser that consumes its result sets, once, with
        :meth:`close_layer`; no handler changes a layer otherwise after adding it."""
        srcs = consumes if isinstance(consumes, (list, tuple)) else [consumes]
        layer.inputs = tuple(self.ref(c) for c in srcs)
        self.layers.append(layer)
        self.sources[layer.name] = source
        if open:
            self.open[layer.name] = source
        return layer

    def close_layer(self, layer, where, **stage):
        """Set the output stage of the open ``layer`` (attributes ``stage``) for the consumer ``where``.

        ``out_dt="raw"``: the layer emits its accumulator, typed by its range (after the other changes).
        A second consumer of the same accumulator is refused: the stage can serve only one."""
        if layer.name not in self.open:
            raise UnsupportedError(f"{where}: the result of node {self.sources.get(layer.name, layer.name)} is already "
                                   f"quantised by another node; accepted: one quantiser (or the graph output) per "
                                   f"MatMul/Conv/Add result")
        del self.open[layer.name]
        raw = stage.get("out_dt") == "raw"
        for k, v in stage.items():
            if not (k == "out_dt" and raw):
                setattr(layer, k, v)
        if raw:
            layer.out_dt = smallest_dtype(*layer.acc_range)
        return layer
