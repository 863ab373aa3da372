"""hwgen: quantised neural networks to bit-exact FPGA dataflow accelerators.

Python API::

    hwgen.export_brevitas(module, example_input, "model.onnx")
    b = hwgen.build("model.onnx", "out/", fps=1e6, clock_mhz=100)
    r = hwgen.verify("out/", inputs=x, sim="verilator")
    assert r.ok and r.mismatches == 0
    rows = hwgen.explore("model.onnx", device="xc7z020", png="frontier.png")
    res = hwgen.search(float_model, (x_train, y_train, x_test, y_test), out="search/")
"""

__version__ = "0.1.0"

from .errors import HwgenError
# The functions shadow their modules' names on purpose (hwgen.build, hwgen.verify):
# import them eagerly so the attribute is always the function.  Both modules
# import heavy dependencies (torch, qonnx, cocotb) only when called.
from .build import build
from .verify import verify
from .explore import explore

__all__ = ["HwgenError", "export_brevitas", "load", "build", "verify", "explore", "search", "__version__"]


def search(float_model, data, **options):
    """Mixed-precision bit allocation, proven in RTL: see :func:`hwgen.mixed.search.search`."""
    from .mixed.search import search as run
    return run(float_model, data, **options)


def __getattr__(name):          # keep `import hwgen` light: torch/qonnx load on first use
    if name == "export_brevitas":
        from .frontend import export_brevitas
        return export_brevitas
    if name == "load":
        from .frontend import load
        return load
    raise AttributeError(f"module 'hwgen' has no attribute {name!r}")
