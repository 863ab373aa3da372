"""hwgen.lower.thresholds: quantiser chains turned into per-channel thresholds."""

import numpy as np
import pytest

from hwgen.lower.thresholds import segment_thresholds


@pytest.mark.parametrize("mode", ["ROUND", "FLOOR", "CEIL", "ROUND_TO_ZERO", "HALF_UP", "HALF_DOWN"])
@pytest.mark.parametrize("sign", [1, -1, 0])
def test_thresholds_match_brute_force(mode, sign):
    """Binary-searched thresholds reproduce quant(ops(a)) at every integer of the range; the
    reference is numpy for the ops and qonnx's own ``quant`` (its rounding modes) for the quantiser."""
    from qonnx.custom_op.general.quant import quant

    rng = np.random.default_rng(7)
    C = 5
    lo, hi = rng.integers(-60, -1, C), rng.integers(1, 60, C)
    mul, add = sign * rng.uniform(0.05, 0.4, C), rng.normal(0, 1, C)
    ops = [{"op": "mul", "value": mul}, {"op": "add", "value": add}, {"op": "relu"} if sign >= 0 else {"op": "min", "value": 2.0}]
    q = {"scale": 0.25, "zero_point": 0.0, "qmin": -4, "qmax": 3, "rounding_mode": mode}
    T, s, base, step = segment_thresholds(ops, q, lo, hi)
    qonnx_mode = {"ROUND_TO_ZERO": "DOWN"}.get(mode, mode)
    for c in range(C):
        a = np.arange(lo[c], hi[c] + 1)
        y = a * mul[c] + add[c]
        y = np.maximum(y, 0.0) if sign >= 0 else np.minimum(y, 2.0)
        want = quant(y, np.float64(0.25), np.float64(0.0), np.float64(3), 1, 0, qonnx_mode) / 0.25   # INT3: -4..3
        got = base + step * ((s[c] * a)[:, None] >= T[c][None, :]).sum(1)
        assert np.array_equal(got, want), (c, mode)
