"""Folding: PE/SIMD per layer, from a JSON file or searched for a target.

The search picks, for every compute layer independently, the folding with the
least estimated LUTs among those that meet the cycle budget
``clock / fps`` — the least parallelism that meets the target, never a silent
PE=SIMD=1 when that is too slow.  Where even full parallelism is too slow it
says so plainly.
"""

import itertools
import json
import math

from ..errors import FoldingError
from .base import divisors

__all__ = ["apply_folding", "load_folding", "search_folding", "cycle_budget", "tie_windows",
           "DEFAULT_FPS", "DEFAULT_CLOCK_MHZ"]


def _feeder(graph, layer):
    """The SlidingWindow feeding ``layer`` directly, if any."""
    i = graph.layers.index(layer)
    if i > 0 and graph.layers[i - 1].kind == "SlidingWindow":
        return graph.layers[i - 1]
    return None


def _tie(swg, consumer):
    """A window generator streams as many lanes as its consumer reads where it can."""
    lanes = consumer.in_lanes
    swg.simd = lanes if (swg.depthwise or swg.channels % lanes == 0) else math.gcd(lanes, swg.channels)


def tie_windows(graph, explicit=()):
    """Give every SlidingWindow not named in ``explicit`` the SIMD of its consumer."""
    for i, l in enumerate(graph.layers[:-1]):
        if l.kind == "SlidingWindow" and l.name not in explicit:
            _tie(l, graph.layers[i + 1])
    return graph

DEFAULT_CLOCK_MHZ = 100.0
DEFAULT_FPS = 1_000_000.0


def load_folding(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise FoldingError(f"folding file {path}: cannot be read ({e.strerror})")
    except ValueError as e:
        raise FoldingError(f"folding file {path}: not JSON ({e})")
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise FoldingError(f'folding file {path}: must map layer names to objects like {{"fc0": {{"pe": 4, "simd": 8}}}}')
    return doc


def apply_folding(graph, folding, source="folding"):
    """Set PE/SIMD from a dict ``{"layer": {"pe": P, "simd": S}}``."""
    names = [l.name for l in graph.layers]
    for name, params in folding.items():
        if name not in names:
            raise FoldingError(f"{source}: layer {name!r} is not in the model; layers are {', '.join(names)}")
        layer = graph.layer(name)
        for k, v in params.items():
            if k not in layer.folding:
                raise FoldingError(f"{source}: layer {name}: parameter {k!r} must be one of {', '.join(sorted(layer.folding))}, not {k!r}")
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise FoldingError(f"{source}: layer {name}: {k} must be a positive integer, not {v!r}")
        layer.set_folding(**params)
        layer.validate()
    tie_windows(graph, explicit=tuple(folding))
    return graph


def cycle_budget(fps, clock_mhz):
    if fps is None or fps <= 0:
        raise FoldingError(f"--fps must be a positive number, not {fps!r}")
    if clock_mhz is None or clock_mhz <= 0:
        raise FoldingError(f"--clock-mhz must be a positive number, not {clock_mhz!r}")
    return int(math.floor(clock_mhz * 1e6 / fps + 1e-6))


def _candidates(layer):
    keys = sorted(layer.folding)
    ranges = []
    for k in keys:
        n = {"pe": getattr(layer, "mh", None) or getattr(layer, "channels", None), "simd": getattr(layer, "mw", None)}[k]
        ranges.append(divisors(n))
    for combo in itertools.product(*ranges):
        yield dict(zip(keys, combo))


def search_folding(graph, fps, clock_mhz, fixed=()):
    """Least-LUT folding per layer with ``cycles() <= clock/fps``; ``fixed`` layers are left alone."""
    budget = cycle_budget(fps, clock_mhz)
    if budget < 1:
        raise FoldingError(f"target {fps:g} fps at {clock_mhz:g} MHz leaves less than one cycle per frame")
    for layer in graph.compute_layers:
        if layer.name in fixed or not layer.folding or layer.kind == "SlidingWindow":
            continue
        feeder = _feeder(graph, layer)
        if feeder is not None and feeder.name in fixed:
            feeder = None
        saved = dict(layer.folding)
        best = None
        fastest = None
        for f in _candidates(layer):
            layer.set_folding(**f)
            c, lut = layer.cycles(), layer.resources()["LUT"]
            if feeder is not None:
                _tie(feeder, layer)
                c, lut = max(c, feeder.cycles()), lut + feeder.resources()["LUT"]
            if fastest is None or c < fastest[0]:
                fastest = (c, f, feeder.simd if feeder is not None else None)
            if c <= budget:
                key = (lut, sum(f.values()), tuple(sorted(f.items())))
                if best is None or key < best[0]:
                    best = (key, f)
        if best is None:
            layer.set_folding(**saved)
            why = ""
            if feeder is not None:
                layer.set_folding(**fastest[1])
                feeder.simd = fastest[2]
                if feeder.cycles() >= layer.cycles():
                    why = (f" (its sliding window {feeder.name} streams one word of at most C={feeder.channels} "
                           f"channels per cycle: {feeder.cycles()} words per frame)")
                layer.set_folding(**saved)
            raise FoldingError(
                f"layer {layer.name}: target {fps:g} fps at {clock_mhz:g} MHz allows {budget} cycles per frame, "
                f"but the fastest folding ({', '.join(f'{k}={v}' for k, v in sorted(fastest[1].items()))}) needs {fastest[0]}{why}; "
                f"lower --fps or raise --clock-mhz")
        layer.set_folding(**best[1])
        if feeder is not None:
            _tie(feeder, layer)
    return graph
