"""The fused training path against the reference path: same forward values, gradients up to
float rounding; the training loop's data-parallel launch (two CPU processes, gloo)."""

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bincount.model.data import cifar
from bincount.model.layers import fastpath
from bincount.model.layers.fake_quant import fq_add_fused, fq_round, fq_round_fused, fq_value
from bincount.model.export.net_format import DEFAULT_FORMAT
from bincount.model.nets.networks import build_network
from bincount.model.layers.ste import count_ste, count_ste_fused, sign_ste, sign_ste_fused

TESTS = Path(__file__).resolve().parent


def _grads(model):
    return {k: p.grad for k, p in model.named_parameters()}


def _run(model, x, y, reference, memory_format=torch.contiguous_format):
    """One forward + backward on a copy of ``model``; (logits, grads, buffers)."""
    m = copy.deepcopy(model).to(memory_format=memory_format)
    with fastpath.reference_path(reference):
        out = m(x.contiguous(memory_format=memory_format))
        F.cross_entropy(out, y).backward()
    return out.detach(), _grads(m), {k: b.clone() for k, b in m.named_buffers()}


def _assert_grads_close(ga, gb):
    assert ga.keys() == gb.keys()
    for k in ga:
        assert (ga[k] is None) == (gb[k] is None), k
        if ga[k] is not None:
            scale = float(ga[k].abs().max()) + 1e-12
            torch.testing.assert_close(gb[k], ga[k], rtol=1e-4, atol=1e-4 * scale, msg=k)


CASES = [("reactnet18", "qat_cn_times_alpha", {"shortcut": "concat", "slopes": "pow2",
                                               "fixed_point": True}),
         ("reactnet18", "baseline", {"shortcut": "concat", "slopes": "pow2",
                                     "fixed_point": True}),
         ("reactnet18", "simple_qat", {}),
         ("reactnet18", "qat_minmax", {"shortcut": "real", "slopes": "trained",
                                       "fixed_point": True}),
         ("reactnet18", "qat_cn_plus_alpha", {"pad_value": -1.0, "count_bn": "none"}),
         ("birealnet18", "qat_cnk2_times_alpha", {"pad_value": 0.0}),
         ("birealnet18", "baseline", {"fixed_point": True})]


@pytest.mark.parametrize("network,variant,flags", CASES)
def test_fused_path_matches_reference(network, variant, flags):
    torch.manual_seed(0)
    model = build_network(network, variant, 0.125, **flags).train()
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    ref = _run(model, x, y, reference=True)
    out, grads, bufs = _run(model, x, y, reference=False)
    assert torch.equal(out, ref[0])                      # the logits, bit for bit
    for k in bufs:                                       # BN statistics of every layer
        assert torch.equal(bufs[k], ref[2][k]), k
    _assert_grads_close(ref[1], grads)
    # channels_last (opt-in): BN sums in another order, so its float rounding differs, and a
    # binary network may then flip a sign somewhere; it runs and keeps the layout
    m = copy.deepcopy(model).to(memory_format=torch.channels_last)
    out = m.features(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last) and bool(out.isfinite().all())


def test_real_weights_step_matches_reference():
    """Step 1 of the two-step schedule (real-valued weights): equal up to float rounding."""
    from bincount.model.training.train import set_binary_weights

    torch.manual_seed(1)
    model = build_network("reactnet18", "baseline", 0.125, shortcut="concat").train()
    set_binary_weights(model, False)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    a, b = _run(model, x, y, reference=True), _run(model, x, y, reference=False)
    torch.testing.assert_close(b[0], a[0], rtol=1e-4, atol=1e-4)
    _assert_grads_close(a[1], b[1])


def test_fused_functions_on_their_edges():
    # sign: 0 -> +1, |t| == 1 passes the gradient, the bias is summed
    x = torch.tensor([[-1.5, -1.0, -0.25, 0.0, 0.5, 1.0, 1.25]]).view(1, 1, 1, 7).repeat(2, 3, 1, 1)
    bias = torch.tensor([0.0, 0.25, -0.5]).view(1, 3, 1, 1)
    for offset in (0.0, 1.0, -1.0):
        xa, ba = x.clone().requires_grad_(), bias.clone().requires_grad_()
        xb, bb = x.clone().requires_grad_(), bias.clone().requires_grad_()
        g = torch.randn(2, 3, 1, 7)
        ref = sign_ste(xa + ba) - offset
        out = sign_ste_fused(xb, bb, offset)
        assert torch.equal(out, ref)
        ref.backward(g)
        out.backward(g)
        assert torch.equal(xb.grad, xa.grad) and torch.allclose(bb.grad, ba.grad)
    # count: d == alpha counts as +1, |d - alpha| == N passes the gradient
    n = 9
    d = torch.tensor([-9.0, -3.0, 0.0, 2.0, 5.0, 9.0]).view(1, 1, 1, 6).repeat(2, 2, 1, 1)
    alpha = torch.tensor([0.0, 2.0]).view(1, 2, 1, 1)
    delta = torch.tensor([0.5, 3.0]).view(1, 2, 1, 1)
    ts = [t.clone().requires_grad_() for t in (d, alpha, delta)]
    us = [t.clone().requires_grad_() for t in (d, alpha, delta)]
    g = torch.randn(2, 2, 1, 6)
    ref = count_ste(ts[0], ts[1], n) * ts[2]
    out = count_ste_fused(us[0], us[1], us[2], n)
    assert torch.equal(out, ref)
    ref.backward(g)
    out.backward(g)
    for a, b in zip(ts, us):
        torch.testing.assert_close(b.grad, a.grad)
    # fake quantisation: ties round up, saturation, gradient 1
    f = DEFAULT_FORMAT
    v = torch.tensor([-200.0, -1.5 / 256, -0.5 / 256, 0.5 / 256, 1.5 / 256, 0.3, 127.999, 500.0])
    q = fq_round_fused(v, f.res_frac, f.res_bits)
    assert torch.equal(q, torch.clamp(torch.floor(v * 256 + 0.5), -32768, 32767) / 256)
    inside = v.abs() < 100
    assert torch.equal(q[inside], fq_round(v, f.res_frac, f.res_bits)[inside])
    a, b = v.clone().requires_grad_(), v.flip(0).clone().requires_grad_()
    fq_add_fused(a, b, f).sum().backward()
    assert torch.equal(a.grad, torch.ones(8)) and torch.equal(b.grad, torch.ones(8))
    assert torch.equal(fq_add_fused(v, v.flip(0), f),
                       fq_value(fq_value(v, f) + v.flip(0), f))


