"""Load any QONNX file into a cleaned-up qonnx ``ModelWrapper``.

Accepts ``Quant``, ``IntQuant``, ``BipolarQuant`` and ``Trunc`` nodes in the
``qonnx.custom_op.general`` domain or the legacy finn-base
``finn.custom_op.general`` domain, from files or in-memory ``ModelProto``s.
"""

import os
import warnings

import onnx

from ..errors import FrontendError
from ..sources import located
from .arity import check_arity

__all__ = ["load", "QONNX_DOMAIN", "LEGACY_DOMAINS", "QUANT_OPS"]

QONNX_DOMAIN = "qonnx.custom_op.general"
LEGACY_DOMAINS = ("finn.custom_op.general", "finn", "qonnx.custom_op", "onnx.brevitas")
QUANT_OPS = ("Quant", "IntQuant", "BipolarQuant", "Trunc", "MultiThreshold")
_NAME_KEY = "hwgen.source_name"          # a node's name in the user's file, kept through the clean-up
_OUTPUTS_KEY = "hwgen.source_outputs"    # the names of its output tensors there (JSON list)
_INPUTS_KEY = "hwgen.source_inputs"      # and of its input tensors


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
    except Exception as e:  # noqa: BLE001 - protobuf's decode errors have no common base but Exception
        raise FrontendError(f"{path}: not an ONNX file ({e.__class__.__name__})") from None
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


def _remember_names(model):
    import json
    for node in model.graph.node:
        outs, ins = list(node.output), list(node.input)
        if not all(isinstance(t, str) for t in outs + ins):      # a damaged file: names that are not text
            outs = ins = []
        name = node.name if isinstance(node.name, str) else ""
        for key, value in ((_NAME_KEY, name), (_OUTPUTS_KEY, json.dumps(outs) if outs else ""),
                           (_INPUTS_KEY, json.dumps(ins) if ins else "")):
            if value:
                e = node.metadata_props.add()
                e.key, e.value = key, value
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits], [o.name for o in model.graph.output]


def _take(node, key):
    """The value of metadata ``key`` of ``node`` (None), removing it."""
    props = node.metadata_props
    found = [p.value for p in props if p.key == key]
    for i in reversed(range(len(props))):
        if props[i].key == key:
            del props[i]
    return found[-1] if found else None


def _restore_names(wrapper, graph_io):
    """Give nodes and tensors back the names they have in the user's file (the clean-up renames
    all of them), where such a name is unique; what the clean-up made, or whose name is shared,
    keeps its new name.  ``graph_io``: the user's (input names, output names)."""
    import json
    model = wrapper.model
    nodes = list(model.graph.node)
    names = [_take(n, _NAME_KEY) for n in nodes]
    outputs = [_take(n, _OUTPUTS_KEY) for n in nodes]
    inputs = [_take(n, _INPUTS_KEY) for n in nodes]
    wanted = [n if n is not None else node.name for n, node in zip(names, nodes)]
    count = {}
    for n in wanted:
        count[n] = count.get(n, 0) + 1
    for node, orig in zip(nodes, names):
        if orig is not None and count[orig] == 1:
            node.name = orig
    # tensors: the graph's input and output, every node's outputs and the initializers it reads
    g = model.graph
    inits = {i.name for i in g.initializer}
    pairs = list(zip([i.name for i in g.input if i.name not in inits], graph_io[0]))
    pairs += list(zip([o.name for o in g.output], graph_io[1]))

    def listed(text):
        try:
            return json.loads(text) if text else []
        except ValueError:
            return []
    for node, outs, ins in zip(nodes, outputs, inputs):
        outs, ins = listed(outs), listed(ins)
        if len(outs) == len(node.output):
            pairs += list(zip(list(node.output), outs))
        if len(ins) == len(node.input):
            pairs += [(c, o) for c, o in zip(list(node.input), ins) if c in inits]
    used = ({i.name for i in g.input} | {o.name for o in g.output} | {v.name for v in g.value_info} | inits
            | {t for n in g.node for t in n.output})
    wanted, origs = {}, {}
    for cur, orig in pairs:
        wanted.setdefault(orig, set()).add(cur)
        origs.setdefault(cur, set()).add(orig)
    for orig, curs in wanted.items():
        cur = next(iter(curs))
        if len(curs) == 1 and len(origs[cur]) == 1 and orig and cur != orig and orig not in used:
            wrapper.rename_tensor(cur, orig)
            used.discard(cur)
            used.add(orig)


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
    (weight quantisers kept) and readable tensor names.  Nodes keep the names
    they have in the user's file where those are unique (so that messages name
    what the user can find); the others get unique ``Op_N`` names.
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model = onnx.ModelProto()
    model.CopyFrom(_read(model_or_path))
    _normalise_domains(model)
    graph_io = _remember_names(model)
    inits = {i.name for i in model.graph.initializer}
    n_in = len([i for i in model.graph.input if i.name not in inits])
    if n_in != 1 or len(model.graph.output) != 1:
        raise FrontendError(f"graph {model.graph.name or '?'}: must have exactly one input and one output, not {n_in} and {len(model.graph.output)}")
    try:
        _check_producers(model)
        _sort_nodes(model)
        for node in model.graph.node:
            check_arity(node)
    except FrontendError as e:               # with the node's module, as the lowering's messages have it
        raise located(e, model) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper = cleanup_model(ModelWrapper(model))
    except FrontendError:
        raise
    except Exception as e:  # noqa: BLE001 - qonnx/onnxruntime fail on a damaged graph in any way
        msg = str(e).splitlines()[0] if str(e) else ""
        msg = msg if len(msg) <= 160 else msg[:160] + "…"        # onnxruntime's messages run to hundreds of characters
        raise FrontendError(f"graph {model.graph.name or '?'}: QONNX clean-up failed ({e.__class__.__name__}: {msg})") from None
    _restore_names(wrapper, graph_io)
    return wrapper
