"""Frontend: Brevitas export and loading of any QONNX file."""

from .export import export_brevitas
from .load import load

__all__ = ["export_brevitas", "load"]
