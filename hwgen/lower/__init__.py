"""Lowering: a cleaned-up QONNX graph -> the integer dataflow graph (ARCHITECTURE §2).

The walk visits nodes in topological order and tracks an abstract value for
every tensor (:mod:`.values`).  Each op kind has one handler module:
quantisers (:mod:`.quant`), MatMul/Gemm (:mod:`.linear`), per-channel
element-wise ops (:mod:`.elementwise`) and layout ops (:mod:`.shape`).  What
cannot be integer stays on the host as the head and the tail.
"""

import numpy as np

from ..dataflow import DataflowGraph
from ..errors import HwgenError, UnsupportedError
from ..frontend.arity import check_arity
from ..sources import located
from .context import LoweringContext, channel_vector
from .elementwise import ELEMENTWISE_OPS, lower_elementwise
from .branch import lower_concat
from .conv import lower_conv
from .host_ops import is_host_input, lower_on_host
from .linear import lower_matmul
from .pool import POOL_OPS, lower_pool
from .quant import lower_multithreshold, lower_quant, lower_trunc
from .select import append_label_select, lower_argmax
from .shape import SHAPE_OPS, lower_shape
from .values import Acc, Const, IntConst, IntTensor, PendingConcat

__all__ = ["lower", "SUPPORTED_OPS"]

QUANTISERS = ("Quant", "IntQuant", "BipolarQuant")
HANDLERS = {"Quant": lower_quant, "IntQuant": lower_quant, "BipolarQuant": lower_quant,
            "MatMul": lower_matmul, "Gemm": lower_matmul, "Conv": lower_conv, "Trunc": lower_trunc,
            "MultiThreshold": lower_multithreshold, "Concat": lower_concat, "ArgMax": lower_argmax}
HANDLERS.update({op: lower_pool for op in POOL_OPS})
HANDLERS.update({op: lower_elementwise for op in ELEMENTWISE_OPS})
HANDLERS.update({op: lower_shape for op in SHAPE_OPS})
SUPPORTED_OPS = tuple(sorted(HANDLERS))
# what may take a Concat of differently quantised inputs (a PendingConcat): an element-wise quantiser, a
# concat, and on the way to the quantiser per-channel element-wise ops of one tensor (ELEMENTWISE_OPS)
TAKES_PENDING_CONCAT = QUANTISERS + ("MultiThreshold", "Concat", "Identity", "Dropout")
PENDING_ACCEPTED = ("accepted: a quantiser after the Concat (QuantIdentity, QuantReLU, …: Quant, BipolarQuant, "
                    "MultiThreshold; per-channel element-wise ops between them), or inputs sharing one quantiser")
# the families of SUPPORTED_OPS, short enough for a one-line error (ARCHITECTURE §6)
ACCEPTED_OPS = ("quantisers, MatMul, Gemm, Conv, per-channel element-wise ops (Add, Mul, BatchNormalization, "
                "Relu, …), pooling, reshapes, Concat, ArgMax")

def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def _ops_json(ops):
    return [{k: _jsonable(v) for k, v in op.items()} for op in ops]


def lower(model, name="model", topk=None):
    """Lower a cleaned-up qonnx ``ModelWrapper`` into a :class:`DataflowGraph`.

    ``topk``: append a hardware label-select of the ``topk`` largest outputs
    (the accelerator then streams class indices).  An error about a node names
    the module it came from where the exporter recorded it (:mod:`hwgen.sources`)."""
    ctx = LoweringContext(model)
    try:
        return _lower(ctx, model, name, topk)
    except HwgenError as e:
        raise located(e, model, ctx.sources) from None


