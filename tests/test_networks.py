"""Networks and variants: structure from the geometry, every variant, the flags, PTQ conversion."""

import math

import pytest
import torch

from bincount.errors import BincountError
from bincount.model.nets.geometry import network_geometry
from bincount.model.nets.networks import (FLAG_DEFAULTS, NETWORK_NAMES, VARIANTS, binary_convs,
                                     build_network, convert_to_ptq, convert_variant,
                                     network_from_config, scaled_channels)
from bincount.model.nets.ops import network_ops
from bincount.model.layers.rprelu import pow2_round
from bincount.model.nets.variants import QAT_VARIANTS, variant_spec

W = 0.125


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _x(b=2, seed=0):
    return torch.randn(b, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_structure_follows_geometry(name):
    geo = network_geometry(name)
    m = build_network(name, "baseline", W)
    assert m.layer_names == [layer.name for layer in geo.binary_layers]
    assert len(m.blocks) == 16
    assert m.stem.out_channels == scaled_channels(geo.stem.cout, W) == 8
    for block, layer in zip(m.blocks, geo.binary_layers):
        assert block.conv.in_channels == scaled_channels(layer.cin, W)
        assert block.conv.out_channels == scaled_channels(layer.cout, W)
        assert block.conv.stride == layer.stride and block.conv.kernel_size == 3
        assert (block.downsample is not None) == layer.downsample
        assert (block.rsign is not None) == (name == "reactnet18")
        assert (block.rprelu is not None) == (name == "reactnet18")
    assert m.head.in_channels == 64 and m.head.num_classes == 10
    # the full-width network has the geometry's channels; `bincount ops` still counts 557,056
    full = build_network(name, "baseline", 1.0)
    assert [b.conv.out_channels for b in full.blocks] == [layer.cout for layer in geo.binary_layers]
    assert network_ops(name)["totals"]["baseline_multiplies"] == 557056


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_every_variant_runs_and_trains(name, variant):
    m = build_network(name, variant, W)
    assert m.variant == variant
    spec = variant_spec(variant)
    convs = binary_convs(m)
    assert len(convs) == 16 and all(c.form == spec.form for c in convs)
    y = m(_x())
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    y.logsumexp(1).sum().backward()
    conv = convs[3]
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    if spec.form == "binarized":           # the threshold learns through the count STE
        assert conv.alpha.grad is not None and conv.alpha.grad.abs().sum() > 0
    else:
        assert conv.alpha.grad is None or conv.alpha.grad.abs().sum() == 0


def test_state_dict_is_shared_by_all_variants():
    ref = build_network("reactnet18", "baseline", W)
    keys = set(ref.state_dict())
    for v in VARIANTS:
        m = build_network("reactnet18", v, W)
        assert set(m.state_dict()) == keys
        m.load_state_dict(ref.state_dict())


def test_delta_of_each_variant():
    # alpha (the division_num scalar) = 2.0, fixed
    cin = 8
    n = 9 * cin
    expect = {"qat_cn_plus_alpha": n / (cin + 2.0), "qat_cnk2_plus_alpha": n / (n + 2.0),
              "qat_cn_times_alpha": n / (cin * 2.0), "qat_cnk2_times_alpha": n / (n * 2.0),
              "qat_minmax": 1.0}
    for v, d in expect.items():
        m = build_network("birealnet18", v, W, division_alpha="fixed", alpha_init=2.0)
        conv = m.blocks[0].conv
        assert conv.in_channels == cin
        assert torch.allclose(conv.delta(), torch.full((8,), d))
        assert not conv.div_alpha.requires_grad
    for v in ("ptq", "simple_qat"):
        conv = build_network("birealnet18", v, W).blocks[0].conv
        assert torch.allclose(conv.delta(), conv.scale() * n)


def test_division_alpha_readings():
    m = build_network("reactnet18", "qat_cn_plus_alpha", W)          # learned (default)
    conv = m.blocks[0].conv
    assert conv.div_alpha.requires_grad
    m = build_network("reactnet18", "qat_cn_plus_alpha", W, division_alpha="threshold")
    conv = m.blocks[0].conv
    with torch.no_grad():
        conv.alpha.copy_(torch.arange(8.0))
    assert torch.allclose(conv.delta(), 72.0 / (8.0 + torch.arange(8.0)))
    assert not conv.div_alpha.requires_grad
    # minmax has no alpha at all
    assert not build_network("reactnet18", "qat_minmax", W).blocks[0].conv.div_alpha.requires_grad


def test_qat_variants_are_the_seed_table():
    assert len(QAT_VARIANTS) == 5 and VARIANTS[:3] == ("baseline", "ptq", "simple_qat")


def test_convert_to_ptq_keeps_weights_and_bn():
    m = build_network("reactnet18", "baseline", W).eval()
    p = convert_to_ptq(m)
    assert p is not m and p.variant == "ptq" and m.variant == "baseline"
    assert all(c.form == "baseline" for c in binary_convs(m))
    for a, b in zip(binary_convs(m), binary_convs(p)):
        assert b.form == "binarized" and b.delta_uses_scale
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bn.running_var, b.bn.running_var)
        assert torch.allclose(b.delta(), b.scale() * b.n)
    x = _x()
    with torch.no_grad():
        c = p.blocks[0].conv
        bits = p.blocks[0].binarize(p.stem(x))
        d = c.dot(bits)
        expect = c.bn(torch.where(d >= c.alpha.view(1, -1, 1, 1), 1.0, -1.0)
                      * c.delta().view(1, -1, 1, 1))
        assert torch.allclose(c(bits), expect)
    with pytest.raises(BincountError, match="baseline"):
        convert_to_ptq(p)
    q = convert_variant(m, "qat_minmax")
    assert q.variant == "qat_minmax" and all(c.form == "binarized" for c in binary_convs(q))


