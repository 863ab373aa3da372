"""Pareto pruning: of options with the same lanes, keep those no other matches or beats on every resource."""

__all__ = ["fronts"]


def fronts(items, order, group=lambda o: (o.lin, o.lout), cost=lambda o: o.res):
    """Per ``group`` (first seen first), the items taken in ``order`` that no item kept before them
    matches or beats on every component of ``cost``.  With ``order`` leading on cycles, that is the
    front over cycles and resources together (an earlier item is never slower)."""
    groups = {}
    for o in items:
        groups.setdefault(group(o), []).append(o)
    out = []
    for g in groups.values():
        g.sort(key=order)
        front = []
        for o in g:
            c = cost(o)
            if not any(all(a <= b for a, b in zip(cost(q), c)) for q in front):
                front.append(o)
        out.append(front)
    return out
