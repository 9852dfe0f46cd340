"""BinaryConv2d: integer reference == torch fixed-point forward, decisions, tolerances, STE."""

import numpy as np
import pytest
import torch

from bincount.model.export import fixed_point as fp
from bincount.model.layers.binary_conv import BinaryConv2d
from bincount.model.layers.rsign import RSign
from bincount.model.layers.ste import count_ste, sign_ste

CONFIGS = [  # cin, cout, h, w, stride
    (1, 3, 5, 5, 1), (3, 8, 7, 6, 2), (16, 12, 9, 9, 1), (32, 6, 8, 8, 2), (64, 4, 4, 4, 1)]


def random_layer(cin, cout, stride, seed, form, batch=2, h=6, w=6):
    """A layer with calibrated BN, random (partly negative) gammas and edge alphas."""
    torch.manual_seed(seed)
    layer = BinaryConv2d(cin, cout, 3, stride, form=form)
    x = torch.randn(batch, cin, h, w)
    x[0, 0, 0, :2] = 0.0                     # exact zeros: sign(0) = +1
    with torch.no_grad():
        layer.calibrate_alpha(x, quantile=torch.rand(cout))
        layer.calibrate_bn(x)
        layer.bn.weight.uniform_(0.3, 1.5)
        layer.bn.weight[::3] *= -1.0          # negative BN scales
        layer.bn.bias.uniform_(-0.5, 0.5)
        n = layer.n
        layer.alpha[0] = -n - 1.5             # T = 0: always hi
        if cout > 1:
            layer.alpha[1] = n + 0.25         # T = N + 1: never hi
    return layer.eval(), x


@pytest.mark.parametrize("form", ["baseline", "binarized"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "x".join(map(str, c)))
def test_reference_equals_torch_fixed_point(cfg, seed, form):
    cin, cout, h, w, stride = cfg
    layer, x = random_layer(cin, cout, stride, seed, form, h=h, w=w)
    params = layer.fixed_params()
    t_count, t_bin, t_base = layer.fixed_outputs(x, params)
    bits = (x >= 0).numpy().astype(np.uint8)
    r_count, r_bin, r_base = fp.reference_layer(bits, params)
    assert t_count.dtype == torch.int64
    assert np.array_equal(t_count.numpy(), r_count)
    assert np.array_equal(t_bin.numpy(), r_bin)
    assert np.array_equal(t_base.numpy(), r_base)
    # forward_fixed picks the layer's form
    expect = r_bin if form == "binarized" else r_base
    assert np.array_equal(layer.forward_fixed(x, params).numpy(), expect)
    # the edge thresholds
    n = layer.n
    assert params["threshold"][0] == 0 and np.all(r_bin[:, 0] == params["hi"][0])
    if cout > 1:
        assert params["threshold"][1] == n + 1 and np.all(r_bin[:, 1] == params["lo"][1])
    assert np.any(params["hi"] < params["lo"])          # a negative BN scale is present


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "x".join(map(str, c)))
def test_float_decision_equals_count_threshold(cfg, seed):
    cin, cout, h, w, stride = cfg
    layer, x = random_layer(cin, cout, stride, seed, "binarized", h=h, w=w)
    params = layer.fixed_params()
    count, _, _ = layer.fixed_outputs(x, params)
    with torch.no_grad():
        d = layer.dot(x)
        b = layer.pre_bn(x, "binarized") / layer.delta().view(1, -1, 1, 1)
    assert torch.equal(d.to(torch.int64), 2 * count - layer.n)         # exact float d
    assert set(b.unique().tolist()) <= {-1.0, 1.0}
    t = torch.as_tensor(params["threshold"]).view(1, -1, 1, 1)
    assert torch.equal(b > 0, count >= t)


def _representable(y, out_bits=16, out_frac=8):
    lo, hi = fp.int_range(out_bits)
    return y.clamp(lo / 2 ** out_frac, hi / 2 ** out_frac)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "x".join(map(str, c)))
def test_float_vs_fixed_within_quantization(cfg, seed):
    cin, cout, h, w, stride = cfg
    for form in ("baseline", "binarized"):
        layer, x = random_layer(cin, cout, stride, seed, form, h=h, w=w)
        params = layer.fixed_params()
        with torch.no_grad():
            y = _representable(layer(x).double())
        fixed = layer.forward_fixed(x, params).double() / 256.0
        s = int(params["shift"])
        if form == "baseline":   # final rounding + M and O rounding + float32 error
            tol = 0.5 / 256 + (layer.n + 1) * 0.5 / 2.0 ** (8 + s)
        else:                    # hi/lo rounding + float32 error
            tol = 0.5 / 256
        err = (y - fixed).abs() - 1e-5 * (1 + y.abs())
        assert err.max().item() <= tol, (form, err.max().item(), tol)


