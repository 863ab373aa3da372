"""hwgen: quantised neural networks to bit-exact FPGA dataflow accelerators.

Python API::

    hwgen.export_brevitas(module, example_input, "model.onnx")
    b = hwgen.build("model.onnx", "out/", fps=1e6, clock_mhz=100)
    r = hwgen.verify("out/", inputs=x, sim="verilator")
    assert r.ok and r.mismatches == 0
    rows = hwgen.explore("model.onnx", device="xc7z020", png="frontier.png")
"""

__version__ = "0.1.0"

from .errors import HwgenError
# The functions shadow their modules' names on purpose (hwgen.build, hwgen.verify):
# import them eagerly so the attribute is always the function.  Both modules
# import heavy dependencies (torch, qonnx, cocotb) only when called.
from .build import build  # noqa: E402
from .verify import verify  # noqa: E402
from .explore import explore  # noqa: E402

__all__ = ["HwgenError", "export_brevitas", "load", "build", "verify", "explore", "__version__"]


def __getattr__(name):          # keep `import hwgen` light: torch/qonnx load on first use
    if name == "export_brevitas":
        from .frontend import export_brevitas
        return export_brevitas
    if name == "load":
        from .frontend import load
        return load
    raise AttributeError(f"module 'hwgen' has no attribute {name!r}")
