"""Folding documents: ``{"layer": {"pe": P, "simd": S, "mem_style": …}}`` read, checked and applied.

A folding sets PE/SIMD and per-layer options (:data:`OPTION_KEYS`) of the layers it
names; the search leaves the layers it folds (:func:`folded_layers`) alone.
"""

import json
from dataclasses import fields

from ...errors import FoldingError
from ..mvau import IMPLS
from .windows import tie_windows

__all__ = ["OPTION_KEYS", "apply_folding", "check_folding_doc", "folded_layers", "load_folding"]


def _check_pipeline(v):
    if v in ("auto", "none") or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
        return None
    return f"must be one of auto, none or a non-negative integer, not {v!r}"


# per-layer options a folding file may set besides PE/SIMD: the choices, or a checker
OPTION_KEYS = {"mem_style": ("auto", "distributed", "block"), "pipeline": _check_pipeline,
               "impl": IMPLS}


def _options_of(layer):
    names = {f.name for f in fields(layer)}
    return [k for k in OPTION_KEYS if k in names]


def folded_layers(folding):
    """Names of the layers a folding dict sets PE/SIMD of (not only options)."""
    return tuple(n for n, p in folding.items() if any(k not in OPTION_KEYS for k in p))


def load_folding(path):
    """The checked folding document in the JSON file ``path``."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise FoldingError(f"folding file {path}: cannot be read ({e.strerror})") from None
    except ValueError as e:
        raise FoldingError(f"folding file {path}: not JSON ({e})") from None
    check_folding_doc(doc, f"folding file {path}")
    return doc


def _json_kind(v):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def check_folding_doc(doc, source="folding"):
    """A folding must map layer names (strings) to objects of parameters; say what was found otherwise."""
    shape = 'must map layer names to objects like {"fc0": {"pe": 4, "simd": 8}}'
    if not isinstance(doc, dict):
        raise FoldingError(f"{source}: {shape}, not {_json_kind(doc)}")
    for name, params in doc.items():
        if not isinstance(name, str):
            raise FoldingError(f"{source}: {shape}, not a key {name!r} of type {type(name).__name__}")
        if not isinstance(params, dict):
            raise FoldingError(f"{source}: {shape}, not {_json_kind(params)} for layer {name!r}")
    return doc


def apply_folding(graph, folding, source="folding"):
    """Set PE/SIMD and options from a dict ``{"layer": {"pe": P, "simd": S, "mem_style": "block"}}``."""
    check_folding_doc(folding, source)
    names = [l.name for l in graph.layers]
    for name, params in folding.items():
        if name not in names:
            raise FoldingError(f"{source}: layer {name!r} is not in the model; layers are {', '.join(names)}")
        layer = graph.layer(name)
        opts = _options_of(layer)
        fold, extra = {}, {}
        for k, v in params.items():
            if k in layer.folding:
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise FoldingError(f"{source}: layer {name}: {k} must be a positive integer, not {v!r}")
                fold[k] = v
            elif k in opts:
                rule = OPTION_KEYS[k]
                why = (None if v in rule else f"must be one of {', '.join(rule)}, not {v!r}") if isinstance(rule, tuple) else rule(v)
                if why:
                    raise FoldingError(f"{source}: layer {name}: {k} {why}")
                extra[k] = v
            elif k in OPTION_KEYS:
                keys = sorted(layer.folding) + opts
                raise FoldingError(f"{source}: layer {name}: parameter {k!r} must be one of {', '.join(keys)}, not {k!r}")
            else:
                raise FoldingError(f"{source}: layer {name}: parameter {k!r} must be one of {', '.join(sorted(layer.folding))}, not {k!r}")
        layer.set_folding(**fold)
        for k, v in extra.items():
            setattr(layer, k, v)
        layer.validate()
    tie_windows(graph, explicit=folded_layers(folding))
    _check_pinned_windows(graph, folding, source)
    return graph


def _check_pinned_windows(graph, folding, source):
    """A depthwise window (before a pool or a depthwise conv) streams its channels in blocks of its consumer's
    lanes; a SIMD pinned to anything else computes a wrong result, so it is refused."""
    for i, l in enumerate(graph.layers[:-1]):
        if l.kind != "SlidingWindow" or not l.depthwise or l.name not in folding or "simd" not in folding[l.name]:
            continue
        c = graph.layers[i + 1]
        if c.in_lanes != l.simd:
            key = "pe" if "pe" in c.folding else "simd"
            raise FoldingError(f"{source}: layer {l.name}: SIMD={l.simd} must equal the {key.upper()} of its consumer "
                               f"{c.name} ({c.in_lanes}); set {c.name}'s {key} to {l.simd} too, or leave {l.name} out "
                               f"(it follows {c.name})")