def test_sign_of_zero_and_constant_one_padding():
    layer = BinaryConv2d(2, 1, 3, 1)
    with torch.no_grad():
        layer.weight.fill_(0.5)                          # all weight bits 1
    params = layer.fixed_params()
    zeros = torch.zeros(1, 2, 4, 4)                      # sign(0) = +1 -> all match
    count, _, _ = layer.fixed_outputs(zeros, params)
    assert torch.all(count == layer.n)
    minus = -torch.ones(1, 2, 4, 4)                      # all -1: only padding (+1) matches
    count, _, _ = layer.fixed_outputs(minus, params)
    assert count[0, 0, 0, 0] == 5 * 2                    # corner: 5 of 9 taps are padding
    assert count[0, 0, 0, 1] == 3 * 2                    # edge: 3 taps
    assert count[0, 0, 1, 1] == 0                        # interior
    with torch.no_grad():
        assert torch.equal(layer.dot(minus)[0, 0], 2 * count[0, 0].float() - layer.n)


def test_ste_forward_exact_and_gradients():
    x = torch.tensor([-2.0, -1.0, -0.3, -0.0, 0.0, 0.3, 1.0, 2.0], requires_grad=True)
    s = sign_ste(x)
    assert s.tolist() == [-1, -1, -1, 1, 1, 1, 1, 1]
    s.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 0]

    n = 9
    d = torch.tensor([-9.0, -1.0, 1.0, 3.0, 9.0], requires_grad=True)
    alpha = torch.tensor(1.0, requires_grad=True)
    b = count_ste(d, alpha, n)
    assert b.tolist() == [-1, -1, 1, 1, 1]                # d >= alpha, tie -> +1
    b.sum().backward()
    # db/dd = -db/dalpha = 1/N inside |d - alpha| <= N, else 0 (d = -9 is 10 away)
    assert torch.allclose(d.grad, torch.tensor([0.0, 1, 1, 1, 1]) / n)
    assert torch.allclose(alpha.grad, torch.tensor(-4.0 / n))


def test_layer_gradients_flow():
    torch.manual_seed(0)
    for form in ("baseline", "binarized"):
        layer = BinaryConv2d(4, 3, 3, 1, form=form).train()
        with torch.no_grad():
            layer.weight[0, 0, 0, 0] = 5.0                  # |W| > 1: clipped, no gradient
        x = torch.randn(2, 4, 5, 5, requires_grad=True)
        layer(x).pow(2).sum().backward()
        assert layer.weight.grad[0, 0, 0, 0] == 0
        assert layer.weight.grad.abs().sum() > 0
        assert x.grad.abs().sum() > 0
        if form == "binarized":
            assert layer.alpha.grad.abs().sum() > 0
        else:
            assert layer.alpha.grad is None


def test_rsign():
    m = RSign(2)
    with torch.no_grad():
        m.shift.bias[0, 1] = 0.5
    x = torch.tensor([[[[-0.5]], [[-0.5]]]], requires_grad=True)
    y = m(x)
    assert y.flatten().tolist() == [-1.0, 1.0]              # -0.5 + 0.5 = 0 -> +1
    y.sum().backward()
    assert m.shift.bias.grad.flatten().tolist() == [1.0, 1.0]


def test_calibrate_alpha_matches_quantile():
    torch.manual_seed(5)
    layer = BinaryConv2d(3, 4, 3, 1)
    x = torch.randn(2, 3, 6, 6)
    q = torch.tensor([0.0, 0.3, 0.5, 1.0])
    layer.calibrate_alpha(x, q)
    d = layer.dot(x).detach().transpose(0, 1).reshape(4, -1).double()
    expect = torch.stack([torch.quantile(d[c], q[c].double()) for c in range(4)]).float()
    assert torch.allclose(layer.alpha.detach(), expect)


def test_bad_form_and_delta():
    with pytest.raises(ValueError):
        BinaryConv2d(2, 2, form="nope")
    with pytest.raises(ValueError):
        BinaryConv2d(2, 2, kernel_size=2)
    layer = BinaryConv2d(2, 3, division_num=4.0, delta_uses_scale=False)
    assert torch.allclose(layer.delta(), torch.full((3,), 18 / 4.0))
    layer = BinaryConv2d(2, 3)
    assert torch.allclose(layer.delta(), layer.scale() * 18)