def test_config_round_trip():
    m = build_network("birealnet18", "qat_cnk2_times_alpha", 0.25, shortcut="concat",
                      pad_value=-1.0)
    assert set(m.config) == {"network", "variant", "width_mult", "num_classes", *FLAG_DEFAULTS}
    m2 = network_from_config(m.config)
    m2.load_state_dict(m.state_dict())
    x = _x()
    with torch.no_grad():
        assert torch.equal(m.eval()(x), m2.eval()(x))


def test_bad_names_and_flags():
    for bad in (lambda: build_network("resnet18"), lambda: build_network("reactnet18", "qat"),
                lambda: build_network("reactnet18", shortcut="conv"),
                lambda: build_network("reactnet18", slopes="pow3"),
                lambda: build_network("reactnet18", pad_value=0.5),
                lambda: build_network("reactnet18", colour="red"),
                lambda: build_network("reactnet18", width_mult=0),
                lambda: build_network("reactnet18", division_alpha="guess"),
                lambda: network_from_config({"variant": "baseline"})):
        with pytest.raises(BincountError):
            bad()


def test_pow2_slopes():
    m = build_network("reactnet18", "baseline", W, slopes="pow2")
    r = m.blocks[0].rprelu
    with torch.no_grad():
        r.slope.copy_(torch.tensor([0.3, 0.2, -0.7, 0.0, 1.6, 0.126, 5e-9, 40.0]))
    eff = r.effective_slope()
    assert eff.tolist() == [0.25, 0.25, -0.5, 2.0 ** -15, 2.0, 0.125, 2.0 ** -15, 8.0]
    for v in eff.tolist():
        assert math.log2(abs(v)) == int(math.log2(abs(v)))
    t = torch.linspace(-2, 2, 8).view(1, 8, 1, 1).requires_grad_()
    out = r(t)
    assert torch.allclose(out, torch.where(t >= 0, t, eff.view(1, -1, 1, 1) * t))
    out.sum().backward()
    assert r.slope.grad is not None and r.slope.grad[0] != 0        # straight through
    a = torch.tensor([0.3], requires_grad=True)
    pow2_round(a).backward()
    assert a.grad.item() == 1.0


