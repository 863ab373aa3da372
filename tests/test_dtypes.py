"""hwgen.dtypes: integer data types, their ranges, codes and the smallest type of a range."""

import numpy as np
import pytest

from hwgen.dtypes import DType, smallest_dtype
from hwgen.errors import HwgenError


@pytest.mark.parametrize("name,lo,hi,bits", [("BIPOLAR", -1, 1, 1), ("BINARY", 0, 1, 1), ("UINT1", 0, 1, 1),
                                             ("INT2", -2, 1, 2), ("UINT3", 0, 7, 3), ("INT8", -128, 127, 8)])
def test_dtype_ranges(name, lo, hi, bits):
    t = DType(name)
    assert (t.min, t.max, t.bits) == (lo, hi, bits)
    vals = np.array([-1, 1]) if name == "BIPOLAR" else np.arange(lo, hi + 1)
    assert np.array_equal(t.decode(t.encode(vals)), vals)


def test_dtype_error_message():
    with pytest.raises(HwgenError, match=r"^data type must be BIPOLAR, BINARY, UINTn or INTn with n in 1..128, not 'FLOAT32'$"):
        DType("FLOAT32")


@pytest.mark.parametrize("lo,hi,want", [(0, 0, "UINT1"), (0, 255, "UINT8"), (-1, 0, "INT1"), (-128, 127, "INT8"), (-129, 0, "INT9"), (-3, 200, "INT9")])
def test_smallest_dtype(lo, hi, want):
    assert smallest_dtype(lo, hi).name == want
