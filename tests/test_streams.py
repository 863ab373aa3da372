"""hwgen.streams: packing lanes into stream words (ARCHITECTURE §3)."""

import numpy as np
import pytest

from hwgen.dtypes import DType
from hwgen.streams import pack, tdata_bits, unpack


@pytest.mark.parametrize("dt,lanes", [("BIPOLAR", 3), ("INT3", 4), ("UINT8", 2), ("INT5", 12), ("INT17", 5)])
def test_pack_roundtrip(dt, lanes):
    rng = np.random.default_rng(0)
    t = DType(dt)
    shape = (2, lanes * 3)
    v = rng.choice([-1, 1], shape) if dt == "BIPOLAR" else rng.integers(t.min, t.max + 1, shape)
    frames = pack(v, t, lanes)
    assert len(frames) == 2 and len(frames[0]) == 3
    assert np.array_equal(unpack(frames, t, lanes, shape[1:]), v)
    assert tdata_bits(lanes, t) % 8 == 0 and tdata_bits(lanes, t) >= lanes * t.bits


def test_pack_lane_order():
    """Lane 0 in the least significant bits, two's complement (ARCHITECTURE §3)."""
    assert pack(np.array([[1, -1, 2]]), DType("INT3"), 3) == [[0b010_111_001]]
