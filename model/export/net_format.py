"""Fixed-point formats of the whole-network integer export (docs/conventions.md "Whole network").

All values are signed two's-complement integers; ``*_frac`` is the number of fractional bits
(real value = integer / 2**frac). Every conversion saturates to the signed ``*_bits`` range;
rounding is ``round_half_up`` (floor(v + 1/2), float64).
"""

from dataclasses import asdict, dataclass, fields

from bincount.errors import BincountError

__all__ = ["NetFormat", "DEFAULT_FORMAT"]


@dataclass(frozen=True)
class NetFormat:
    """Bit widths of every tensor of the integer network."""

    in_bits: int = 12         # quantised input image (normalised), in_frac fractional bits
    in_frac: int = 8
    res_bits: int = 16        # residual stream, binary-layer outputs, shortcut, RSign/RPReLU biases
    res_frac: int = 8
    mul_bits: int = 18        # baseline M_c of a binary layer
    off_bits: int = 32        # baseline O_c of a binary layer
    real_w_bits: int = 10     # weights of the real convs (stem, 1x1 downsample) and the FC
    real_mul_bits: int = 18   # requantising multiplier M_c of stem / downsample / FC
    real_off_bits: int = 48   # their offset O_c (bias and BN folded, rounding bias included)
    slope_bits: int = 16      # trained RPReLU slope
    slope_frac: int = 12
    logit_bits: int = 32      # logits
    logit_frac: int = 16

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise BincountError(f"format field {f.name} = {v!r}; expected an integer")
        pairs = (("in_bits", "in_frac"), ("res_bits", "res_frac"), ("slope_bits", "slope_frac"),
                 ("logit_bits", "logit_frac"))
        for bits, frac in pairs:
            b, q = getattr(self, bits), getattr(self, frac)
            if not (2 <= b <= 32 and 0 <= q < b):
                raise BincountError(f"format {bits}={b} {frac}={q}; expected 2 <= bits <= 32 "
                                    f"and 0 <= frac < bits")
        for name, lo, hi in (("mul_bits", 2, 32), ("off_bits", 2, 48), ("real_w_bits", 2, 16),
                             ("real_mul_bits", 2, 32), ("real_off_bits", 2, 56)):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise BincountError(f"format {name}={v}; expected {lo}..{hi}")

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise BincountError("formats must be a JSON object")
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise BincountError(f"formats fields {sorted(d)}; expected {sorted(names)}")
        return cls(**d)


DEFAULT_FORMAT = NetFormat()
