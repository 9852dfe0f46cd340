"""``bincount infer`` and the host driver without hardware: a stand-in board on a
pseudo-terminal answers like the gateware (results from the integer reference), or not at all,
or with garbage, another protocol version, another network, an error reply; a missing and a
busy port. Every failure is one line and exit status 2. The real gateware answers the same
driver in ``sim/test_board.py``."""

import json
import os
import struct
import threading
import tty
import zlib

import numpy as np
import pytest
import serial

from bincount import protocol as P
from bincount.board_link import BoardLink
from bincount.cli import main
from bincount.errors import BincountError
from bincount.hw.network_emit import export_digest
from bincount.infer_cli import load_images
from bincount.model.data.cifar import CLASSES, load_test_images
from bincount.model.export.network_file import DEFAULT_EXPORT, load_export
from bincount.model.export.network_reference import NetworkReference, quantize_input

TESTS = [3, 1002]       # two test images of the bundled sample


@pytest.fixture(scope="module")
def network():
    export = load_export(DEFAULT_EXPORT)
    return export, NetworkReference(export)


def info_for(export, digest=None):
    meta = export["meta"]
    return P.info_payload(32, 32, 3, int(meta["head"]["classes"]),
                          int(meta["formats"]["logit_bits"]), int(meta["formats"]["logit_frac"]),
                          digest or bytes.fromhex(export_digest(export))[:P.DIGEST_BYTES],
                          18432, 434)


class FakeBoard:
    """A thread on the master side of a pty: decodes request frames and answers them with
    ``respond(frame) -> bytes``."""

    def __init__(self, respond):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.respond = respond
        self.requests = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import select

        dec = P.FrameDecoder(max_length=1 << 16)
        while not self.stop:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                continue
            for frame in dec.feed(data):
                self.requests.append(frame)
                answer = self.respond(frame)
                if answer:
                    os.write(self.master, answer)

    def close(self):
        self.stop = True
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def board():
    made = []

    def make(respond):
        b = FakeBoard(respond)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def reference_board(export, ref, info=None):
    """Answers as the board: INFO, and CLASSIFY with the integer reference's class and logits."""
    info = info or info_for(export)

    def respond(frame):
        if frame.type == P.CMD_INFO:
            return P.frame(P.REPLY_INFO, info)
        tag, image = frame.payload[0], frame.payload[1:]
        pixels = np.frombuffer(image, dtype=np.uint8).reshape(1, 32, 32, 3)
        logits = ref.run(quantize_input(pixels, export))[0]
        pred = int(np.argmax(logits))
        return P.frame(P.REPLY_RESULT, P.result_payload(tag, pred, [int(v) for v in logits]))

    return respond


def run_cli(argv, capsys):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_line(rc, err):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("bincount infer: error: "), err
    return err


