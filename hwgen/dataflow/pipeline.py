"""The pipeline policy of the IR: how many register stages a layer's hardware has.

A layer with a ``pipeline`` field (MVAU, VVAU, Thresholding, Requant,
AddStreams, SlidingWindow) states it as adder-tree levels per register stage:
:func:`pipeline_levels`. Its output latency (``layer.latency()``), its cost terms
and the hardware generator all read it from here.
"""

import numpy as np

from ..errors import HwgenError

__all__ = ["DEFAULT_PIPELINE", "pipeline_levels", "tree_split_points"]

#: Adder-tree levels per register stage of a layer whose ``pipeline`` is unset (``None``/"auto").
DEFAULT_PIPELINE = 2


def pipeline_levels(layer, default=DEFAULT_PIPELINE):
    """The pipelining of ``layer`` as adder-tree levels per register stage (0: none).

    ``layer.pipeline`` may be ``None`` or ``"auto"`` (``default``, :data:`DEFAULT_PIPELINE`), ``"none"``
    or ``0`` (no extra registers: the combinational stages of the unpipelined design), or a
    positive integer ``k``: memory outputs and operands registered before any arithmetic,
    products registered, adder trees cut by a register every ``k`` levels (the accumulator's
    adder counting as the last level), threshold comparison and count/encoding in separate
    stages. Only the MVAU's adder tree depends on ``k``; the other kinds are simply
    pipelined (or not). On ECP5 (speed 8) ``k = 2`` reaches 150 MHz, ``k = 3`` about 149 MHz
    on the digits MLP (SIMD 32, W4A4)."""
    p = getattr(layer, "pipeline", None)
    if isinstance(p, str) and p.isdigit():
        p = int(p)
    if p is None or p == "auto":
        return default
    if p == "none" or p is False:
        return 0
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0:
        raise HwgenError(f"layer {layer.name}: pipeline must be 'auto', 'none' or a non-negative integer, "
                         f"not {p!r}")
    return int(p)


def tree_split_points(n, levels, extra=1):
    """Tree levels after which a balanced adder tree of ``n`` values is registered so that
    no stage holds more than ``levels`` adder levels, ``extra`` adder levels following the
    tree in the last stage (the accumulator); no split when ``levels`` is 0."""
    depth = max(0, (n - 1).bit_length())
    if not levels:
        return set()
    return {d for d in range(1, depth + 1) if (depth + extra - d) % levels == 0}