def test_concat_shortcut_is_pooled_duplicate():
    m = build_network("birealnet18", "baseline", W, shortcut="concat")
    ds = m.blocks[4].downsample                       # stage2.conv1: 8 -> 16, stride 2
    assert ds.mode == "concat" and list(ds.parameters()) == []
    x = torch.randn(2, 8, 32, 32)
    y = ds(x)
    pooled = torch.nn.functional.avg_pool2d(x, 2)
    assert y.shape == (2, 16, 16, 16)
    assert torch.equal(y[:, :8], pooled) and torch.equal(y[:, 8:], pooled)
    real = build_network("birealnet18", "baseline", W).blocks[4].downsample
    assert real.mode == "real" and real.conv.kernel_size == (1, 1)


def test_pad_value_changes_only_the_border():
    base = build_network("reactnet18", "baseline", W).eval()
    neg = build_network("reactnet18", "baseline", W, pad_value=-1.0).eval()
    neg.load_state_dict(base.state_dict())
    x = torch.randn(1, 8, 6, 6)
    da, db = base.blocks[0].conv.dot(x), neg.blocks[0].conv.dot(x)
    assert torch.equal(da[..., 1:-1, 1:-1], db[..., 1:-1, 1:-1])
    assert not torch.equal(da, db)
    n = base.blocks[0].conv.n                          # +-1 padding: d has N's parity everywhere
    assert torch.all((da + n) % 2 == 0) and torch.all((db + n) % 2 == 0)


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_fixed_point_flag_trains_on_the_grid(name):
    m = build_network(name, "qat_cn_times_alpha", W, fixed_point=True, shortcut="real")
    assert m.config["fixed_point"] and m.stem.fq is not None and m.blocks[0].fq is not None
    outs = []
    m.blocks[5].register_forward_hook(lambda mod, a, o: outs.append(o))
    y = m(_x())
    y.logsumexp(1).sum().backward()
    o = outs[0].detach() * 256
    assert torch.equal(o, torch.round(o))                     # on the residual grid
    assert m.blocks[3].conv.weight.grad.abs().sum() > 0       # straight-through
    assert m.stem.conv.weight.grad.abs().sum() > 0
    m.set_fixed_point(False)
    assert m.stem.fq is None and not m.config["fixed_point"]


def test_count_bn_none_is_plus_minus_delta():
    m = build_network("birealnet18", "qat_cn_times_alpha", W, count_bn="none",
                      division_alpha="fixed", alpha_init=0.5).eval()
    conv = m.blocks[1].conv
    x = torch.randn(2, 8, 32, 32)
    with torch.no_grad():
        y = conv(x)
    d = 9 * 8 / (8 * 0.5)
    assert set(torch.unique(y).tolist()) <= {d, -d}
    base = build_network("birealnet18", "baseline", W, count_bn="none").eval()
    assert base.blocks[1].conv.uses_bn                    # the baseline keeps its BN


def test_train_mode_bn_absorbs_delta():
    """With BN after the count (default), every binarized variant trains the same function:
    BN's batch statistics cancel the per-channel constant delta_c (docs/model.md). Without that
    BN (count_bn="none") delta_c sets the scale of the block's output."""
    x = _x(4)
    outs = {}
    for cb in ("after", "none"):
        for v in ("simple_qat", "qat_cn_plus_alpha", "qat_minmax"):
            torch.manual_seed(3)
            m = build_network("reactnet18", v, W, count_bn=cb).train()
            outs[cb, v] = m(x).detach()
    for v in ("qat_cn_plus_alpha", "qat_minmax"):
        assert torch.allclose(outs["after", v], outs["after", "simple_qat"], atol=1e-4)
        assert not torch.allclose(outs["none", v], outs["none", "simple_qat"], atol=1e-2)
