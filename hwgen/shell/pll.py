"""PLL parameters from a board's oscillator to the build's clock target.

* ECP5 ``EHXPLLL`` (:func:`ecp5_pll`), feedback from CLKOP::

      f_pfd = f_in / CLKI_DIV          3.125 ≤ f_pfd ≤ 400 MHz     CLKI_DIV 1..128
      f_out = f_pfd * CLKFB_DIV        3.125 ≤ f_out ≤ 400 MHz     CLKFB_DIV 1..80
      f_vco = f_out * CLKOP_DIV        400 ≤ f_vco ≤ 800 MHz       CLKOP_DIV 1..128

  CLKOP_DIV puts the VCO nearest 600 MHz (ties: the faster VCO); ``CLKOP_CPHASE =
  (CLKOP_DIV - 1) // 2`` and CLKOP_FPHASE 0 set the output at 0°, as prjtrellis' ecppll does.

* iCE40 ``SB_PLL40_PAD`` (:func:`ice40_pll`), feedback SIMPLE::

      f_pfd = f_in / (DIVR + 1)        10 ≤ f_pfd ≤ 133 MHz        DIVR 0..15
      f_vco = f_pfd * (DIVF + 1)       533 ≤ f_vco ≤ 1066 MHz      DIVF 0..127
      f_out = f_vco / 2**DIVQ          16 ≤ f_out ≤ 275 MHz        DIVQ 1..6

  ``FILTER_RANGE`` from f_pfd (1: < 17 MHz, 2: < 26, 3: < 44, 4: < 66, 5: < 101, else 6),
  like icestorm's icepll.

Each returns the setting whose output is nearest the target (ties: the smallest input
divider), as a dict whose ``clock_hz`` is the actual frequency — what the UART divisor, the
timing constraint and the link's INFO use.  A target outside the PLL's output range is a
one-line :class:`HwgenError` naming what was asked and the range accepted.
"""

from fractions import Fraction

from ..errors import HwgenError

__all__ = ["ecp5_pll", "ice40_pll", "pll_for", "ECP5_RANGE_MHZ", "ICE40_RANGE_MHZ"]

ECP5_RANGE_MHZ = (3.125, 400.0)
ICE40_RANGE_MHZ = (16.0, 275.0)
_MHZ = 1_000_000


def _check(kind, f_in_hz, target_hz, lo, hi):
    """The target: a number in the PLL's output range (any such target has a nearest setting)."""
    if not isinstance(target_hz, (int, float)) or isinstance(target_hz, bool) or \
            not lo * _MHZ <= target_hz <= hi * _MHZ:
        shown = f"{target_hz / _MHZ:g} MHz" if isinstance(target_hz, (int, float)) else repr(target_hz)
        raise HwgenError(f"pll: {kind} cannot make a {shown} clock from {f_in_hz / _MHZ:g} MHz; "
                         f"accepted: {lo:g} to {hi:g} MHz (--clock-mhz)")


def ecp5_pll(f_in_hz, target_hz):
    """EHXPLLL settings for ``target_hz`` from ``f_in_hz`` (see the module docstring)."""
    lo, hi = ECP5_RANGE_MHZ
    _check("ECP5 EHXPLLL", f_in_hz, target_hz, lo, hi)
    best = None
    for clki in range(1, 129):
        pfd = Fraction(f_in_hz, clki)
        if not 3.125 * _MHZ <= pfd <= 400 * _MHZ:
            continue
        for fb in range(1, 81):
            out = pfd * fb
            if not lo * _MHZ <= out <= hi * _MHZ:
                continue
            err = abs(out - Fraction(target_hz))
            if best is not None and err >= best[1]:
                continue
            # the output divider putting the VCO nearest the middle of its range (ties: the faster VCO)
            ops = [op for op in range(1, 129) if 400 * _MHZ <= out * op <= 800 * _MHZ]
            if ops:
                op = min(ops, key=lambda op: (abs(out * op - 600 * _MHZ), -op))
                best = (out, err, clki, fb, op)
    out, _, clki, fb, op = best
    return {"primitive": "EHXPLLL", "CLKI_DIV": clki, "CLKFB_DIV": fb, "CLKOP_DIV": op,
            "CLKOP_CPHASE": (op - 1) // 2, "CLKOP_FPHASE": 0, "FEEDBK_PATH": "CLKOP",
            "pfd_hz": float(Fraction(f_in_hz, clki)), "vco_hz": float(out * op),
            "input_hz": f_in_hz, "clock_hz": float(out)}


def _filter_range(pfd_hz):
    for n, limit in enumerate((17, 26, 44, 66, 101), start=1):
        if pfd_hz < limit * _MHZ:
            return n
    return 6


def ice40_pll(f_in_hz, target_hz):
    """SB_PLL40_PAD settings (feedback SIMPLE) for ``target_hz`` from ``f_in_hz``."""
    lo, hi = ICE40_RANGE_MHZ
    _check("iCE40 SB_PLL40_PAD", f_in_hz, target_hz, lo, hi)
    best = None
    for divr in range(16):
        pfd = Fraction(f_in_hz, divr + 1)
        if not 10 * _MHZ <= pfd <= 133 * _MHZ:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 * _MHZ <= vco <= 1066 * _MHZ:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if not lo * _MHZ <= out <= hi * _MHZ:
                    continue
                err = abs(out - Fraction(target_hz))
                if best is None or err < best[1]:
                    best = (out, err, divr, divf, divq)
    out, _, divr, divf, divq = best
    pfd = Fraction(f_in_hz, divr + 1)
    return {"primitive": "SB_PLL40_PAD", "FEEDBACK_PATH": "SIMPLE", "DIVR": divr, "DIVF": divf, "DIVQ": divq,
            "FILTER_RANGE": _filter_range(pfd), "pfd_hz": float(pfd), "vco_hz": float(pfd * (divf + 1)),
            "input_hz": f_in_hz, "clock_hz": float(out)}


def pll_for(family, f_in_hz, target_hz):
    """The PLL of ``family`` (``ecp5`` or ``ice40``) for ``target_hz``."""
    if family == "ecp5":
        return ecp5_pll(f_in_hz, target_hz)
    if family == "ice40":
        return ice40_pll(f_in_hz, target_hz)
    raise HwgenError(f"pll: family must be ecp5 or ice40, not {family!r}")
