"""Training, checkpoints, resume, evaluation and PTQ conversion on tiny synthetic data."""

import pytest
import torch
from torch import nn

from bincount.cli import main
from bincount.errors import BincountError
from bincount.model.data import cifar
from bincount.model.training import train as tr
from bincount.model.layers.net_binary_conv import NetBinaryConv2d
from bincount.model.nets.variants import variant_spec

from test_cifar_data import write_binary_release, write_image_archive


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(cifar.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)


@pytest.fixture
def jpeg_dir(tmp_path):
    """A fake JPEG copy: 4 train and 2 test images per class."""
    d = tmp_path / "jpeg"
    write_image_archive(d / "train.tar.gz", "train", per_class=4, seed=1)
    write_image_archive(d / "test.tar.gz", "test", per_class=2, seed=2)
    return d


class TinyNet(nn.Module):
    """A stand-in network: real stem conv, one binary conv of the networks, pool, FC."""

    def __init__(self, variant="baseline", width_mult=1.0):
        super().__init__()
        spec = variant_spec(variant)
        c = max(2, int(round(8 * width_mult)))
        self.config = {"network": "reactnet18", "variant": variant, "width_mult": width_mult}
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.BatchNorm2d(c))
        self.conv = NetBinaryConv2d(c, c, 3, 2, form=spec.form,
                                    delta_uses_scale=spec.delta_uses_scale,
                                    division_rule=spec.division_rule)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        return self.fc((self.conv(x) + x[:, :, ::2, ::2]).mean(dim=(2, 3)))


@pytest.fixture
def tiny(monkeypatch):
    def build(network, variant, width_mult=1.0, flags=None):
        return TinyNet(variant, width_mult)

    monkeypatch.setattr(tr, "build_model", build)


SETTINGS = {"network": "reactnet18", "variant": "qat_cn_times_alpha", "epochs": 3,
            "batch_size": 8, "lr": 5e-3, "seed": 7, "eval_limit": 10}


def _run(ckpt, data, **kw):
    given = dict(SETTINGS)
    given.update(kw.pop("given", {}))
    return tr.train(given, ckpt, data_dir=data, progress=False, threads=1, log=lambda m: None,
                    **kw)


def test_resume_reproduces_uninterrupted_run(tmp_path, jpeg_dir, tiny):
    full = _run(tmp_path / "full.pt", jpeg_dir)
    part = _run(tmp_path / "part.pt", jpeg_dir, stop_after=1)
    assert part["epoch"] == 1 and not part["done"]
    part = _run(tmp_path / "part.pt", jpeg_dir, resume=True, stop_after=1)
    assert part["epoch"] == 2
    resumed = _run(tmp_path / "part.pt", jpeg_dir, resume=True)
    assert resumed["epoch"] == 3 and resumed["done"]
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    for a, b in zip(full["metrics"], resumed["metrics"]):
        for key in ("train_loss", "train_top1", "test_top1", "test_top5", "lr_last"):
            assert a[key] == b[key], key
    # the file on disk loads with weights_only=True and holds what train() returned
    disk = torch.load(tmp_path / "part.pt", weights_only=True)
    assert disk["format"] == tr.FORMAT and disk["epoch"] == 3 and len(disk["metrics"]) == 3
    assert disk["config"]["variant"] == "qat_cn_times_alpha" and disk["config"]["seed"] == 7
    assert set(disk["rng"]) >= {"torch"} and "state" in disk["optimizer"]
    assert (tmp_path / "part.json").is_file()
    # complete: nothing more to do; a changed setting is refused
    assert _run(tmp_path / "part.pt", jpeg_dir, resume=True)["epoch"] == 3
    with pytest.raises(BincountError, match="lr=0.1"):
        _run(tmp_path / "part.pt", jpeg_dir, resume=True, given={"lr": 0.1})
    with pytest.raises(BincountError, match="already exists"):
        _run(tmp_path / "part.pt", jpeg_dir)


