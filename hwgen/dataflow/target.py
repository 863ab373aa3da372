"""Throughput targets: frames per second at a clock, resolved once into cycles per frame.

Everything downstream of the entry points (the folding search, the pinned-layer
check, explore, the reports) works in cycles per frame; :class:`Throughput` is
the one place that converts between frames/s and cycles, always with the same
floating-point operations so reported rates are the same floats everywhere.
"""

import math
from dataclasses import dataclass

from ..errors import FoldingError

__all__ = ["Throughput", "cycle_budget", "DEFAULT_CLOCK_MHZ", "DEFAULT_FPS"]

DEFAULT_CLOCK_MHZ = 100.0
DEFAULT_FPS = 1_000_000.0


@dataclass(frozen=True)
class Throughput:
    """``fps`` frames per second (None: no frame-rate target) at a ``clock_mhz`` MHz clock."""

    clock_mhz: float = DEFAULT_CLOCK_MHZ
    fps: float = None

    @classmethod
    def at_cycles(cls, cycles, clock_mhz=DEFAULT_CLOCK_MHZ):
        """The target of a pipeline taking ``cycles`` cycles per frame at ``clock_mhz``."""
        return cls(clock_mhz, cls(clock_mhz).fps_at(cycles))

    @property
    def cycles(self):
        """The cycle budget: the whole cycles per frame the target allows, ``clock / fps``
        (with a hair of slack for a rate given as exactly ``clock / n``)."""
        if self.fps is None or self.fps <= 0:
            raise FoldingError(f"the target frame rate must be a positive number, not {self.fps!r}")
        if self.clock_mhz is None or self.clock_mhz <= 0:
            raise FoldingError(f"the clock (MHz) must be a positive number, not {self.clock_mhz!r}")
        return int(math.floor(self.clock_mhz * 1e6 / self.fps + 1e-6))

    def fps_at(self, cycles):
        """Frames per second of a pipeline taking ``cycles`` cycles per frame at this clock."""
        return self.clock_mhz * 1e6 / cycles

    def describe(self):
        """The target in words, e.g. ``1e+06 fps at 100 MHz``."""
        return f"{self.fps:g} fps at {self.clock_mhz:g} MHz"


def cycle_budget(fps, clock_mhz):
    """Cycles per frame allowed by ``fps`` frames/s at ``clock_mhz`` (see :attr:`Throughput.cycles`)."""
    return Throughput(clock_mhz, fps).cycles
