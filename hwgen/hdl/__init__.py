"""RTL generation: one Amaranth :class:`~amaranth.lib.wiring.Component` per IR layer kind.

Every component is built from its IR layer and has
:mod:`amaranth.lib.stream` ports with the lane layout of ARCHITECTURE §3:
``i`` (``in_lanes`` lanes of ``idt``) and ``o`` (``out_lanes`` lanes of
``odt``) for single-stream kinds; a kind reading several streams names them
``i0, i1, …`` (AddStreams, Concat), one writing several ``o0, o1, …``
(Duplicate). :class:`Top` stitches a :class:`~hwgen.dataflow.DataflowGraph`
(a chain or a DAG) behind AXI4-Stream ports and :func:`to_verilog` emits it;
parameter ROMs too big to emit inline become ``$readmemh`` files (:mod:`.rom`).
"""

from .branch import AddStreamsComponent, ConcatComponent, DuplicateComponent
from .cmvau import ConstMVAUComponent
from .dwc import WidthConverterComponent
from .fifo import FIFOComponent
from .labelselect import LabelSelectComponent
from .mvau import MVAUComponent
from .pool import GlobalPoolComponent, PoolComponent
from .swg import SlidingWindowComponent
from .thresholding import ThresholdingComponent
from .top import COMPONENTS, Top, component_for, input_port, output_port, to_verilog
from .vvau import VVAUComponent

__all__ = [
    "MVAUComponent", "ConstMVAUComponent", "ThresholdingComponent", "FIFOComponent", "WidthConverterComponent",
    "SlidingWindowComponent", "VVAUComponent", "PoolComponent", "GlobalPoolComponent",
    "DuplicateComponent", "AddStreamsComponent", "ConcatComponent", "LabelSelectComponent",
    "COMPONENTS", "component_for", "input_port", "output_port", "Top", "to_verilog",
]