def test_compiled_step_writes_the_networks_own_checkpoint(tmp_path, jpeg_dir, tiny):
    """``compiled=True`` (``--compile``): the step runs through torch.compile, the checkpoint
    holds the network's own keys (no wrapper prefix) and the run resumes."""
    plain = _run(tmp_path / "plain.pt", jpeg_dir, given={"epochs": 1})
    part = _run(tmp_path / "c.pt", jpeg_dir, given={"epochs": 2}, compiled=True, stop_after=1)
    assert set(part["model"]) == set(plain["model"]) and part["epoch"] == 1
    done = _run(tmp_path / "c.pt", jpeg_dir, given={"epochs": 2}, resume=True, compiled=True)
    assert done["epoch"] == 2 and done["done"] and set(done["model"]) == set(plain["model"])
    net = TinyNet("qat_cn_times_alpha")
    net.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True)["model"])


def test_compiled_step_equals_the_plain_step_up_to_rounding():
    """One ``train_step`` of the same weights and batch, plain and through torch.compile: the
    same logits and loss up to float rounding."""
    torch.manual_seed(3)
    net = TinyNet("qat_cn_times_alpha").train()
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    out = []
    for compiled in (False, True):
        copy_ = TinyNet("qat_cn_times_alpha").train()
        copy_.load_state_dict(net.state_dict())
        model = torch.compile(copy_) if compiled else copy_
        logits, loss = tr.train_step(model, tr.make_optimizer(copy_, 1e-3, 0.0), x, y, 1e-3)
        out.append((logits.detach(), float(loss)))
    (la, sa), (lb, sb) = out
    assert (la - lb).abs().max() <= 1e-5 * la.abs().max() and abs(sa - sb) <= 1e-5 * sa


def test_two_step_schedule_and_binary_release(tmp_path, tiny):
    data = tmp_path / "bin"
    write_binary_release(data / cifar.BIN_FOLDER, per_file=4)
    seen = []
    orig = tr.set_binary_weights

    def spy(model, enabled):
        seen.append(enabled)
        return orig(model, enabled)

    tr.set_binary_weights = spy
    try:
        ck = _run(tmp_path / "two.pt", data, given={"schedule": "two-step", "epochs": 3,
                                                     "variant": "baseline", "eval_limit": None})
    finally:
        tr.set_binary_weights = orig
    assert seen == [False, True]
    assert [m["phase"] for m in ck["metrics"]] == ["step1", "step1", "step2"]
    assert ck["binary_weights"] and ck["metrics"][-1]["test_images"] == 4
    assert tr.phases(tr.resolve_config({"schedule": "two-step", "epochs": 3}))[1][4] == 0.0
    # in step 1 the binary conv uses real weights; the switch is reversible
    model = TinyNet()
    x = torch.randn(2, 8, 8, 8)
    binary = model.conv.dot(x)
    tr.set_binary_weights(model, False)
    real = model.conv.dot(x)
    assert not torch.equal(binary, real) and torch.equal(binary, torch.round(binary))
    tr.set_binary_weights(model, True)
    assert torch.equal(model.conv.dot(x), binary)


