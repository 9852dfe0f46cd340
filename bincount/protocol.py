"""The board wire protocol, version 1 (``docs/protocol.md``): constants, frame encoding and an
incremental frame decoder. Pure Python (no numpy, torch or amaranth): the host driver
(:mod:`bincount.board_link`) and the gateware (:mod:`bincount.gateware.board_core`) both take
their numbers from here.

Every frame, in both directions::

    B1 C0 | VERSION | TYPE | LEN (u16, little-endian) | PAYLOAD (LEN bytes) | CHECK

``CHECK`` makes the bytes from ``VERSION`` to ``CHECK`` sum to 0 modulo 256.
"""

import struct
from dataclasses import dataclass

__all__ = [
    "MAGIC", "VERSION", "HEADER_BYTES", "FRAME_OVERHEAD", "CMD_INFO", "CMD_CLASSIFY",
    "REPLY_INFO", "REPLY_RESULT", "REPLY_ERROR", "ERRORS", "ERROR_NAMES", "ERR_BAD_VERSION",
    "ERR_UNKNOWN_COMMAND", "ERR_BAD_LENGTH", "ERR_CHECKSUM", "ERR_BUSY", "ERR_OVERRUN",
    "ERR_TIMEOUT", "ERR_FRAMING", "INFO_LENGTH", "ERROR_LENGTH", "LOGIT_BYTES", "DIGEST_BYTES",
    "MAX_IN_FLIGHT", "checksum", "frame", "info_request", "classify_request", "result_length",
    "classify_length", "Frame", "Info", "Result", "BoardError", "FrameDecoder", "parse_info",
    "parse_result", "parse_error", "plausible_reply", "info_payload", "result_payload",
    "error_payload",
]

#: Start of every frame.
MAGIC = bytes((0xB1, 0xC0))
#: Protocol version carried by every frame.
VERSION = 1
#: MAGIC, VERSION, TYPE, LEN.
HEADER_BYTES = 6
#: Bytes of a frame besides its payload (header and CHECK).
FRAME_OVERHEAD = HEADER_BYTES + 1

CMD_INFO = 0x01
CMD_CLASSIFY = 0x02
REPLY_INFO = 0x81
REPLY_RESULT = 0x82
REPLY_ERROR = 0xFF

ERR_BAD_VERSION = 0x01
ERR_UNKNOWN_COMMAND = 0x02
ERR_BAD_LENGTH = 0x03
ERR_CHECKSUM = 0x04
ERR_BUSY = 0x05
ERR_OVERRUN = 0x06
ERR_TIMEOUT = 0x07
ERR_FRAMING = 0x08
#: code -> (name, meaning)
ERRORS = {
    ERR_BAD_VERSION: ("bad-version", "the frame's VERSION is not the board's (detail: the "
                                     "board's version)"),
    ERR_UNKNOWN_COMMAND: ("unknown-command", "TYPE is not a command"),
    ERR_BAD_LENGTH: ("bad-length", "LEN is not the command's length (detail: that length)"),
    ERR_CHECKSUM: ("checksum", "the bytes from VERSION to CHECK do not sum to 0 mod 256"),
    ERR_BUSY: ("busy", "MAX_IN_FLIGHT images are already in the network (detail: that "
                       "number); the image was not classified"),
    ERR_OVERRUN: ("overrun", "the board's receive buffer overflowed: bytes were lost"),
    ERR_TIMEOUT: ("timeout", "the frame stopped arriving before its end"),
    ERR_FRAMING: ("framing", "a byte of the frame had no stop bit (wrong baud rate?)"),
}
ERROR_NAMES = {code: name for code, (name, _) in ERRORS.items()}

#: Payload lengths of the fixed-size replies.
INFO_LENGTH = 24
ERROR_LENGTH = 5
#: Each logit travels as a signed little-endian integer of this many bytes.
LOGIT_BYTES = 4
#: Bytes of the export digest (SHA-256, ``bincount.hw.network_emit.export_digest``) in INFO.
DIGEST_BYTES = 8
#: CLASSIFY frames the board accepts before their results have been sent; one more is
#: answered ``busy``.
MAX_IN_FLIGHT = 4


def checksum(body):
    """The CHECK byte of ``body`` (the bytes from VERSION to the end of the payload)."""
    return (-sum(body)) & 0xFF


def frame(type_, payload=b"", version=VERSION):
    """One frame of ``type_`` carrying ``payload``."""
    payload = bytes(payload)
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes; at most 65535 fit a frame")
    body = bytes((version, type_)) + struct.pack("<H", len(payload)) + payload
    return MAGIC + body + bytes((checksum(body),))


def info_request():
    """The INFO command frame."""
    return frame(CMD_INFO)


def classify_length(image_bytes):
    """LEN of a CLASSIFY frame: the tag byte and the image."""
    return 1 + image_bytes


def classify_request(tag, image):
    """The CLASSIFY frame of ``image`` (bytes: R, G, B per pixel, raster order) with ``tag``
    (0..255, echoed in the reply)."""
    return frame(CMD_CLASSIFY, bytes((tag & 0xFF,)) + bytes(image))


def result_length(classes):
    """LEN of a RESULT reply: tag, class, ``classes`` logits."""
    return 2 + LOGIT_BYTES * classes


@dataclass(frozen=True)
class Frame:
    version: int
    type: int
    payload: bytes


