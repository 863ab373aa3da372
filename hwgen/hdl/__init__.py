"""RTL generation: one Amaranth :class:`~amaranth.lib.wiring.Component` per IR layer kind.

Every component is built from its IR layer and has two
:mod:`amaranth.lib.stream` ports, ``i`` (``in_lanes`` lanes of ``idt``) and
``o`` (``out_lanes`` lanes of ``odt``), with the lane layout of ARCHITECTURE
§3. :class:`Top` stitches a :class:`~hwgen.dataflow.DataflowGraph` behind
AXI4-Stream ports and :func:`to_verilog` emits it.
"""

from .dwc import WidthConverterComponent
from .fifo import FIFOComponent
from .mvau import MVAUComponent
from .pool import GlobalPoolComponent, PoolComponent
from .swg import SlidingWindowComponent
from .thresholding import ThresholdingComponent
from .top import COMPONENTS, Top, component_for, to_verilog
from .vvau import VVAUComponent

__all__ = [
    "MVAUComponent", "ThresholdingComponent", "FIFOComponent", "WidthConverterComponent",
    "SlidingWindowComponent", "VVAUComponent", "PoolComponent", "GlobalPoolComponent",
    "COMPONENTS", "component_for", "Top", "to_verilog",
]
