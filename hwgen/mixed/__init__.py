"""Hardware-aware mixed-precision bit allocation (issue 6).

``quantize``: a float PyTorch model → a Brevitas model at any per-layer
``(w_bits, a_bits)`` assignment.  ``sensitivity``: per-layer, per-bit-width
Hessian-trace × quantisation-perturbation sensitivity (Hutchinson), and a
measured one-layer-at-a-time accuracy drop as a cross-check.
"""

from .quantize import quant_layers, quantize, uniform
from .sensitivity import Sensitivity, hutchinson_trace, measured_drop, sensitivity

__all__ = ["quant_layers", "quantize", "uniform", "sensitivity", "Sensitivity", "hutchinson_trace", "measured_drop"]
