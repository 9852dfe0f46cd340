"""`bincount data fetch` against a local HTTP server (with Range support) serving a small fake
binary release, and against files on disk: good, corrupted, interrupted and resumed."""

import errno
import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest

from bincount.cli import main
from bincount.errors import BincountError
from bincount.model.data import cifar, fetch as data_fetch


def fake_release(records=3, seed=0):
    """Bytes of a small ``cifar-10-binary.tar.gz`` and the test split it holds."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    truth = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in data_fetch._all_bins() + ("batches.meta.txt",):
            if name.endswith(".bin"):
                rec = rng.integers(0, 256, (records, cifar.RECORD_BYTES), dtype=np.uint8)
                rec[:, 0] %= 10
                data = rec.tobytes()
                truth[name] = rec
            else:
                data = b"airplane\n"
            info = tarfile.TarInfo(f"{cifar.BIN_FOLDER}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo("../outside.bin")          # never extracted
        evil.size = 3
        tf.addfile(evil, io.BytesIO(b"bad"))
    return buf.getvalue(), truth


class _Server:
    """A loopback HTTP server for one file; honours ``Range: bytes=N-``; counts requests."""

    def __init__(self, body):
        self.body, self.requests = body, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                if start >= len(outer.body):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(outer.body) - start))
                self.end_headers()
                self.wfile.write(outer.body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/cifar-10-binary.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    body, truth = fake_release()
    s = _Server(body)
    s.truth, s.md5 = truth, hashlib.md5(body).hexdigest()
    yield s
    s.close()


def _fetch(tmp_path, *extra):
    return main(["data", "fetch", "--dir", str(tmp_path / "d"), "--quiet", *extra])


def test_download_check_extract(server, tmp_path, capsys, monkeypatch):
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5) == 0
    folder = tmp_path / "d" / cifar.BIN_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(data_fetch._all_bins()
                                                              + ("batches.meta.txt",))
    assert not (tmp_path / "outside.bin").exists() and not (tmp_path / "d" / "outside.bin").exists()
    monkeypatch.setenv(cifar.CACHE_ENV_VAR, str(tmp_path / "cache"))
    images, labels = cifar.load_split("test", tmp_path / "d", cache=False)
    rec = server.truth["test_batch.bin"]
    assert labels.tolist() == rec[:, 0].tolist()
    assert np.array_equal(images, rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    # a second run finds the release and fetches nothing
    n = len(server.requests)
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5) == 0
    assert len(server.requests) == n
    assert "CIFAR-10 binary release in" in capsys.readouterr().out


def test_resume_partial_download(server, tmp_path):
    (tmp_path / "d").mkdir()
    part = tmp_path / "d" / (cifar.BIN_ARCHIVE + ".part")
    part.write_bytes(server.body[:1000])                          # an interrupted download
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5) == 0
    assert server.requests == ["bytes=1000-"]
    assert not part.exists()
    assert (tmp_path / "d" / cifar.BIN_ARCHIVE).read_bytes() == server.body


def test_corrupted_download_is_removed(server, tmp_path, capsys):
    server.body = server.body[:-10] + b"0123456789"                 # same size, wrong bytes
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has MD5" in err and f"expected {server.md5}" in err
    assert not (tmp_path / "d").exists()           # no .part, and no folder the run made


def test_from_file_good_and_bad(server, tmp_path, capsys):
    good = tmp_path / "copy.tar.gz"
    good.write_bytes(server.body)
    assert _fetch(tmp_path, "--from", str(good), "--md5", server.md5) == 0
    assert (tmp_path / "d" / cifar.BIN_FOLDER / "data_batch_5.bin").is_file()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(server.body[: len(server.body) // 2])
    assert main(["data", "fetch", "--dir", str(tmp_path / "e"), "--from", str(bad),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not the CIFAR-10 binary release" in err and bad.exists()
    assert not (tmp_path / "e" / cifar.BIN_FOLDER).exists()


def test_wrong_archive_already_in_place(server, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / cifar.BIN_ARCHIVE).write_bytes(b"not an archive")
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5) == 2
    assert "a partial or wrong file" in capsys.readouterr().err
    assert server.requests == []


def test_archive_with_right_md5_but_missing_files(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo(f"{cifar.BIN_FOLDER}/test_batch.bin")
        data = bytes(cifar.RECORD_BYTES)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    src = tmp_path / "partial.tar.gz"
    src.write_bytes(buf.getvalue())
    with pytest.raises(BincountError, match="lacks cifar-10-batches-bin/data_batch_1.bin"):
        data_fetch.fetch(tmp_path / "d", source=src, md5=hashlib.md5(buf.getvalue()).hexdigest(),
                         quiet=True)
    assert not (tmp_path / "d").exists()
    (tmp_path / "e").mkdir()                                 # a folder the user made stays
    with pytest.raises(BincountError, match="lacks"):
        data_fetch.fetch(tmp_path / "e", source=src, md5=hashlib.md5(buf.getvalue()).hexdigest(),
                         quiet=True)
    assert (tmp_path / "e").is_dir() and src.exists()


def test_downloaded_archive_that_does_not_extract_is_removed(tmp_path, capsys):
    body = b"right MD5, but not a tar.gz"
    s = _Server(body)
    try:
        assert _fetch(tmp_path, "--url", s.url, "--md5", hashlib.md5(body).hexdigest()) == 2
    finally:
        s.close()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a readable tar.gz" in err
    assert err.endswith("removed the downloaded archive")
    assert not (tmp_path / "d").exists()     # a later run with another --url starts afresh
    # an archive already in --dir (not downloaded by this run) is kept
    d = tmp_path / "d2"
    d.mkdir()
    (d / cifar.BIN_ARCHIVE).write_bytes(body)
    assert main(["data", "fetch", "--dir", str(d), "--quiet", "--url", "http://127.0.0.1:9/x",
                 "--md5", hashlib.md5(body).hexdigest()]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a readable tar.gz" in err and "removed" not in err
    assert (d / cifar.BIN_ARCHIVE).read_bytes() == body


def test_a_failed_write_keeps_the_archive(server, tmp_path, capsys, monkeypatch):
    """/dev/full (Linux) fails every write with ENOSPC: a full disk."""
    copy_out = data_fetch._copy_out
    with pytest.raises(BincountError, match="'/dev/full': No space left on device; the archive "
                                            "is kept"):
        copy_out(io.BytesIO(b"x" * 10), "/dev/full")       # a write error, not the archive's

    def full_disk(src, path):
        copy_out(src, "/dev/full")

    monkeypatch.setattr(data_fetch, "_copy_out", full_disk)
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (tmp_path / "d" / cifar.BIN_ARCHIVE).read_bytes() == server.body


def test_a_failed_replace_keeps_the_earlier_release(server, tmp_path, capsys,
                                                    failing_replace):
    """--force over an earlier release: the earlier folder is moved aside whole and put back
    when the new one cannot take its place (it used to be removed file by file first)."""
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5) == 0
    folder = tmp_path / "d" / cifar.BIN_FOLDER
    (folder / "earlier.txt").write_text("earlier run")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    failing_replace(lambda src, dst: src.endswith(".partial"), errno.EACCES)
    assert _fetch(tmp_path, "--url", server.url, "--md5", server.md5, "--force") == 2
    err = capsys.readouterr().err
    assert f"cannot replace {str(folder)!r}: Permission denied" in err, err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
        [cifar.BIN_ARCHIVE, cifar.BIN_FOLDER])


@pytest.mark.parametrize("url", ["notaurl", "http://[::1", "gopher2://x/y"])
def test_url_that_is_not_an_address_is_one_line(tmp_path, capsys, url):
    assert _fetch(tmp_path, "--url", url, "--md5", "0" * 32) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert repr(url) in err and "https://HOST/" in err, err
    assert not (tmp_path / "d").exists()


def test_bad_options(tmp_path, capsys):
    assert main(["data", "fetch", "--url", "http://127.0.0.1:9/x"]) == 2
    assert "--url needs --md5" in capsys.readouterr().err
    assert main(["data", "fetch", "--md5", "xyz"]) == 2
    assert "32 hexadecimal digits" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["data", "fetch", "--dir", str(f), "--from", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