def test_settings_are_checked():
    for bad, match in (({"network": "resnet50"}, "unknown network"),
                       ({"variant": "nope"}, "unknown variant"),
                       ({"variant": "ptq"}, "convert-ptq"),
                       ({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"),
                       ({"schedule": "two-step", "epochs": 1}, "two-step")):
        with pytest.raises(BincountError, match=match):
            tr.resolve_config(bad)
    assert tr.cosine_lr(1.0, 0, 10) == 1.0 and tr.cosine_lr(1.0, 10, 10) == 0.0


def _cli(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_bad_data_leaves_no_checkpoint(tmp_path, capsys, tiny):
    ckpt = tmp_path / "runs" / "ck.pt"
    rc, out, err = _cli(["train", "--epochs", "1", "--data-dir", str(tmp_path / "missing"),
                         "--checkpoint", str(ckpt), "--quiet"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "train.tar.gz" in err and "data_batch_1.bin" in err
    assert not ckpt.exists() and not (tmp_path / "runs").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.tar.gz").write_bytes(b"garbage")
    rc, out, err = _cli(["train", "--epochs", "1", "--data-dir", str(bad), "--checkpoint",
                         str(ckpt), "--quiet"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "not a readable tar.gz" in err
    assert not ckpt.exists()
    rc, out, err = _cli(["eval", "--checkpoint", str(ckpt)], capsys)
    assert rc == 2 and err.count("\n") == 1 and "does not exist" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    rc, out, err = _cli(["eval", "--checkpoint", str(tmp_path / "junk.pt")], capsys)
    assert rc == 2 and err.count("\n") == 1 and "not a readable bincount checkpoint" in err
    rc, out, err = _cli(["train", "--resume", "--checkpoint", str(ckpt)], capsys)
    assert rc == 2 and "does not exist" in err


def test_cli_real_network_train_eval_ptq(tmp_path, jpeg_dir, capsys, monkeypatch,
                                         failing_replace):
    base = tmp_path / "base.pt"
    common = ["--data-dir", str(jpeg_dir), "--threads", "1", "--quiet"]
    rc, out, err = _cli(["train", "--network", "birealnet18", "--width-mult", "0.0625",
                         "--epochs", "1", "--batch-size", "20", "--train-limit", "20",
                         "--checkpoint", str(base), "--device", "cpu"] + common, capsys)
    assert rc == 0, err
    assert "birealnet18 baseline" in out and "top-1" in out
    ck = torch.load(base, weights_only=True)
    assert ck["network"] == "birealnet18" and ck["epoch"] == 1
    rc, out, err = _cli(["eval", "--checkpoint", str(base), "--json"] + common, capsys)
    assert rc == 0, err
    import json

    res = json.loads(out)
    assert res["images"] == 20 and 0 <= res["top1"] <= res["top5"] <= 100
    ptq = tmp_path / "ptq.pt"
    rc, out, err = _cli(["convert-ptq", "--checkpoint", str(base), "-o", str(ptq)], capsys)
    assert rc == 0, err
    ck = torch.load(ptq, weights_only=True)
    assert ck["variant"] == "ptq" and "optimizer" not in ck
    rc, out, err = _cli(["eval", "--checkpoint", str(ptq), "--limit", "10"] + common, capsys)
    assert rc == 0 and "ptq" in out and "on 10 test images" in out
    rc, out, err = _cli(["convert-ptq", "--checkpoint", str(ptq), "-o", str(tmp_path / "x.pt")],
                        capsys)
    assert rc == 2 and "baseline" in err and not (tmp_path / "x.pt").exists()
    # --force over an earlier conversion whose summary cannot be written: both stay as they were
    earlier = {p: p.read_bytes() for p in (ptq, ptq.with_suffix(".json"))}
    failing_replace(lambda src, dst: dst == str(ptq.with_suffix(".json")))
    rc, out, err = _cli(["convert-ptq", "--checkpoint", str(base), "-o", str(ptq), "--force"],
                        capsys)
    assert rc == 2 and "ptq.json': No space left on device" in err, err
    assert {p: p.read_bytes() for p in earlier} == earlier
    monkeypatch.undo()
    # QAT fine-tuning from the baseline, and a mismatched --from-baseline
    rc, out, err = _cli(["train", "--network", "birealnet18", "--variant", "qat_cn_times_alpha",
                         "--width-mult", "0.0625", "--epochs", "1", "--batch-size", "10",
                         "--train-limit", "10", "--eval-limit", "10", "--from-baseline",
                         str(base), "--checkpoint", str(tmp_path / "qat.pt")] + common, capsys)
    assert rc == 0, err
    rc, out, err = _cli(["train", "--network", "reactnet18", "--width-mult", "0.0625",
                         "--epochs", "1", "--from-baseline", str(base), "--checkpoint",
                         str(tmp_path / "bad.pt")] + common, capsys)
    assert rc == 2 and "birealnet18" in err and not (tmp_path / "bad.pt").exists()


def test_progress_lines_when_not_a_terminal():
    import io

    from bincount.model.training.progress import Progress

    buf = io.StringIO()
    bar = Progress(10, "work", stream=buf, log_interval=0)
    for _ in range(10):
        bar.update(1, loss="0.5")
    bar.close()
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue() and lines[-1].startswith("work [")
    assert "10/10" in lines[-1] and "loss 0.5" in lines[-1]


def test_flag_parsing():
    from bincount.model.cli.train_cli import parse_flags

    assert parse_flags(["shortcut=concat", "pad-value=-1", "alpha_init=2.5", "x=true"]) == {
        "shortcut": "concat", "pad_value": -1, "alpha_init": 2.5, "x": True}
    with pytest.raises(BincountError, match="KEY=VALUE"):
        parse_flags(["shortcut"])
