"""Comparisons with the float references that respect ARCHITECTURE §2's rule on ties."""

import numpy as np

__all__ = ["assert_matches_brevitas"]


def assert_matches_brevitas(model, x, out, tol):
    """IR floats = Brevitas' float32 outputs; where they differ, Brevitas re-run in float64
    must agree with the IR (the float32 run sat on a rounding boundary: a tie, ARCHITECTURE §2)."""
    import copy

    import torch
    with torch.no_grad():
        o = model(torch.from_numpy(x))
        tb = (o.value if hasattr(o, "value") else o).numpy()
    bad = np.nonzero(np.any(np.abs(out - tb) > tol, axis=tuple(range(1, out.ndim))))[0]
    if len(bad):
        m64 = copy.deepcopy(model).double()
        with torch.no_grad():
            o = m64(torch.from_numpy(x[bad].astype(np.float64)))
            t64 = (o.value if hasattr(o, "value") else o).numpy()
        np.testing.assert_allclose(out[bad], t64, rtol=0, atol=tol,
                                   err_msg=f"frames {bad.tolist()} differ from Brevitas in float64 too: not a tie")
        print(f"{len(bad)} frame(s) on a float32 rounding tie of Brevitas: float64 Brevitas agrees with the IR")
