"""Bad input, interruption and concurrent use: one line on stderr, exit status 2 (130 / 143 for
SIGINT / SIGTERM), nothing partial or replaced, nothing unpickled; one test per class of the
README's promise."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bincount.cli import main
from bincount.errors import BincountError
from bincount.fileio import atomic_write_bytes
from bincount.model.data import cifar

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_data(tmp_path, monkeypatch):
    monkeypatch.setenv(cifar.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setenv(cifar.ENV_VAR, str(tmp_path / "no-data"))


def _main(argv, capsys):
    """``(exit status, stderr)`` of ``bincount ARGV`` (argparse errors included)."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


def _one_line(verb, rc, err):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith(f"bincount {verb}: error: "), err
    assert "Traceback" not in err
    return err


def _no_work(monkeypatch, *targets):
    """Make any of ``targets`` (``(object, name)``) fail the test if the verb reaches it."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the work started before the input was checked")
    for obj, name in targets:
        monkeypatch.setattr(obj, name, forbidden)


def _ckpt(**changes):
    """A well-formed checkpoint dict (as bincount train writes it) with ``changes``; a value
    ``...`` removes the field."""
    ck = {"format": "bincount-checkpoint", "version": 1, "network": "reactnet18",
          "variant": "baseline", "width_mult": 0.0625, "flags": {}, "epoch": 1, "done": False,
          "binary_weights": True, "config": {"network": "reactnet18", "variant": "baseline",
                                             "width_mult": 0.0625, "epochs": 2},
          "optimizer": {"state": {}, "param_groups": []}, "metrics": [],
          "model": {"stem.weight": torch.zeros(2, 3, 3, 3)}}
    for key, value in changes.items():
        if value is ...:
            ck.pop(key)
        else:
            ck[key] = value
    return ck


def _save(path, obj):
    torch.save(obj, path)
    return path


# -- 1. a line, not a traceback -------------------------------------------------------------

def test_width_beyond_the_tools_is_refused_before_any_work(monkeypatch, tmp_path, capsys):
    from bincount.hw import emit, report
    from bincount.hw.limits import MAX_N

    _no_work(monkeypatch, (emit, "emit_component"), (report, "build_report"))
    t0 = time.monotonic()
    for n in (65536, MAX_N + 1):
        err = _one_line("generate", *_main(["generate", "xnor_popcount", "--n", n, "-o",
                                            tmp_path / "v"], capsys))
        assert f"1..{MAX_N}" in err
        err = _one_line("report", *_main(["report", "--widths", "576", n, "-o",
                                          tmp_path / "r"], capsys))
        assert f"1..{MAX_N}" in err
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "v").exists() and not (tmp_path / "r").exists()
    help_text = main.__globals__["build_parser"]().format_help()   # the verbs still build
    assert "generate" in help_text


@pytest.mark.parametrize("changes, field", [
    ({"version": "one"}, "version"), ({"version": [1]}, "version"),
    ({"network": ...}, "network"), ({"model": ...}, "model"),
    ({"width_mult": "wide"}, "width_mult"), ({"flags": [1, 2]}, "flags"),
    ({"model": {"stem.weight": [1.0]}}, "model"), ({"config": "x"}, "config"),
    ({"epoch": "1"}, "epoch"), ({"binary_weights": "yes"}, "binary_weights"),
    ({"metrics": [{"foo": 1}]}, "metrics"),
    ({"metrics": [{"epoch": 1, "test_top1": "a", "test_top5": 9.0, "test_images": 10}]},
     "test_top1"),
])
def test_malformed_checkpoint_fields_are_one_line_in_every_reader(tmp_path, capsys, changes,
                                                                  field):
    ck = _save(tmp_path / "ck.pt", _ckpt(**changes))
    for verb, extra in (("eval", []), ("convert-ptq", ["-o", tmp_path / "out.pt"]),
                        ("export", ["-o", tmp_path / "out.npz"]),
                        ("train", ["--resume"])):
        err = _one_line(verb, *_main([verb, "--checkpoint", ck] + extra, capsys))
        assert repr(str(ck)) in err and field in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_a_bad_recorded_setting_is_the_checkpoints(tmp_path, capsys):
    ck = _save(tmp_path / "ck.pt", _ckpt(config={"network": "reactnet18", "variant": "baseline",
                                                 "width_mult": 0.0625, "epochs": "many"}))
    err = _one_line("train", *_main(["train", "--resume", "--checkpoint", ck], capsys))
    assert f"--checkpoint {str(ck)!r}: its recorded settings: epochs must be" in err, err


def test_foreign_or_odd_tensors_are_one_line_without_warnings(tmp_path, capsys):
    import pickle

    plain = tmp_path / "plain.pt"                      # a bare pickle (torch warns about it)
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:    # they would print on stderr
        warnings.simplefilter("always")
        err = _one_line("export", *_main(["export", "--checkpoint", plain, "-o",
                                          tmp_path / "e.npz"], capsys))
    assert repr(str(plain)) in err and [str(w.message) for w in caught] == []
    complex_ck = _save(tmp_path / "c.pt", _ckpt(model={"stem.weight": torch.zeros(
        2, 3, 3, 3, dtype=torch.complex64)}))
    err = _one_line("export", *_main(["export", "--checkpoint", complex_ck, "-o",
                                      tmp_path / "e.npz"], capsys))
    assert "'stem.weight' is torch.complex64" in err
    from bincount.model.nets.networks import build_network

    state = {k: v.clone() for k, v in build_network("reactnet18", "baseline",
                                                     0.0625).state_dict().items()}
    state["stem.conv.weight"] = state["stem.conv.weight"].to(torch.int64)
    int_ck = _save(tmp_path / "i.pt", _ckpt(model=state))
    err = _one_line("export", *_main(["export", "--checkpoint", int_ck, "-o",
                                      tmp_path / "e.npz"], capsys))
    assert "'stem.conv.weight' is torch.int64" in err and "torch.float32" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "i.pt", "plain.pt"]


@pytest.mark.parametrize("argv, verb", [(["ops", "extra"], "ops"),
                                        (["generate", "network", "zzz"], "generate"),
                                        (["train", "--epochs", "1", "stray"], "train"),
                                        (["data", "fetch", "--bogus"], "data fetch")])
def test_a_stray_argument_is_named_by_its_verb(argv, verb, capsys):
    rc, err = _main(argv, capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith(f"bincount {verb}: error: unrecognized arguments: {argv[-1]}; "
                          f"see 'bincount {verb} --help'"), err


@pytest.mark.parametrize("argv, message", [
    (["train", "--checkpoint", ""], "--checkpoint '' names no file; expected a file path"),
    (["train", "--checkpoint", "/"], "--checkpoint '/' names no file"),
    (["convert-ptq", "--checkpoint", "b.pt", "-o", ""], "-o '' names no file"),
    (["convert-ptq", "--checkpoint", "", "-o", "p.pt"], "--checkpoint '' names no file"),
])
def test_a_path_that_names_no_file_is_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _one_line(argv[0], *_main(argv, capsys))
    assert message in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_option_before_the_verb_says_where_options_go(capsys):
    rc, err = _main(["--quiet", "report"], capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith("bincount report: error: unrecognized arguments: --quiet (--quiet "
                          "given before the verb; options go after 'bincount report'); see "
                          "'bincount report --help'"), err
    rc, err = _main(["--x", "ops", "--y"], capsys)
    assert rc == 2 and "unrecognized arguments: --x --y (--x given before the verb" in err, err


@pytest.mark.parametrize("flag, message", [("pad_value=banana", "flag pad_value='banana'; "
                                                               "expected a number"),
                                           ("alpha_init=x", "flag alpha_init='x'"),
                                           ("fixed_point=maybe", "flag fixed_point='maybe'; "
                                                                 "expected true or false"),
                                           ("alpha_init=nan", "flag alpha_init=nan; expected a "
                                                              "finite number > 0"),
                                           ("alpha_init=0", "flag alpha_init=0.0; expected")])
def test_a_bad_flag_value_is_named(flag, message, tmp_path, capsys):
    err = _one_line("train", *_main(["train", "--flag", flag, "--checkpoint",
                                     tmp_path / "ck.pt"], capsys))
    assert message in err, err
    assert not (tmp_path / "ck.pt").exists()


@pytest.mark.parametrize("key, part", [("blocks.1.conv.bn.running_var", "stage1.conv2: "),
                                       ("stem.bn.running_var", "stem: ")])
def test_an_export_error_names_the_part(tmp_path, capsys, key, part):
    from bincount.model.nets.networks import build_network

    state = {k: v.clone() for k, v in build_network("reactnet18", "baseline",
                                                     0.0625).state_dict().items()}
    state[key].fill_(-1.0)                          # BN variance + eps below zero
    ck = _save(tmp_path / "ck.pt", _ckpt(model=state))
    err = _one_line("export", *_main(["export", "--checkpoint", ck, "-o", tmp_path / "e.npz"],
                                     capsys))
    assert f"error: {part}BatchNorm variance + eps is not positive" in err, err
    assert not (tmp_path / "e.npz").exists()
    state[key].fill_(1.0)
    state["head.fc.bias"].fill_(1e9)               # the folding's own message names the head
    ck = _save(tmp_path / "ck.pt", _ckpt(model=state))
    err = _one_line("export", *_main(["export", "--checkpoint", ck, "-o", tmp_path / "e.npz"],
                                     capsys))
    assert "error: head: an offset does not fit" in err, err


def test_a_flipped_byte_in_a_checkpoint_is_found(tmp_path, capsys):
    import struct
    import zipfile

    ck = _save(tmp_path / "ck.pt", _ckpt(model={"stem.weight": torch.ones(64, 3, 3, 3)}))
    with zipfile.ZipFile(ck) as z:
        m = max(z.infolist(), key=lambda i: i.file_size)
    raw = bytearray(ck.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[m.header_offset + 26:m.header_offset + 30])
    raw[m.header_offset + 30 + name_len + extra_len + 100] ^= 0x40     # inside the tensor
    ck.write_bytes(bytes(raw))
    for verb, extra in (("eval", []), ("export", ["-o", tmp_path / "e.npz"])):
        err = _one_line(verb, *_main([verb, "--checkpoint", ck] + extra, capsys))
        assert f"{str(ck)!r} is damaged: its member {m.filename} fails its CRC-32 check" \
            in err, err
    # a truncated archive, and a damaged compressed member: one line, no traceback
    ck.write_bytes(bytes(raw[:len(raw) // 2]))
    err = _one_line("eval", *_main(["eval", "--checkpoint", ck], capsys))
    assert "a damaged or foreign zip archive (zipfile.BadZipFile)" in err, err
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.pkl", b"x" * 4096)
    raw = bytearray(buf.getvalue())
    raw[40:42] = b"\xff\xff"                       # inside the deflate stream: zlib.error
    ck.write_bytes(bytes(raw))
    err = _one_line("eval", *_main(["eval", "--checkpoint", ck], capsys))
    assert "a damaged or foreign zip archive (zlib.error)" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_empty_checkpoint_is_one_line(tmp_path, capsys):
    ck = tmp_path / "empty.pt"
    ck.write_bytes(b"")
    for verb, extra in (("export", ["-o", tmp_path / "e.npz"]), ("eval", [])):
        err = _one_line(verb, *_main([verb, "--checkpoint", ck] + extra, capsys))
        assert "is empty" in err


@pytest.mark.parametrize("argv, option", [
    (["eval", "--checkpoint", "x.pt", "--threads", "-1"], "--threads"),
    (["eval", "--checkpoint", "x.pt", "--threads", "0"], "--threads"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--seed", str(2**64)], "--seed"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--width-mult", "1e9"], "--width-mult"),
    (["export-layer", "--cin", "64", "--seed", "-1"], "--seed"),
    (["export-layer", "--cin", "64", "--cout", "100000000"], "--cout"),
    (["golden", "--export", "x.npz", "--synthetic", "2", "--seed", str(2**70)], "--seed"),
])
def test_numeric_options_out_of_range(argv, option, capsys):
    rc, err = _main(argv, capsys)
    assert rc == 2 and err.count("\n") == 1 and option in err and "range" in err, err


# -- 2. nothing lost --------------------------------------------------------------------------

def test_outputs_are_never_silently_replaced(tmp_path, capsys):
    ck = _save(tmp_path / "base.pt", _ckpt())
    before = ck.read_bytes()
    err = _one_line("convert-ptq", *_main(["convert-ptq", "--checkpoint", ck, "-o", ck],
                                          capsys))
    assert "is the input --checkpoint" in err
    err = _one_line("convert-ptq", *_main(["convert-ptq", "--checkpoint", ck, "-o", ck,
                                           "--force"], capsys))
    assert "is the input --checkpoint" in err and ck.read_bytes() == before
    kept = tmp_path / "kept.npz"
    kept.write_bytes(b"precious")
    for argv in (["convert-ptq", "--checkpoint", ck, "-o", kept],
                 ["export", "--checkpoint", ck, "-o", kept],
                 ["golden", "--export", tmp_path / "x.npz", "-o", kept],
                 ["export-layer", "--cin", "64", "-o", kept]):
        err = _one_line(argv[0], *_main(argv, capsys))
        assert "already exists" in err and "--force" in err
    assert kept.read_bytes() == b"precious"
    # the summary's suffix for the checkpoint itself: the summary would be lost
    err = _one_line("convert-ptq", *_main(["convert-ptq", "--checkpoint", ck, "-o",
                                           tmp_path / "p.json"], capsys))
    assert "ends in .json" in err and not (tmp_path / "p.json").exists()


def test_one_path_for_two_outputs_is_refused(tmp_path, monkeypatch, capsys):
    from bincount.model.export import probe

    _no_work(monkeypatch, (probe, "calibrated_layer"))
    a = tmp_path / "a.npz"
    err = _one_line("export-layer", *_main(["export-layer", "--cin", "64", "-o", a,
                                            "--vectors", a], capsys))
    assert "--vectors" in err and "also given as -o" in err
    ck = _save(tmp_path / "ck.pt", _ckpt())
    e = tmp_path / "sub" / ".." / "e.npz"           # the same file, spelt differently
    err = _one_line("export", *_main(["export", "--checkpoint", ck, "-o", tmp_path / "e.npz",
                                      "--golden", e, "--synthetic", "1"], capsys))
    assert "--golden" in err and "also given as -o" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_a_checkpoint_in_use_is_refused(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch, (cifar, "find_source"), (cifar, "load_split"))
    ck = tmp_path / "ck.pt"
    lock = tmp_path / ".ck.pt.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)       # another run holds it
        err = _one_line("train", *_main(["train", "--epochs", "1", "--checkpoint", ck],
                                        capsys))
        assert "being written by another bincount process" in err and repr(str(ck)) in err
    finally:
        os.close(fd)
    assert not ck.exists()


# -- 3. every output checked before the work -------------------------------------------------

def test_train_checks_its_checkpoint_path_before_the_work(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch, (cifar, "find_source"), (cifar, "load_split"))
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    err = _one_line("train", *_main(["train", "--epochs", "1", "--checkpoint",
                                     blocker / "run" / "ck.pt"], capsys))
    assert "is a file, not a folder" in err
    err = _one_line("train", *_main(["train", "--epochs", "1", "--checkpoint", tmp_path],
                                    capsys))
    assert "is a directory" in err


# -- 4. messages name the user's path and what would be accepted ------------------------------

class Foreign:
    """Not plain data: weights_only loading refuses it."""


def test_messages_name_the_right_thing(tmp_path, capsys):
    # the user's path, not a temporary file
    target = tmp_path / "out.npz"
    target.mkdir()
    (target / "x").write_text("")
    with pytest.raises(BincountError) as info:
        atomic_write_bytes(target, b"data")
    assert repr(str(target)) in str(info.value) and ".tmp" not in str(info.value)
    assert "a folder has the output's name: remove or rename it" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
    # a refused object: no torch advice to load it unsafely
    obj = _save(tmp_path / "obj.pt", _ckpt(extra=Foreign()))
    err = _one_line("eval", *_main(["eval", "--checkpoint", obj], capsys))
    assert "weights_only" not in err and "torch.load" not in err and "unpickle" in err
    # random bytes are not "pickled data"
    rnd = tmp_path / "random.npz"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    err = _one_line("golden", *_main(["golden", "--export", rnd, "-o", tmp_path / "g.npz"],
                                     capsys))
    assert "pickle" not in err and "not a zip archive" in err
    err = _one_line("eval", *_main(["eval", "--checkpoint", rnd], capsys))
    assert "pickle" not in err and "not a zip archive" in err
    # a directory is a directory
    for argv in (["eval", "--checkpoint", tmp_path], ["golden", "--export", tmp_path,
                                                      "-o", tmp_path / "g.npz"]):
        err = _one_line(argv[0], *_main(argv, capsys))
        assert "is a directory" in err and "does not exist" not in err
    # --data-dir given: no advice to set the environment variable
    err = _one_line("export-layer", *_main(["export-layer", "--cin", "64", "-o",
                                            tmp_path / "l.npz", "--data-dir",
                                            tmp_path / "nodata"], capsys))
    assert "--data-dir" in err and cifar.ENV_VAR not in err and "test.tar.gz" in err


# -- 5. SIGTERM like SIGINT -------------------------------------------------------------------

SLOW_VERB = """
import os, signal, sys, time
import bincount.cli as cli
import bincount.fileio as fileio

