"""Load any QONNX file into a cleaned-up qonnx ``ModelWrapper``.

Accepts ``Quant``, ``IntQuant``, ``BipolarQuant`` and ``Trunc`` nodes in the
``qonnx.custom_op.general`` domain or the legacy finn-base
``finn.custom_op.general`` domain, from files or in-memory ``ModelProto``s.
"""

import os
import warnings

import onnx

from ..errors import FrontendError

__all__ = ["load", "QONNX_DOMAIN", "LEGACY_DOMAINS", "QUANT_OPS"]

QONNX_DOMAIN = "qonnx.custom_op.general"
LEGACY_DOMAINS = ("finn.custom_op.general", "finn", "qonnx.custom_op", "onnx.brevitas")
QUANT_OPS = ("Quant", "IntQuant", "BipolarQuant", "Trunc", "MultiThreshold")


def _read(model_or_path):
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    if hasattr(model_or_path, "model") and isinstance(model_or_path.model, onnx.ModelProto):
        return model_or_path.model
    path = os.fspath(model_or_path)
    if not os.path.isfile(path):
        raise FrontendError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            data = f.read()
        model = onnx.load_from_string(data)
    except Exception as e:
        raise FrontendError(f"{path}: not an ONNX file ({e.__class__.__name__})")
    if len(model.graph.node) == 0:
        raise FrontendError(f"{path}: not an ONNX model (the graph has no nodes)")
    return model


def _normalise_domains(model):
    for node in model.graph.node:
        if node.op_type == "IntQuant":      # the newer QONNX name of Quant (same op)
            node.op_type = "Quant"
        if node.op_type in QUANT_OPS and (node.domain in LEGACY_DOMAINS or node.domain == ""):
            node.domain = QONNX_DOMAIN
    domains = {o.domain for o in model.opset_import}
    if QONNX_DOMAIN not in domains:
        model.opset_import.append(onnx.helper.make_opsetid(QONNX_DOMAIN, 1))


def _check_producers(model):
    """Every tensor has one producer: an initializer, the graph input or one node's output."""
    where = {}
    inits = set()
    for i in model.graph.initializer:
        if i.name in inits:
            raise FrontendError(f"tensor {i.name}: two initializers have this name; accepted: one producer per tensor")
        inits.add(i.name)
        where[i.name] = "an initializer"
    for i in model.graph.input:
        where.setdefault(i.name, "the graph input")      # an input may also have an initializer (its default)
    for node in model.graph.node:
        for o in node.output:
            if not o:
                continue
            if o in where:
                raise FrontendError(f"tensor {o}: produced by both {where[o]} and node {node.name} ({node.op_type}); "
                                    "accepted: one producer per tensor")
            where[o] = f"node {node.name} ({node.op_type})"


def _sort_nodes(model):
    """Put the nodes in topological order (ONNX requires it; shape inference needs it), keeping the file's
    order where it already is one; a cycle is an error naming a node on it."""
    import heapq
    nodes = list(model.graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[t] for t in n.input if t in producer} for n in nodes]
    users = [[] for _ in nodes]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(nodes):
        left = sorted(set(range(len(nodes))) - set(order))
        n = nodes[left[0]]
        raise FrontendError(f"node {n.name} ({n.op_type}): is on a cycle (its inputs depend on its own output); "
                            "accepted: an acyclic graph")
    if order != sorted(order):
        del model.graph.node[:]
        model.graph.node.extend(nodes[i] for i in order)


def load(model_or_path):
    """Read a QONNX model (path or ``ModelProto``) and clean it up.

    Returns a qonnx ``ModelWrapper`` with inferred shapes, folded constants
    (weight quantisers kept), unique node names and readable tensor names.
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model = onnx.ModelProto()
    model.CopyFrom(_read(model_or_path))
    _normalise_domains(model)
    inits = {i.name for i in model.graph.initializer}
    n_in = len([i for i in model.graph.input if i.name not in inits])
    if n_in != 1 or len(model.graph.output) != 1:
        raise FrontendError(f"graph {model.graph.name or '?'}: must have exactly one input and one output, not {n_in} and {len(model.graph.output)}")
    _check_producers(model)
    _sort_nodes(model)
    from ..lower import check_arity          # before the clean-up: its errors are long, and the names still the file's
    for node in model.graph.node:
        check_arity(node)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper = cleanup_model(ModelWrapper(model))
    except FrontendError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        msg = msg if len(msg) <= 160 else msg[:160] + "…"        # onnxruntime's messages run to hundreds of characters
        raise FrontendError(f"graph {model.graph.name or '?'}: QONNX clean-up failed ({e.__class__.__name__}: {msg})")
    return wrapper
