"""The integer dataflow IR: typed hardware layers with exact integer references."""

from .base import LAYER_KINDS, Layer
from .branch import AddStreams, Concat, Duplicate
from .cmvau import ConstMVAU
from .fifo import FIFO, WidthConverter
from .labelselect import LabelSelect
from .graph import DataflowGraph
from .mvau import MVAU, accumulator_range
from .pool import GlobalPool, Pool
from .requant import Requant
from .swg import SlidingWindow, im2col
from .thresholding import Thresholding
from .vvau import VVAU

__all__ = ["LAYER_KINDS", "Layer", "MVAU", "ConstMVAU", "Thresholding", "FIFO", "WidthConverter",
           "DataflowGraph", "accumulator_range", "SlidingWindow", "im2col", "VVAU", "Pool", "GlobalPool",
           "Duplicate", "AddStreams", "Concat", "LabelSelect", "Requant"]
