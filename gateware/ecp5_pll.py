"""ECP5 PLL (``EHXPLLL``): one output clock from a reference clock, with its divider search.

The PLL multiplies the reference by the feedback divider and divides by the reference divider;
the output ``CLKOP`` is the VCO divided by ``CLKOP_DIV``; feedback is taken from ``CLKOP``::

    f_pfd = f_in / CLKI_DIV                         3.125 .. 400 MHz  (phase detector)
    f_out = f_pfd * CLKFB_DIV                       10 .. 400 MHz
    f_vco = f_out * CLKOP_DIV                       400 .. 800 MHz
    CLKI_DIV 1..128, CLKFB_DIV 1..80, CLKOP_DIV 1..128

(ranges: Lattice ECP5 family data sheet, sysCLOCK PLL timing; the divider limits are those of the
``EHXPLLL`` primitive). :func:`pll_params` tries every legal ``(CLKI_DIV, CLKFB_DIV, CLKOP_DIV)``
in that order, in exact rational arithmetic, and keeps the one with the smallest output error;
among equal errors the one whose VCO is nearest 600 MHz (the middle of its range), then the first
found: the rule of Project Trellis' ``ecppll``, so both give the same dividers (a test compares
them with ``yowasp-ecppll``). ``CLKOP_CPHASE = CLKOP_DIV // 2`` (half an output period, the
static phase ``ecppll`` and Lattice's tools set; with feedback from ``CLKOP`` it does not move
the output's frequency or its phase relative to ``CLKI``), ``CLKOP_FPHASE = 0``.

:class:`Ecp5Pll` instantiates the primitive: ``clk_in`` -> ``clk_out``, ``locked`` high once the
loop has locked (no reset input: the PLL starts at configuration).
"""

from dataclasses import dataclass
from fractions import Fraction

from amaranth.hdl import Elaboratable, Instance, Module, Signal

from bincount.errors import BincountError

__all__ = ["PllParams", "pll_params", "Ecp5Pll", "PFD_MHZ", "VCO_MHZ", "OUT_MHZ", "IN_MHZ"]

#: Legal ranges (MHz, inclusive) of the phase detector, the VCO, the output and the input.
PFD_MHZ = (Fraction("3.125"), Fraction(400))
VCO_MHZ = (Fraction(400), Fraction(800))
OUT_MHZ = (Fraction(10), Fraction(400))
IN_MHZ = (Fraction(8), Fraction(400))
_VCO_MID = Fraction(600)


@dataclass(frozen=True)
class PllParams:
    """Dividers of one ``EHXPLLL`` and the frequencies they give (MHz, exact fractions)."""
    f_in: Fraction
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_pfd(self):
        return self.f_in / self.clki_div

    @property
    def f_out(self):
        return self.f_pfd * self.clkfb_div

    @property
    def f_vco(self):
        return self.f_out * self.clkop_div

    @property
    def clkop_cphase(self):
        return self.clkop_div // 2

    def as_dict(self):
        """JSON-ready: dividers, phase, and the frequencies in MHz (floats)."""
        return {"clki_div": self.clki_div, "clkfb_div": self.clkfb_div,
                "clkop_div": self.clkop_div, "clkop_cphase": self.clkop_cphase,
                "clkop_fphase": 0, "f_in_mhz": float(self.f_in),
                "f_pfd_mhz": float(self.f_pfd), "f_vco_mhz": float(self.f_vco),
                "f_out_mhz": float(self.f_out)}


def _mhz(name, value):
    try:
        v = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise BincountError(f"{name} {value!r} is not a number of MHz") from None
    return v


def pll_params(f_in_mhz, f_out_mhz):
    """The :class:`PllParams` nearest ``f_out_mhz`` from ``f_in_mhz`` (module docstring);
    :class:`BincountError` when either frequency is outside the PLL's range."""
    f_in, want = _mhz("input clock", f_in_mhz), _mhz("clock", f_out_mhz)
    if not IN_MHZ[0] <= f_in <= IN_MHZ[1]:
        raise BincountError(f"PLL input {float(f_in):g} MHz is out of range; the ECP5 PLL takes "
                            f"{float(IN_MHZ[0]):g}..{float(IN_MHZ[1]):g} MHz")
    if not OUT_MHZ[0] <= want <= OUT_MHZ[1]:
        raise BincountError(f"clock {float(want):g} MHz is out of range; the ECP5 PLL gives "
                            f"{float(OUT_MHZ[0]):g}..{float(OUT_MHZ[1]):g} MHz")
    best, best_key = None, None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not PFD_MHZ[0] <= pfd <= PFD_MHZ[1]:
            continue
        for fb in range(1, 81):
            out = pfd * fb
            if not OUT_MHZ[0] <= out <= OUT_MHZ[1]:
                continue
            for op in range(1, 129):
                vco = out * op
                if not VCO_MHZ[0] <= vco <= VCO_MHZ[1]:
                    continue
                key = (abs(out - want), abs(vco - _VCO_MID))
                if best_key is None or key < best_key:
                    best, best_key = PllParams(f_in, clki, fb, op), key
    if best is None:
        raise BincountError(f"no ECP5 PLL setting gives {float(want):g} MHz from "
                            f"{float(f_in):g} MHz")
    return best


class Ecp5Pll(Elaboratable):
    """One ``EHXPLLL`` with the dividers of ``params`` (a :class:`PllParams`): ``clk_in`` ->
    ``clk_out`` (feedback from ``CLKOP``), ``locked``."""

    def __init__(self, params):
        self.params = params
        self.clk_in = Signal(name="pll_clk_in")
        self.clk_out = Signal(name="pll_clk_out")
        self.locked = Signal(name="pll_locked")

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{float(p.f_in):g}",
            a_FREQUENCY_PIN_CLKOP=f"{float(p.f_out):g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p.clkop_div,
            p_CLKOP_CPHASE=p.clkop_cphase, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p.clkfb_div,
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=self.clk_out, i_CLKFB=self.clk_out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=self.locked)
        return m
