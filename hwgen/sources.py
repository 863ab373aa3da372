"""Names a user can find: messages about a node or layer name it as the user's file does.

The loader keeps the node names of the user's file and can tell the Brevitas/PyTorch
module a node came from (:func:`module_of`).  :func:`annotate`
adds that module to a message about a node (``node NAME (Op): …`` becomes
``node NAME (Op, module features.3: QuantConv2d): …``) and the source node to a
message about one of hwgen's IR layers (``layer fc0: …`` becomes
``layer fc0 (node NAME, module 1: QuantLinear): …``).
"""

import ast
import re

__all__ = ["annotate", "located", "describe_node", "module_of"]

_NODE = re.compile(r"node (\S+?)(?: \(([^()]*)\))?: ")
_LAYER = re.compile(r"layer (\S+?): ")
#: torch module classes that only contain others (never the module a node belongs to)
_CONTAINERS = ("torch.nn.modules.container.",)


def module_of(node):
    """The Brevitas/PyTorch module an ONNX node was exported from, as ``"features.3: QuantConv2d"``, where the
    exporter recorded it (torch's dynamo exporter does, in ``pkg.torch.onnx.name_scopes``); else None."""
    props = {p.key: p.value for p in node.metadata_props}
    try:
        scopes = ast.literal_eval(props["pkg.torch.onnx.name_scopes"])
        classes = ast.literal_eval(props["pkg.torch.onnx.class_hierarchy"])
    except (KeyError, ValueError, SyntaxError):
        return None
    pairs = [(s, c) for s, c in zip(scopes, classes) if isinstance(s, str) and isinstance(c, str)
             and s and c.startswith(("brevitas.nn.", "torch.nn.modules.")) and not c.startswith(_CONTAINERS)]
    if not pairs:
        return None
    brevitas = [p for p in pairs if p[0] and p[1].startswith("brevitas.nn.")]
    scope, cls = (brevitas or pairs)[0]
    return f"{scope}: {cls.rsplit('.', 1)[-1]}"


def _node(model, name):
    for n in model.graph.node:
        if n.name == name:
            return n
    return None


def describe_node(model, name):
    """``"NAME, module M"`` for an ONNX node of ``model`` (just ``NAME`` where no module is recorded)."""
    n = _node(model, name) if model is not None else None
    mod = module_of(n) if n is not None else None
    return f"{name}, module {mod}" if mod else name


def annotate(message, model, sources=None):
    """``message`` with its subject node's module, or its subject layer's source node, added."""
    m = _NODE.match(message)
    if m and model is not None:
        n = _node(model, m.group(1))
        mod = module_of(n) if n is not None else None
        if mod and "module " not in (m.group(2) or ""):
            inner = f"{m.group(2)}, " if m.group(2) else ""
            return f"node {m.group(1)} ({inner}module {mod}): {message[m.end():]}"
        return message
    m = _LAYER.match(message)
    if m and sources and m.group(1) in sources:
        src = sources[m.group(1)]
        src = src if isinstance(src, str) else ", ".join(map(str, src))
        return f"layer {m.group(1)} (node {describe_node(model, src)}): {message[m.end():]}"
    return message


def located(error, model, sources=None):
    r"""``error`` (a :class:`~hwgen.errors.HwgenError`) with its message :func:`annotate`\ d: the same
    exception when nothing was added, else a new one of its type — for ``raise located(e, …) from None``."""
    message = annotate(str(error), model, sources)
    return error if message == str(error) else type(error)(message)
