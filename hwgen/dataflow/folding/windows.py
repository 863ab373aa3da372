"""Window generators follow their consumer: a SlidingWindow streams as many lanes as the layer it feeds reads."""

import math

__all__ = ["feeder", "tie", "tie_windows"]


def feeder(graph, layer):
    """The SlidingWindow feeding ``layer`` directly, if any."""
    i = graph.layers.index(layer)
    if i > 0 and graph.layers[i - 1].kind == "SlidingWindow":
        return graph.layers[i - 1]
    return None


def tie(swg, consumer):
    """A window generator streams as many lanes as its consumer reads where it can."""
    lanes = consumer.in_lanes
    swg.simd = lanes if (swg.depthwise or swg.channels % lanes == 0) else math.gcd(lanes, swg.channels)


def tie_windows(graph, explicit=()):
    """Give every SlidingWindow not named in ``explicit`` the SIMD of its consumer."""
    for i, l in enumerate(graph.layers[:-1]):
        if l.kind == "SlidingWindow" and l.name not in explicit:
            tie(l, graph.layers[i + 1])
    return graph