def _lower(ctx, model, name, topk):
    for node in model.graph.node:
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise UnsupportedError(f"node {node.name}: op {node.op_type or repr('')} is not supported; accepted: {ACCEPTED_OPS}")
        check_arity(node)
        if node.op_type not in QUANTISERS and is_host_input(ctx, node):
            handler = lower_on_host                  # float work before the first quantiser: the host head
        pending = next((n for n in node.input if isinstance(ctx.values.get(n), PendingConcat)), None)
        if pending is not None and node.op_type not in TAKES_PENDING_CONCAT and not (
                node.op_type in ELEMENTWISE_OPS and sum(not isinstance(ctx.values.get(n), (Const, IntConst)) for n in node.input if n) == 1):
            raise UnsupportedError(f"node {node.name} ({node.op_type}): its input {pending} is a concatenation of "
                                   f"differently quantised tensors (node {ctx.values[pending].node}); {PENDING_ACCEPTED}")
        handler(ctx, node)

    out_name = model.graph.output[0].name
    out = ctx.get(out_name)
    out_shape = list(ctx.shape(out_name))
    if hasattr(out, "shape") and tuple(int(d) for d in out.shape) != tuple(out_shape):
        declared = tuple(model.get_tensor_shape(out_name) or ())
        raise UnsupportedError(f"output {out_name}: declared of shape {declared}, but the graph computes "
                               f"{tuple(int(d) for d in out.shape)}")
    if isinstance(out, PendingConcat):
        raise UnsupportedError(f"output {out_name}: is a concatenation of differently quantised tensors (node {out.node}); "
                               f"{PENDING_ACCEPTED}")
    if topk is not None:
        if isinstance(out, IntTensor) and out.producer is not None and out.producer.kind == "LabelSelect":
            raise UnsupportedError(f"output {out_name}: the model already ends in ArgMax; --topk is not needed")
        append_label_select(ctx, out, int(topk), f"output {out_name} (--topk {topk})", out_name)
        out = ctx.get(out_name)
        out_shape = [out_shape[0], int(topk)]
    if ctx.head is None:
        raise UnsupportedError(f"input {ctx.input_name}: must go through a quantiser (QuantIdentity, QuantHardTanh, …) before the first layer")
    if isinstance(out, Acc):
        base = out.base
        if isinstance(base, IntTensor):
            tail_ops, end = out.ops, base
        else:                                    # an MVAU/AddStreams: its accumulator is the output
            ctx.close_layer(base, f"output {out_name}", out_dt="raw")
            tail_ops, end = out.ops, None
    elif isinstance(out, IntTensor) and out.producer is not None and out.producer.kind == "LabelSelect":
        tail_ops, end = [], out                  # class indices: nothing to do on the host
    elif isinstance(out, IntTensor):
        tail_ops = [{"op": "dequant", "scale": channel_vector(out.scale, out.shape, "output scale"),
                     "zero_point": channel_vector(out.zero_point, out.shape, "output zero point")}]
        end = out
    else:
        raise UnsupportedError(f"output {out_name}: is a {type(out).__name__}, not a result of the network")
    if end is not None and end.producer is not ctx.chain_end:
        raise UnsupportedError(f"output {out_name}: must be produced by the last hardware layer")
    if not ctx.layers:
        raise UnsupportedError("graph: no hardware layer between the input quantiser and the output; accepted: at least one QuantLinear")
    for layer in ctx.layers:              # an accumulator that neither a quantiser nor the output took
        if hasattr(layer, "out_dt") and layer.out_dt is None:
            src = ctx.sources.get(layer.name, layer.name)
            op = next((n.op_type for n in model.graph.node if n.name == src), "?")
            raise UnsupportedError(f"node {src} ({op}): its result reaches neither a quantiser nor the graph output; "
                                   f"accepted: every MatMul/Conv/Add followed by a quantiser, or the last one by the output")
    head = ctx.head
    head["ir_shape"] = list(ctx.layers[0].in_shape)
    tail = {"ops": _ops_json(tail_ops), "output_name": out_name, "output_shape": out_shape,
            "ir_shape": list(ctx.layers[-1].out_shape)}
    if len(out_shape) == 4:          # IR (H, W, C) back to ONNX (C, H, W)
        tail["transpose"] = [2, 0, 1]
    g = DataflowGraph(list(ctx.layers), head=head, tail=tail, name=name)
    g.sources = dict(ctx.sources)
    g.int_outputs = dict(ctx.int_outputs)
    g.validate()
    return g
