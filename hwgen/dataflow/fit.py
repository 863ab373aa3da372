"""Whether a dataflow graph, as folded, fits any device hwgen lists (:data:`hwgen.devices.DEVICES`)."""

from ..devices import DEVICES, device, resources_of, unit_names
from ..progress import warn
from .estimate import graph_resources

__all__ = ["beyond_devices", "warn_beyond_devices"]


def beyond_devices(graph):
    """None when ``graph``'s estimated resources fit at least one device of :data:`DEVICES` (at
    full capacity), else a one-line message naming, per family, the nearest device and what it
    lacks (resource, needed, capacity)."""
    parts = []
    for family in dict.fromkeys(d[0] for d in DEVICES.values()):
        used = graph_resources(graph, family)
        u = unit_names(family)
        best = None
        for name in DEVICES:
            d = device(name)
            if d["family"] != family:
                continue
            over = [(k, used[k], d[k]) for k in resources_of(family) if used[k] > d[k]]
            if not over:
                return None
            key = (len(over), sum(n / max(c, 1) for _, n, c in over))
            if best is None or key < best[0]:
                best = (key, name, over)
        if best is not None:
            _, name, over = best
            parts.append(f"{name} " + ", ".join(f"{n:,} {u[k]} > {c:,}" for k, n, c in over))
    return ("the folding fits no device hwgen lists (estimate; nearest per family: " + "; ".join(parts)
            + "): it builds, but as folded it fits none of them")


def warn_beyond_devices(graph):
    """A :func:`hwgen.progress.warn` line when ``graph`` fits no listed device (:func:`beyond_devices`)."""
    msg = beyond_devices(graph)
    if msg is not None:
        warn(msg)
    return msg
