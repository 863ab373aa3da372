"""FINN's CNV topology with FINN's published foldings: FINN's own cycle counts.

The analytic bottleneck of CNV-w1a1 at FINN's folding is 32,768 cycles per
frame (the two 512-wide FC layers), of CNV-w2a2 115,200; the sliding windows,
pools and width converters must never be the bottleneck, and the measured
interval in RTL simulation must be within 2 % of the estimate.
"""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

pytestmark = pytest.mark.filterwarnings("ignore")

FINN_BOTTLENECK = {"w1a1": 32768, "w2a2": 115200}


@pytest.fixture(scope="module")
def cnv_onnx(tmp_path_factory):
    import cnv
    d = tmp_path_factory.mktemp("cnv")
    cache = {}

    def get(variant):
        if variant not in cache:
            cache[variant] = str(d / f"cnv_{variant}.onnx")
            cnv.export_cnv(variant, cache[variant])
        return cache[variant]
    return get


@pytest.mark.parametrize("variant", ["w1a1", "w2a2", "mixed"])
def test_cnv_estimate_matches_finn(cnv_onnx, variant):
    """Pure Python: lowering + FINN's folding give FINN's bottleneck, and no plumbing layer is slower
    (the folding search may give a window generator fewer lanes than its consumer when that is
    cheaper and exactly as fast: equal cycles are allowed)."""
    import cnv

    from hwgen.build import run_until
    _, g = run_until(cnv_onnx(variant), "size FIFOs", folding=cnv.FOLDINGS[variant], clock_mhz=100.0)
    assert [l.name for l in g.layers if l.kind == "MVAU"] == [f"conv{i}" for i in range(6)] + ["fc0", "fc1", "fc2"]
    want = FINN_BOTTLENECK["w2a2" if variant == "mixed" else variant]
    assert g.cycles() == want
    slowest_other = max(l.cycles() for l in g.layers if l.kind != "MVAU")
    assert slowest_other <= want


@pytest.mark.sim
@pytest.mark.long
@pytest.mark.parametrize("variant", ["w1a1", pytest.param("w2a2", marks=pytest.mark.slow), pytest.param("mixed", marks=pytest.mark.slow)])
def test_cnv_finn_folding_in_rtl(cnv_onnx, variant, tmp_path):
    import cnv

    import hwgen
    b = hwgen.build(cnv_onnx(variant), tmp_path / "cnv", folding=cnv.FOLDINGS[variant], progress=False)
    r = hwgen.verify(b.out_dir, frames=3, sim="verilator", seed=3, progress=False)
    print(r.table())
    assert r.ok and r.mismatches == 0
    np.testing.assert_array_equal(r.outputs_int, r.expected_int)
    want = FINN_BOTTLENECK["w2a2" if variant == "mixed" else variant]
    assert b.cycles_per_frame == want
    assert abs(r.cycles_per_frame - want) <= 0.02 * want