# as in a terminal: a process started in the background by a shell without job control
# inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
signal.signal(signal.SIGINT, signal.default_int_handler)

def add_arguments(parser):
    parser.add_argument("out")

def run(args):
    def slow_replace(src, dst):          # the temporary file is complete: the rename waits
        print("writing", flush=True)
        time.sleep(60)
    fileio.os.replace = slow_replace
    fileio.atomic_write_bytes(args.out, b"x" * 1_000_000)
    return 0

sys.modules["slow_verb"] = sys.modules[__name__]
cli.VERBS["slow-write"] = ("slow_verb", "a write that takes a minute")
sys.exit(cli.main(["slow-write", sys.argv[1]]))
"""


@pytest.mark.parametrize("signum, status, name", [(signal.SIGTERM, 143, "SIGTERM"),
                                                  (signal.SIGINT, 130, "SIGINT")])
def test_signals_leave_no_partial_file(tmp_path, signum, status, name):
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW_VERB))
    out = tmp_path / "out" / "big.bin"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert [p.name for p in out.parent.iterdir()]          # the temporary file is there
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert err == f"bincount slow-write: interrupted by {name}\n"
    assert list(out.parent.iterdir()) == []


# -- 6. one reader, one rule ------------------------------------------------------------------

def test_export_reads_checkpoints_as_eval_does(tmp_path, capsys):
    cfg = {"network": "reactnet18", "variant": "baseline", "width_mult": 0.0625}
    foreign = _save(tmp_path / "foreign.pt", {"network_config": cfg, "model": {}})
    nan = _save(tmp_path / "nan.pt", _ckpt(model={"stem.weight": torch.full((2,), np.nan),
                                                  "stem.bias": torch.zeros(2)}))
    for ck, words in ((foreign, "format"), (nan, "'stem.weight' holds NaN")):
        lines = set()
        for verb, extra in (("eval", []), ("export", ["-o", tmp_path / "e.npz"]),
                            ("convert-ptq", ["-o", tmp_path / "p.pt"])):
            err = _one_line(verb, *_main([verb, "--checkpoint", ck] + extra, capsys))
            assert words in err, err
            lines.add(err.split(": error: ", 1)[1])
        assert len(lines) == 1, lines


def test_options_that_do_not_apply_are_refused(tmp_path, monkeypatch, capsys):
    from bincount.hw import report

    _no_work(monkeypatch, (report, "build_report"))
    for argv, option in (
            (["report", "--engine-lanes", "8"], "--engine-lanes"),
            (["report", "--engine-stages", "1"], "--engine-stages"),
            (["report", "--engine-no-fmax"], "--engine-no-fmax"),
            (["export", "--checkpoint", "ck.pt", "--images", "1,2"], "--images"),
            (["export", "--checkpoint", "ck.pt", "--synthetic", "2"], "--synthetic"),
            (["golden", "--export", "x.npz", "--seed", "3"], "--seed"),
            (["golden", "--export", "x.npz", "--synthetic", "2", "--images", "1"], "--images"),
            (["export-layer", "--cin", "64", "--count", "9"], "--count"),
            (["generate", "xnor_popcount", "--n", "8", "--stage", "1"], "--stage")):
        err = _one_line(argv[0], *_main(argv + ["-o", tmp_path / "o"], capsys))
        assert err.split(": error: ", 1)[1].startswith(option), err
    assert not (tmp_path / "o").exists()


# -- 7. argparse errors are one line too ------------------------------------------------------

def test_argparse_errors_are_one_line(capsys):
    for argv in (["train", "--epochs", "x"], ["eval"], ["nonsense"], [],
                 ["report", "--target", "x"]):
        rc, err = _main(argv, capsys)
        assert rc == 2 and err.count("\n") == 1 and ": error: " in err, err
        assert "usage:" not in err and "--help" in err
    readme = (REPO / "README.md").read_text()
    assert "one line on stderr" in readme and "exit status 2" in readme
    assert "143" in readme and "--force" in readme
