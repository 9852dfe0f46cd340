"""Helpers shared by the gateware components: parameter checks and delay lines.

Every check raises :class:`bincount.errors.BincountError` (a ``ValueError``) whose one-line
message names the parameter, the bad value and the valid range, so that the command line can
print it as is.
"""

from amaranth.hdl import Signal

from bincount.errors import BincountError

__all__ = ["check_int", "check_choice", "delay", "delay_valid",
           "N_RANGE", "OUT_BITS_RANGE", "MUL_BITS_RANGE", "OFF_BITS_RANGE", "SHIFT_RANGE"]

#: Valid ranges (inclusive) of the block parameters.
N_RANGE = (1, 65536)
OUT_BITS_RANGE = (2, 64)
MUL_BITS_RANGE = (2, 48)
OFF_BITS_RANGE = (2, 96)
SHIFT_RANGE = (0, 40)


def check_int(name, value, valid_range):
    """Return ``value`` if it is an ``int`` within ``valid_range`` (inclusive), else raise."""
    lo, hi = valid_range
    if isinstance(value, bool) or not isinstance(value, int):
        raise BincountError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise BincountError(f"{name} must be in {lo}..{hi}, got {value!r}")
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``, else raise."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise BincountError(f"{name} must be one of {valid}, got {value!r}")
    return value


def delay(m, value, stages, name, en=None):
    """Delay ``value`` by ``stages`` clock cycles through registers without reset; with
    ``en`` (a 1-bit signal) the registers move only in cycles with ``en`` high.

    Returns the delayed signal (``value`` itself when ``stages`` is 0). The registers are
    named ``{name}_d1``, ``{name}_d2``, ...
    """
    for i in range(1, stages + 1):
        reg = Signal.like(value, name=f"{name}_d{i}", reset_less=True)
        if en is None:
            m.d.sync += reg.eq(value)
        else:
            with m.If(en):
                m.d.sync += reg.eq(value)
        value = reg
    return value


def delay_valid(m, valid, stages):
    """Delay a valid strobe by ``stages`` registers that the domain reset clears.

    The registers are named ``valid_d1``, ``valid_d2``, ...
    """
    for i in range(1, stages + 1):
        reg = Signal(name=f"valid_d{i}")
        m.d.sync += reg.eq(valid)
        valid = reg
    return valid


def check_slices(lanes, slice_lanes):
    """Check ``lanes`` (2..1024) and ``slice_lanes`` (a divisor of ``lanes`` below it) of a
    lane serializer or gatherer; returns ``S = lanes / slice_lanes``, the slices of a group."""
    check_int("lanes", lanes, (2, 1024))
    check_int("slice_lanes", slice_lanes, (1, lanes - 1))
    if lanes % slice_lanes:
        raise BincountError(f"slice_lanes must divide lanes = {lanes}, got {slice_lanes}")
    return lanes // slice_lanes