def test_pow2_rprelu_on_the_grid():
    """The float32 pow2 RPReLU equals the float64 reference on every grid value and slope."""
    from bincount.model.layers.rprelu import RPReLU

    r = RPReLU(19, "pow2")
    r.fq = DEFAULT_FORMAT
    with torch.no_grad():
        r.slope.copy_(torch.tensor([2.0 ** e * s for e, s in zip(range(-15, 4), [1, -1] * 10)]))
        r.bias0.copy_(torch.linspace(-3, 3, 19).view(1, -1, 1, 1))
        r.bias1.copy_(torch.linspace(2, -2, 19).view(1, -1, 1, 1))
    x = (torch.arange(-32768, 32768, 7, dtype=torch.float32) / 256).view(1, 1, 1, -1)
    x = x.repeat(1, 19, 1, 1)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    with fastpath.reference_path():
        ref = r(a)
    out = r(b)
    assert torch.equal(out, ref)
    g = torch.randn_like(ref)
    ref.backward(g)
    gs_ref = [p.grad.clone() for p in r.parameters()]
    r.zero_grad()
    out.backward(g)
    assert torch.equal(b.grad, a.grad)
    for p, gr in zip(r.parameters(), gs_ref):
        torch.testing.assert_close(p.grad, gr, rtol=1e-5, atol=1e-3)


DRIVER = """
import glob, os, sys
import torch
sys.path.insert(0, {tests!r})
from bincount.model.training import train as tr
from test_train import TinyNet

tr.build_model = lambda network, variant, width_mult=1.0, flags=None: TinyNet(variant, width_mult)
settings = {{"network": "reactnet18", "variant": "qat_cn_times_alpha", "epochs": 2,
            "batch_size": 4, "lr": 5e-3, "seed": 7, "eval_limit": 10}}
ck = tr.train(settings, {ckpt!r}, data_dir={data!r}, progress=False, threads=1,
              log=lambda m: None, device="cpu")
# threads left behind by the process group (gloo's loops) once train() has returned
threads = sorted(open(t).read().strip() for t in glob.glob("/proc/self/task/*/comm"))
torch.save({{"model": ck["model"], "metrics": ck["metrics"],
            "gloo_threads": [t for t in threads if "gloo" in t]}},
           os.path.join({out!r}, "rank%s.pt" % os.environ["RANK"]))
"""


def test_two_process_gloo_training_keeps_ranks_identical(tmp_path, monkeypatch):
    from test_cifar_data import write_image_archive

    monkeypatch.setenv(cifar.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)
    data = tmp_path / "jpeg"
    write_image_archive(data / "train.tar.gz", "train", per_class=4, seed=1)
    write_image_archive(data / "test.tar.gz", "test", per_class=2, seed=2)
    ckpt = tmp_path / "run" / "ck.pt"
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER.format(tests=str(TESTS), ckpt=str(ckpt),
                                                    data=str(data), out=str(tmp_path))))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node", "2", str(driver)], env=env, capture_output=True,
                       text=True, timeout=240, cwd=tmp_path)
    written = sorted(p.name for p in tmp_path.glob("rank*.pt"))
    assert r.returncode == 0, f"rank files written: {written}\n{r.stderr[-3000:]}"
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    disk = torch.load(ckpt, weights_only=True)
    assert disk["epoch"] == 2 and r0["metrics"] == disk["metrics"]
    for k, v in r0["model"].items():
        assert torch.equal(v, r1["model"][k]), k
        assert torch.equal(v, disk["model"][k]), k
    # each rank saw half of the 40 images per epoch; the figures cover both
    assert [m["train_images"] for m in disk["metrics"]] == [40, 40]
    # the process group is freed when train() returns: no gloo thread runs into the exit
    assert r0["gloo_threads"] == [] and r1["gloo_threads"] == []
    assert r1["metrics"][-1]["test_top1"] == disk["metrics"][-1]["test_top1"]
