"""What the search says when a target or a device cannot be met: IR facts, and what a user can change."""

import copy
import math

from ...devices import unit_names
from ...errors import FoldingError
from ..base import MAX_ROM_WORD_BITS

__all__ = ["fmt_res", "too_slow_error", "too_few_cycles_error", "no_fit_error", "target_no_fit_error"]

LOWER_TARGET = "lower the target or raise the clock"
LARGER_DEVICE = "choose a larger device or raise the limits"


def fmt_res(res, family):
    """``res`` in ``family``'s units, e.g. ``1,234 LUT, 567 FF, 2 BRAM18, 0 DSP``."""
    u = unit_names(family)
    return ", ".join(f"{res.get(k, 0):,} {u[k]}" for k in u)


def _fmt_fold(fold):
    return ", ".join(f"{k}={v}" for k, v in sorted(fold.items()))


def _lanes(fold):
    return math.prod(fold.values())


def _rom_cap(layer, what, fold):
    """What the ROM word cap allows, in the layer's own terms (for an error message)."""
    if what == "weight":
        n = MAX_ROM_WORD_BITS // layer.wdt.bits
        return f"{n:,} lanes of {layer.wdt} weights"
    per_pe = layer.rom_words()["threshold"] // layer.pe
    return f"PE={MAX_ROM_WORD_BITS // per_pe:,} with {layer.n_thresholds} thresholds of {per_pe // max(1, layer.n_thresholds)} bits per channel"


def _cap_error(layer, u, target, fastest):
    """The message when only foldings over the ROM word cap meet ``target`` (a
    :class:`~hwgen.dataflow.target.Throughput`), else None."""
    budget = target.cycles
    meeting = [c for c in u.capped if c[1] <= budget]
    if not meeting:
        return None
    fold, _, over = min(meeting, key=lambda c: (_lanes(c[0]), c[1], sorted(c[0].items())))
    what, bits = max(over.items(), key=lambda kv: kv[1])
    probe = copy.copy(layer)
    probe.set_folding(**fold)
    return FoldingError(
        f"layer {layer.name}: target {target.describe()} allows {budget:,} cycles per frame, which needs "
        f"at least {_lanes(fold):,} lanes ({_fmt_fold(fold)}), a {bits:,}-bit {what} ROM word; hwgen's cap is "
        f"{MAX_ROM_WORD_BITS:,} bits per ROM word ({_rom_cap(probe, what, fold)}), so the fastest folding "
        f"({_fmt_fold(fastest.fold)}: {_lanes(fastest.fold):,} lanes) needs {fastest.cycles:,}; {LOWER_TARGET}")


def too_slow_error(u, target):
    """The error for the unit ``u`` no option of which meets ``target``."""
    layer, feeder = u.layer, u.swg
    fastest = min(u.opts, key=lambda o: o.cycles)
    capped = _cap_error(layer, u, target, fastest)
    if capped is not None:
        return capped
    why = ""
    if feeder is not None and fastest.sc >= fastest.lc:
        why = (f" (its sliding window {feeder.name} streams C={feeder.channels} channels a cycle: "
               f"{fastest.sc} words per frame)")
    return FoldingError(
        f"layer {layer.name}: target {target.describe()} allows {target.cycles} cycles per frame, "
        f"but the fastest folding ({', '.join(f'{k}={v}' for k, v in sorted(fastest.fold.items()))}) needs {fastest.cycles}{why}; "
        f"{LOWER_TARGET}")


def too_few_cycles_error(target):
    """The error for a target faster than one frame a cycle."""
    return FoldingError(f"target {target.describe()} leaves less than one cycle per frame")


def target_no_fit_error(target, budget, least, fit, family):
    """The error for a ``target`` whose least-LUT folding ``least`` is over ``budget`` (a
    :class:`hwgen.devices.Budget`); ``fit``: the fastest folding that fits, or None."""
    need = (f"target {target.describe()} ({target.cycles:,} cycles per frame) does not fit {budget.describe()}: "
            f"the least-LUT folding meeting it needs {fmt_res(least.resources, family)} ({budget.describe_over(least.resources)})")
    if fit is None:
        return FoldingError(f"{need}; no folding fits, not even the slowest; {LARGER_DEVICE}")
    return FoldingError(f"{need}; the fastest folding that fits reaches {target.fps_at(fit.cycles):,.0f} fps "
                        f"({fit.cycles:,} cycles per frame, {fmt_res(fit.resources, family)}); "
                        f"lower the target or choose a larger device")


def no_fit_error(budget, slow, clock, family):
    """The error when even ``slow``, the slowest folding, is over ``budget``; ``clock``: a
    :class:`~hwgen.dataflow.target.Throughput` giving the clock."""
    return FoldingError(f"no folding fits {budget.describe()}: even the slowest ({slow.cycles:,} cycles per frame, "
                        f"{clock.fps_at(slow.cycles):,.0f} fps at {clock.clock_mhz:g} MHz) needs {fmt_res(slow.resources, family)} "
                        f"({budget.describe_over(slow.resources)}); {LARGER_DEVICE}")
