"""Hardware-aware mixed-precision bit allocation (issue 6).

``quantize``: a float PyTorch model → a Brevitas model at any per-layer
``(w_bits, a_bits)`` assignment.  ``sensitivity``: per-layer, per-bit-width
Hessian-trace × quantisation-perturbation sensitivity (Hutchinson), and a
measured one-layer-at-a-time accuracy drop as a cross-check.  ``Residual(body, act)``: a
residual block (``act(x + body(x))``) for float models.  ``to_float``: a trained Brevitas
model → the float model and assignment a search starts from.
"""

from .from_brevitas import Start, copy_scales, to_float
from .quantize import quant_layers, quantize, uniform
from .sensitivity import Sensitivity, hutchinson_trace, measured_drop, sensitivity

__all__ = ["Residual", "quant_layers", "quantize", "uniform", "sensitivity", "Sensitivity", "hutchinson_trace",
           "measured_drop", "to_float", "Start", "copy_scales"]


def __getattr__(name):          # Residual is an nn.Module: made on first use, torch loads then
    if name == "Residual":
        from .quantize import _residual_class
        return _residual_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