def test_results_equal_the_reference(board, network, capsys, tmp_path):
    export, ref = network
    b = board(reference_board(export, ref))
    pixels, _ = load_test_images(indices=TESTS)
    png = tmp_path / "img.png"
    from PIL import Image
    Image.fromarray(pixels[1]).save(png)
    rc, out, err = run_cli(["infer", "--port", b.port, "--export", DEFAULT_EXPORT, "--json",
                            f"test:{TESTS[0]}", png], capsys)
    assert rc == 0, err
    printed = json.loads(out)
    logits = ref.run(quantize_input(pixels, export))
    assert [r["logits"] for r in printed["images"]] == logits.tolist()
    assert [r["class"] for r in printed["images"]] == np.argmax(logits, axis=1).tolist()
    assert [r["name"] for r in printed["images"]] == [CLASSES[int(k)] for k in
                                                      np.argmax(logits, axis=1)]
    assert printed["board"]["export_digest"] == export_digest(export)[:16]
    assert printed["images_per_second"] > 0
    # requests: INFO, then the images as their bytes with tags 0, 1
    assert [f.type for f in b.requests] == [P.CMD_INFO, P.CMD_CLASSIFY, P.CMD_CLASSIFY]
    assert [f.payload for f in b.requests[1:]] == [bytes((k,)) + pixels[k].tobytes()
                                                   for k in range(2)]
    rc, out, err = run_cli(["infer", "--port", b.port, f"test:{TESTS[0]}"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    k = int(np.argmax(logits[0]))
    assert lines[1].startswith(f"test:{TESTS[0]}  class {k} ({CLASSES[k]})  logits "
                               + " ".join(str(v) for v in logits[0]))
    assert lines[2].startswith("1 images in ")


def test_missing_and_busy_port(board, capsys, tmp_path):
    err = one_line(*run_cli(["infer", "--port", tmp_path / "ttyNONE", "test:3"], capsys)[::2])
    assert "no such serial port" in err and "ttyNONE" in err
    err = one_line(*run_cli(["infer", "--port", "/dev/null", "test:3"], capsys)[::2])
    assert "'/dev/null' is not a serial port; expected the board's USB serial port" in err
    err = one_line(*run_cli(["infer", "--port", tmp_path, "test:3"], capsys)[::2])
    assert "is a directory; expected the board's USB serial port" in err
    b = board(lambda frame: None)
    holder = serial.Serial(b.port, 115200, exclusive=True)
    try:
        err = one_line(*run_cli(["infer", "--port", b.port, "test:3"], capsys)[::2])
        assert "is in use by another program" in err
    finally:
        holder.close()


@pytest.mark.parametrize("behaviour, message", [
    ("silent", "no answer from the board on .* to INFO within 0.3 s"),
    ("garbage", "answered INFO with garbage \\(\\d+ bytes that are no protocol frame, "
                "starting 55 aa"),
    ("version", "speaks protocol version 2; this bincount speaks version 1"),
    ("version-error", "speaks protocol version 7; this bincount speaks version 1"),
    ("other-network", "runs another network \\(export digest 0000000000000000"),
    ("busy", "answered CLASSIFY of test:3 with error busy \\(detail 4\\)"),
    ("classify-silent", "no answer from the board on .* to CLASSIFY of test:3"),
])
def test_board_failures_are_one_line(board, network, capsys, behaviour, message):
    import re

    export, ref = network
    good = reference_board(export, ref)

    def respond(frame):
        if behaviour == "silent":
            return b""
        if behaviour == "garbage":
            return bytes([0x55, 0xAA] * 40)
        if behaviour == "version":
            body = P.frame(P.REPLY_INFO, info_for(export), version=2)
            return body
        if behaviour == "version-error":
            return P.frame(P.REPLY_ERROR, P.error_payload(P.ERR_BAD_VERSION, frame.type, 0, 7))
        if behaviour == "other-network" and frame.type == P.CMD_INFO:
            return P.frame(P.REPLY_INFO, info_for(export, digest=bytes(8)))
        if behaviour == "busy" and frame.type == P.CMD_CLASSIFY:
            return P.frame(P.REPLY_ERROR, P.error_payload(P.ERR_BUSY, frame.type,
                                                          frame.payload[0], 4))
        if behaviour == "classify-silent" and frame.type == P.CMD_CLASSIFY:
            return b""
        return good(frame)

    b = board(respond)
    rc, _, err = run_cli(["infer", "--port", b.port, "--timeout", "0.3", "--export",
                          DEFAULT_EXPORT, "test:3"], capsys)
    assert re.search(message, one_line(rc, err)), err


def test_bad_images_before_the_port(capsys, tmp_path, monkeypatch):
    from PIL import Image

    from bincount.model.data import cifar

    # as in a bare clone: no data folder beside the repository, only the bundled sample
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)
    monkeypatch.setattr(cifar, "_REPO", tmp_path / "clone")

    big = tmp_path / "big.png"
    Image.new("RGB", (64, 48)).save(big)
    gif = tmp_path / "x.gif"
    Image.new("RGB", (32, 32)).save(gif)
    def png_header(path, width, height):        # the header alone: no pixels to decode
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(
                ">I", zlib.crc32(kind + data))
        path.write_bytes(b"\x89PNG\r\n\x1a\n"
                         + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                         + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
        return path

    bomb = png_header(tmp_path / "bomb.png", 50000, 50000)
    medium = png_header(tmp_path / "medium.png", 10000, 10000)   # PIL's warning size
    port = tmp_path / "never-opened"
    for image, message in [(big, "is 64x48; expected a 32x32 image"),
                           (bomb, "claims too many pixels to decode safely "
                                  "(DecompressionBombError); expected a 32x32 PNG or JPEG"),
                           (medium, "too many pixels to decode safely (DecompressionBomb"),
                           (gif, "is a GIF image; expected a 32x32 PNG or JPEG"),
                           (tmp_path, "is a directory"),
                           (tmp_path / "none.jpg", "does not exist"),
                           ("test:x", "'x' is not a test index"),
                           ("test:500", "image index 500 is not in the bundled sample")]:
        err = one_line(*run_cli(["infer", "--port", port, image], capsys)[::2])
        assert message in err, err
    rc, _, err = run_cli(["infer", "--port", port, "--timeout", "0", "test:3"], capsys)
    assert rc == 2 and "--timeout" in err


def test_load_images_bytes_are_raster_rgb():
    (name, data), = load_images(["test:3"])
    pixels, _ = load_test_images(indices=[3])
    assert name == "test:3" and data == pixels[0].tobytes() and len(data) == 3072


class ScriptedPort:
    """A serial-like object that answers each write with the next scripted reply."""

    def __init__(self, replies):
        self.replies, self.pending = list(replies), bytearray()

    def write(self, data):
        if self.replies:
            self.pending += self.replies.pop(0)

    def read(self, n):
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out


def test_driver_checks_tags_and_pairs_replies(network):
    export, _ = network
    info = P.frame(P.REPLY_INFO, info_for(export))
    result = P.frame(P.REPLY_RESULT, P.result_payload(5, 1, range(10)))
    link = BoardLink(ScriptedPort([info, result]), "fake", 115200, 0.2)
    assert link.hello().classes == 10
    with pytest.raises(BincountError, match="result of tag 5; expected tag 0"):
        link.classify([bytes(3072)], ["img"])
    # garbage before a good frame is skipped
    link = BoardLink(ScriptedPort([b"\x00\xb1\x13" + info]), "fake", 115200, 0.2)
    assert link.hello().digest == bytes.fromhex(export_digest(export))[:P.DIGEST_BYTES]


def test_protocol_doc_examples_are_what_the_code_sends(network):
    """Every byte-exact example of docs/protocol.md is what bincount.protocol makes."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()
    doc = " ".join(doc.split())

    def hx(b):
        return b.hex(" ").upper()

    export, _ = network
    grey = P.classify_request(7, bytes([0x80]) * 3072)
    examples = [
        P.info_request(),
        P.frame(P.REPLY_INFO, info_for(export)),
        P.frame(P.REPLY_RESULT, P.result_payload(7, 3, [65536, -65536, 0, 1, -1, 200000,
                                                        2**31 - 1, -2**31, 12345, -12345])),
        P.frame(P.CMD_INFO, version=2),
        P.frame(P.REPLY_ERROR, P.error_payload(P.ERR_BAD_VERSION, P.CMD_INFO, 0, P.VERSION)),
        P.frame(0x33), P.frame(P.REPLY_ERROR, P.error_payload(P.ERR_UNKNOWN_COMMAND, 0x33)),
        P.frame(P.CMD_CLASSIFY, bytes(5)),
        P.frame(P.REPLY_ERROR, P.error_payload(P.ERR_BAD_LENGTH, P.CMD_CLASSIFY, 0, 3073)),
        P.frame(P.REPLY_ERROR, P.error_payload(P.ERR_BUSY, P.CMD_CLASSIFY, 7, P.MAX_IN_FLIGHT)),
    ] + [P.frame(P.REPLY_ERROR, P.error_payload(code, P.CMD_CLASSIFY, 7))
         for code in (P.ERR_CHECKSUM, P.ERR_OVERRUN, P.ERR_TIMEOUT, P.ERR_FRAMING)]
    for example in examples:
        assert hx(example) in doc, hx(example)
    assert f"{hx(grey[:9])} ... {hx(grey[-2:])}" in doc and len(grey) == 3080
    assert export_digest(export)[:16] in doc


def test_hello_skips_an_earlier_runs_replies_and_asks_again(network):
    export, _ = network
    stale = (P.frame(P.REPLY_RESULT, P.result_payload(3, 1, range(10)))
             + P.frame(P.REPLY_ERROR, P.error_payload(P.ERR_TIMEOUT, P.CMD_CLASSIFY, 4)))
    port = ScriptedPort([stale, P.frame(P.REPLY_INFO, info_for(export))])
    port.writes = 0
    write = port.write

    def counting(data):
        port.writes += 1
        write(data)

    port.write = counting
    link = BoardLink(port, "fake", 115200, 0.5)
    assert link.hello().classes == 10 and port.writes == 2


def test_a_false_magic_in_garbage_does_not_hide_the_reply(network):
    export, _ = network
    info = P.frame(P.REPLY_INFO, info_for(export))
    # B1 C0 01 81 with LEN 4000: no INFO reply is that long, so it is skipped at once
    link = BoardLink(ScriptedPort([bytes.fromhex("b1c00181a00f") + info]), "fake", 115200, 0.2)
    assert link.hello().classes == 10
    assert link.decoder.skipped == 6