@dataclass(frozen=True)
class Info:
    """The board's INFO reply."""

    version: int
    height: int
    width: int
    channels: int
    classes: int
    logit_bits: int
    logit_frac: int
    max_in_flight: int
    digest: bytes
    cycles_per_image: int
    divisor: int

    @property
    def image_bytes(self):
        return self.height * self.width * self.channels

    def as_dict(self):
        return {"protocol_version": self.version, "height": self.height, "width": self.width,
                "channels": self.channels, "classes": self.classes,
                "logit_bits": self.logit_bits, "logit_frac": self.logit_frac,
                "max_in_flight": self.max_in_flight, "export_digest": self.digest.hex(),
                "cycles_per_image": self.cycles_per_image, "divisor": self.divisor}


@dataclass(frozen=True)
class Result:
    tag: int
    prediction: int
    logits: tuple


@dataclass(frozen=True)
class BoardError:
    code: int
    command: int
    tag: int
    detail: int

    @property
    def name(self):
        return ERROR_NAMES.get(self.code, f"error 0x{self.code:02x}")

    def describe(self):
        meaning = ERRORS.get(self.code, ("", "an error code this driver does not know"))[1]
        return f"{self.name} (detail {self.detail}): {meaning}"


def info_payload(height, width, channels, classes, logit_bits, logit_frac, digest,
                 cycles_per_image, divisor, max_in_flight=MAX_IN_FLIGHT):
    """The INFO reply's payload (``INFO_LENGTH`` bytes)."""
    digest = bytes(digest)[:DIGEST_BYTES]
    return struct.pack("<8B8sII", VERSION, height, width, channels, classes, logit_bits,
                       logit_frac, max_in_flight, digest, cycles_per_image, divisor)


def result_payload(tag, prediction, logits):
    """The RESULT reply's payload."""
    return bytes((tag & 0xFF, prediction & 0xFF)) + b"".join(
        struct.pack("<i", int(v)) for v in logits)


def error_payload(code, command=0, tag=0, detail=0):
    """The ERROR reply's payload (``ERROR_LENGTH`` bytes)."""
    return struct.pack("<BBBH", code, command, tag, detail)


def plausible_reply(version, type_, length):
    """Whether a reply header can be a board's reply (any length for another protocol version:
    the driver reports the version)."""
    if version != VERSION:
        return True
    if type_ == REPLY_INFO:
        return length == INFO_LENGTH
    if type_ == REPLY_ERROR:
        return length == ERROR_LENGTH
    if type_ == REPLY_RESULT:
        return length >= 2 and (length - 2) % LOGIT_BYTES == 0
    return False


def parse_info(payload):
    if len(payload) != INFO_LENGTH:
        raise ValueError(f"INFO reply of {len(payload)} bytes; expected {INFO_LENGTH}")
    v = struct.unpack("<8B8sII", payload)
    return Info(version=v[0], height=v[1], width=v[2], channels=v[3], classes=v[4],
                logit_bits=v[5], logit_frac=v[6], max_in_flight=v[7], digest=v[8],
                cycles_per_image=v[9], divisor=v[10])


def parse_result(payload, classes):
    if len(payload) != result_length(classes):
        raise ValueError(f"RESULT reply of {len(payload)} bytes; expected "
                         f"{result_length(classes)} for {classes} classes")
    logits = struct.unpack(f"<{classes}i", payload[2:])
    return Result(tag=payload[0], prediction=payload[1], logits=tuple(logits))


def parse_error(payload):
    if len(payload) != ERROR_LENGTH:
        raise ValueError(f"ERROR reply of {len(payload)} bytes; expected {ERROR_LENGTH}")
    return BoardError(*struct.unpack("<BBBH", payload))


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes, get the complete frames.

    Bytes outside frames (before a magic, or a frame whose CHECK fails) are skipped and
    counted in :attr:`skipped`, the first of them kept in :attr:`garbage` (for messages). A
    header announcing more than ``max_length`` payload bytes, or one that ``accept(version,
    type, length)`` refuses, is treated as garbage at once (so a false magic in garbage cannot
    make the decoder wait for a long payload that hides the next real frame).
    """

    def __init__(self, max_length=4096, accept=None):
        self.buf = bytearray()
        self.skipped = 0
        self.garbage = bytearray()
        self.max_length = max_length
        self.accept = accept

    def _skip(self, n):
        if len(self.garbage) < 32:
            self.garbage += self.buf[:n][:32 - len(self.garbage)]
        self.skipped += n
        del self.buf[:n]

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            i = self.buf.find(MAGIC)
            if i < 0:
                # keep a trailing first magic byte: its second may come next
                keep = 1 if self.buf[-1:] == MAGIC[:1] else 0
                self._skip(len(self.buf) - keep)
                return out
            if i:
                self._skip(i)
            if len(self.buf) < HEADER_BYTES:
                return out
            length = struct.unpack_from("<H", self.buf, 4)[0]
            if length > self.max_length or (self.accept is not None
                                            and not self.accept(self.buf[2], self.buf[3],
                                                                length)):
                self._skip(1)
                continue
            end = HEADER_BYTES + length + 1
            if len(self.buf) < end:
                return out
            if sum(self.buf[2:end]) & 0xFF:
                self._skip(1)
                continue
            out.append(Frame(self.buf[2], self.buf[3], bytes(self.buf[HEADER_BYTES:end - 1])))
            del self.buf[:end]
