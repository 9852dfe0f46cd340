"""The binarized-counting variants of the seed, by name, and their ``division_num`` rules.

A variant fixes how every binary convolution of a network computes its output (see
``docs/model.md`` "Variants" for the reading of the seed and why):

| variant | form | ``delta_c`` |
| --- | --- | --- |
| ``baseline`` | ``BN(scale_c * d)`` | (unused) |
| ``ptq`` | ``BN(b * delta_c)`` | ``scale_c * N`` (converted from a trained baseline) |
| ``simple_qat`` | ``BN(b * delta_c)`` | ``scale_c * N`` (trained with the binarized forward) |
| ``qat_cn_plus_alpha`` | ``BN(b * delta_c)`` | ``N / (C + alpha)`` |
| ``qat_cnk2_plus_alpha`` | ``BN(b * delta_c)`` | ``N / (C*k^2 + alpha)`` |
| ``qat_cn_times_alpha`` | ``BN(b * delta_c)`` | ``N / (C * alpha)`` |
| ``qat_cnk2_times_alpha`` | ``BN(b * delta_c)`` | ``N / (C*k^2 * alpha)`` |
| ``qat_minmax`` | ``BN(b * delta_c)`` | ``N / (C*k^2)`` = 1: the count's range ``[-N, N]`` min-max normalised to ``[-1, 1]`` |

``C`` is the layer's input channel count (``channel_num``), ``k`` its kernel size, ``N = C*k^2``,
``b = +1 if d >= alpha_c else -1`` the binarized count with its per-channel threshold ``alpha_c``.

The ``alpha`` of a ``division_num`` (``division_alpha``):

- ``"learned"`` (default): one learnable scalar per layer, initialised to ``alpha_init``;
- ``"fixed"``: the hyperparameter ``alpha_init``, not trained;
- ``"threshold"``: the layer's own per-channel count threshold ``alpha_c`` (the seed uses the
  same symbol for both).

A division number whose value would be below ``MIN_DIVISION`` is clamped to it, so ``delta_c``
stays positive and finite.
"""

from dataclasses import dataclass

from bincount.errors import BincountError

__all__ = ["VARIANTS", "QAT_VARIANTS", "DIVISION_RULES", "DIVISION_ALPHAS", "MIN_DIVISION",
           "VariantSpec", "variant_spec", "division_base"]

#: Every variant name, in the order of the seed's slides.
VARIANTS = ("baseline", "ptq", "simple_qat", "qat_cn_plus_alpha", "qat_cnk2_plus_alpha",
            "qat_cn_times_alpha", "qat_cnk2_times_alpha", "qat_minmax")
#: The five QAT-binarized-counting variants (the seed's ``division_num`` table).
QAT_VARIANTS = VARIANTS[3:]
#: ``division_num`` rules of :class:`bincount.model.layers.net_binary_conv.NetBinaryConv2d`.
DIVISION_RULES = ("one", "cn_plus_alpha", "cnk2_plus_alpha", "cn_times_alpha",
                  "cnk2_times_alpha", "minmax")
#: Readings of the ``alpha`` inside ``division_num``.
DIVISION_ALPHAS = ("learned", "fixed", "threshold")
#: Smallest ``division_num`` used (a clamp that keeps ``delta_c`` finite and positive).
MIN_DIVISION = 1e-3


@dataclass(frozen=True)
class VariantSpec:
    """How the binary convolutions of a variant are configured."""

    name: str
    form: str                 # "baseline" or "binarized"
    delta_uses_scale: bool    # delta_c = scale_c * N / division_num  (else N / division_num)
    division_rule: str        # one of DIVISION_RULES
    trained_binarized: bool   # the binarized forward is used in training (QAT)
    description: str


_SPECS = {
    "baseline": VariantSpec("baseline", "baseline", True, "one", False,
                            "baseline: y = BN(scale_c * d), one multiply + shift per output"),
    "ptq": VariantSpec("ptq", "binarized", True, "one", False,
                       "PTQ-binarized counting: a trained baseline with b * scale_c * N, "
                       "not retrained"),
    "simple_qat": VariantSpec("simple_qat", "binarized", True, "one", True,
                              "simple QAT-binarized counting: b * scale_c * N trained with "
                              "the straight-through count"),
    "qat_cn_plus_alpha": VariantSpec("qat_cn_plus_alpha", "binarized", False, "cn_plus_alpha",
                                     True, "QAT-binarized counting, division_num = C + alpha"),
    "qat_cnk2_plus_alpha": VariantSpec("qat_cnk2_plus_alpha", "binarized", False,
                                       "cnk2_plus_alpha", True,
                                       "QAT-binarized counting, division_num = C*k^2 + alpha"),
    "qat_cn_times_alpha": VariantSpec("qat_cn_times_alpha", "binarized", False,
                                      "cn_times_alpha", True,
                                      "QAT-binarized counting, division_num = C * alpha"),
    "qat_cnk2_times_alpha": VariantSpec("qat_cnk2_times_alpha", "binarized", False,
                                        "cnk2_times_alpha", True,
                                        "QAT-binarized counting, division_num = C*k^2 * alpha"),
    "qat_minmax": VariantSpec("qat_minmax", "binarized", False, "minmax", True,
                              "QAT-binarized counting, min-max normalisation "
                              "(division_num = C*k^2)"),
}


def variant_spec(name):
    """The :class:`VariantSpec` of variant ``name``; :class:`BincountError` if unknown."""
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        raise BincountError(f"unknown variant {name!r}; expected one of "
                            f"{', '.join(VARIANTS)}") from None


def division_base(rule, channels, k):
    """``(base, op)`` of a rule: ``division_num = base + alpha`` (``op == "+"``),
    ``base * alpha`` (``"*"``) or ``base`` (``None``, no alpha)."""
    n = channels * k * k
    table = {"one": (1.0, None), "cn_plus_alpha": (float(channels), "+"),
             "cnk2_plus_alpha": (float(n), "+"), "cn_times_alpha": (float(channels), "*"),
             "cnk2_times_alpha": (float(n), "*"), "minmax": (float(n), None)}
    try:
        return table[rule]
    except KeyError:
        raise BincountError(f"unknown division rule {rule!r}; expected one of "
                            f"{', '.join(DIVISION_RULES)}") from None
