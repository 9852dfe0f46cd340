"""``BinaryConv2d``: binary k x k convolution with BN, in baseline or binarized-counting form.

Forward (eval or train), for input ``x [B, Cin, H, W]`` and real weights ``W [Cout, Cin, k, k]``:

    xb = sign(x)            (+1 where x >= 0; padded with the constant +1, p = k // 2)
    wb = sign(W)
    d  = conv(xb, wb)       (= 2*count - N, exact integers, N = k*k*Cin)
    scale_c = mean |W_c|    (detached, as in ReActNet)

    form "baseline":   y = BN(scale_c * d)
    form "binarized":  b = +1 if d >= alpha_c else -1;   y = BN(b * delta_c)
                       delta_c = (scale_c if delta_uses_scale else 1) * N / division_num

Gradients (straight-through, see :mod:`bincount.model.layers.ste`): ``dsign(x)/dx = 1{|x| <= 1}``
for activations and weights; ``db/dd = -db/dalpha_c = 1{|d - alpha_c| <= N} / N``.

With the defaults (``division_num = 1``, ``delta_uses_scale = True``) ``delta_c =
scale_c * N``, the seed's PTQ reading; the QAT variants set ``division_num`` (and
``delta_uses_scale = False`` for the seed's ``delta = N / division_num``). Since BN follows,
delta only sets the scale at which BN sees the two values ``+-delta_c``.

The integer (exported) result is :meth:`BinaryConv2d.fixed_outputs`: torch ``int64`` ops on
the exported integers, equal bit for bit to :func:`bincount.model.export.fixed_point.reference_layer`.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bincount.model.export import fixed_point as fp
from bincount.model.layers.ste import count_ste, sign_ste

__all__ = ["BinaryConv2d", "FORMS"]

FORMS = ("baseline", "binarized")


def _np64(t):
    return t.detach().cpu().double().numpy()


class BinaryConv2d(nn.Module):
    """Binary convolution + BatchNorm in one of two forms (``"baseline"`` or ``"binarized"``).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        k (odd; padding ``k // 2`` of constant +1 bits keeps N equal for every pixel).
    stride : int
    form : str
        ``"baseline"`` (``BN(scale_c * d)``) or ``"binarized"`` (``BN(b * delta_c)``).
    division_num : float
        ``delta_c = (scale_c if delta_uses_scale else 1) * N / division_num``.
    delta_uses_scale : bool
    bn_eps, bn_momentum : float
        Of the inner ``nn.BatchNorm2d``.

    Members
    -------
    weight : Parameter ``[Cout, Cin, k, k]`` (real; its sign is used)
    alpha : Parameter ``[Cout]`` (count threshold on d, learnable, starts at 0)
    bn : ``nn.BatchNorm2d(Cout)``
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, form="baseline",
                 division_num=1.0, delta_uses_scale=True, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size!r}")
        if float(division_num) == 0.0:
            raise ValueError("division_num must be non-zero")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.form = form
        self.division_num = float(division_num)
        self.delta_uses_scale = bool(delta_uses_scale)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.normal_(self.weight, std=(2.0 / self.n) ** 0.5)
        self.alpha = nn.Parameter(torch.zeros(out_channels))
        #: False in step 1 of the two-step schedule: the conv uses the real weights ``W``
        #: instead of ``sign(W)`` (``d`` is then not an integer; nothing is exported so).
        self.binary_weights = True
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)

    @property
    def n(self):
        """N = k * k * Cin, the number of XNOR inputs of one output."""
        return self.kernel_size * self.kernel_size * self.in_channels

    @property
    def padding(self):
        return self.kernel_size // 2

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, form={self.form!r}, division_num={self.division_num}")

    def scale(self):
        """``scale_c = mean |W_c|`` (``[Cout]``, detached)."""
        return self.weight.detach().abs().mean(dim=(1, 2, 3))

    def delta(self):
        """``delta_c = (scale_c if delta_uses_scale else 1) * N / division_num`` (``[Cout]``)."""
        base = self.scale() if self.delta_uses_scale else torch.ones_like(self.alpha.detach())
        return base * (self.n / self.division_num)

    def dot(self, x, pad_value=1.0):
        """``d = 2*count - N`` as exact integers in float, ``[B, Cout, Ho, Wo]``, STE gradients;
        with ``binary_weights`` false, ``conv(sign(x), W)`` (real weights, not rounded)."""
        xb = F.pad(sign_ste(x), [self.padding] * 4, value=pad_value)
        if not self.binary_weights:
            return F.conv2d(xb, self.weight, stride=self.stride)
        d = F.conv2d(xb, sign_ste(self.weight), stride=self.stride)
        return d + (torch.round(d) - d).detach()   # guard against any float rounding

    def pre_bn(self, x, form=None):
        """The BN input: ``scale_c * d`` (baseline) or ``b * delta_c`` (binarized)."""
        form = form or self.form
        d = self.dot(x)
        if form == "baseline":
            return d * self.scale().view(1, -1, 1, 1)
        if form == "binarized":
            b = count_ste(d, self.alpha.view(1, -1, 1, 1), self.n)
            return b * self.delta().view(1, -1, 1, 1)
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")

    def forward(self, x):
        return self.bn(self.pre_bn(x))

    # -- calibration ------------------------------------------------------------------------

    @torch.no_grad()
    def calibrate_bn(self, x, form=None):
        """Set BN running mean / (biased) variance to the statistics of ``pre_bn(x, form)``."""
        v = self.pre_bn(x, form)
        self.bn.running_mean.copy_(v.mean(dim=(0, 2, 3)))
        self.bn.running_var.copy_(v.var(dim=(0, 2, 3), unbiased=False))
        self.bn.num_batches_tracked.fill_(1)

    @torch.no_grad()
    def calibrate_alpha(self, x, quantile=0.5):
        """Set ``alpha_c`` to the ``quantile`` (scalar or per channel) of d over ``x``."""
        d = self.dot(x).transpose(0, 1).reshape(self.out_channels, -1).double()
        s = d.sort(dim=1).values
        q = torch.as_tensor(quantile, dtype=torch.float64).expand(self.out_channels)
        pos = q.clamp(0, 1) * (s.shape[1] - 1)       # linear interpolation, as torch.quantile
        lo = pos.floor().long()
        hi = torch.clamp(lo + 1, max=s.shape[1] - 1)
        rows = torch.arange(self.out_channels)
        frac = pos - lo
        self.alpha.copy_((s[rows, lo] + frac * (s[rows, hi] - s[rows, lo])).float())

    # -- fixed point ------------------------------------------------------------------------

    def bn_stats(self):
        """``(gamma, beta, mean, var, eps)`` of the BN, float64."""
        c, bn = self.out_channels, self.bn
        gamma = _np64(bn.weight) if bn.weight is not None else np.ones(c)
        beta = _np64(bn.bias) if bn.bias is not None else np.zeros(c)
        return gamma, beta, _np64(bn.running_mean), _np64(bn.running_var), bn.eps

    def export_delta(self):
        """``delta_c`` for the export, or None to let ``export_constants`` derive it in float64
        from ``division_num`` and ``delta_uses_scale``."""
        return None

    def fixed_params(self, out_bits=fp.OUT_BITS, out_frac=fp.OUT_FRAC, mul_bits=fp.MUL_BITS,
                     off_bits=fp.OFF_BITS):
        """The exported integers (dict of numpy arrays, see ``fixed_point.export_constants``)."""
        params = fp.export_constants(
            _np64(self.weight), _np64(self.alpha), *self.bn_stats(),
            delta=self.export_delta(), division_num=self.division_num,
            delta_uses_scale=self.delta_uses_scale,
            out_bits=out_bits, out_frac=out_frac, mul_bits=mul_bits, off_bits=off_bits)
        params["meta"] = {"cin": self.in_channels, "cout": self.out_channels,
                          "k": self.kernel_size, "stride": self.stride, "n": self.n,
                          "out_bits": out_bits, "out_frac": out_frac, "mul_bits": mul_bits,
                          "off_bits": off_bits, "shift": int(params["shift"])}
        return params

    def fixed_outputs(self, x, params=None):
        """``(count, y_binarized, y_baseline)``, ``int64 [B, Cout, Ho, Wo]``, in torch int64 ops.

        The popcount is an exact float64 +-1 matrix product (integer sums below 2**53) turned to
        ``int64``; the threshold compare and the multiply/add/shift/saturate are ``int64``.

        ``x`` is the real input (its bits are ``x >= 0``); ``params`` the exported integers
        (``fixed_params()`` or ``load_layer(...)``; default: exported from this layer now).
        """
        if params is None:
            params = self.fixed_params()
        meta = fp.layer_meta(params)
        out_bits = int(meta["out_bits"])
        k, s, n = self.kernel_size, self.stride, self.n
        with torch.no_grad():
            bits = (x.detach() >= 0).to(torch.int64)
            bits = F.pad(bits, [self.padding] * 4, value=1)
            cols = bits.unfold(2, k, s).unfold(3, k, s)                  # [B, C, Ho, Wo, k, k]
            bsz, _, ho, wo, _, _ = cols.shape
            act = cols.permute(0, 2, 3, 4, 5, 1).reshape(bsz * ho * wo, n)   # tap-major, ch-minor
            packed = torch.as_tensor(np.asarray(params["weight_bits"], dtype=np.uint8))
            wgt = ((packed.to(torch.int64).unsqueeze(-1) >> torch.arange(8)) & 1)
            wgt = wgt.reshape(packed.shape[0], -1)[:, :n]                 # [Cout, N]
            # XNOR-popcount as a +-1 dot product: float64 sums of at most N < 2**53 terms of
            # +-1 are exact integers; everything after this line is int64.
            d = ((2 * act - 1).double() @ (2 * wgt - 1).double().T).round().to(torch.int64)
            count = (d + n) // 2
            count = count.reshape(bsz, ho, wo, -1).permute(0, 3, 1, 2).contiguous()

            def col(name):
                return torch.as_tensor(np.asarray(params[name], dtype=np.int64)).view(1, -1, 1, 1)

            y_bin = torch.where(count >= col("threshold"), col("hi"), col("lo"))
            lo, hi = fp.int_range(out_bits)
            acc = col("mul") * (2 * count - n) + col("offset")
            y_base = torch.clamp(acc >> int(np.asarray(params["shift"])), lo, hi)
        return count, y_bin, y_base

    def forward_fixed(self, x, params=None, form=None):
        """The exported integer output of ``form`` (default: the layer's form), ``int64``.

        Real value = ``y / 2**out_frac``.
        """
        count, y_bin, y_base = self.fixed_outputs(x, params)
        form = form or self.form
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        return y_bin if form == "binarized" else y_base
