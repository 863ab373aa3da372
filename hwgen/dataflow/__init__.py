"""The integer dataflow IR: typed hardware layers with exact integer references."""

from .base import LAYER_KINDS, Layer
from .fifo import FIFO, WidthConverter
from .graph import DataflowGraph
from .mvau import MVAU, accumulator_range
from .thresholding import Thresholding

__all__ = ["LAYER_KINDS", "Layer", "MVAU", "Thresholding", "FIFO", "WidthConverter",
           "DataflowGraph", "accumulator_range"]
