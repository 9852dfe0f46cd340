"""Host side of the board protocol (``docs/protocol.md``): :class:`BoardLink` talks to a board
(or its simulation) over any serial-like object with ``write(bytes)``, ``read(n)`` (returning
what came within the port's read timeout, possibly nothing) and, optionally,
``reset_input_buffer()``; :func:`open_serial` opens a real port with pyserial.

Every failure is a :class:`~bincount.errors.BincountError` whose message says what the board
did (nothing, garbage, an error reply, another protocol version) and what to check.
"""

import os
import time

from bincount import protocol as P
from bincount.errors import BincountError

__all__ = ["BoardLink", "open_serial", "READ_TIMEOUT", "GARBAGE_LIMIT"]

#: Read timeout of the serial port (s): the granularity of the reply deadlines.
READ_TIMEOUT = 0.02
#: Bytes without a valid frame after which the board's answer counts as garbage.
GARBAGE_LIMIT = 4096


def open_serial(port, baud):
    """Open ``port`` at ``baud`` (8N1, exclusive); one-line errors for a missing, busy or
    inaccessible port."""
    import errno

    import serial

    try:
        return serial.Serial(port, baud, timeout=READ_TIMEOUT, write_timeout=None,
                             exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise BincountError(f"--port {port!r}: no such serial port; expected the board's "
                                f"USB serial port (e.g. /dev/ttyUSB0 on Linux)") from None
        if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively" in text:
            raise BincountError(f"--port {port!r} is in use by another program; close it "
                                f"(a terminal, another bincount infer) and retry") from None
        if code in (errno.EACCES, errno.EPERM):
            raise BincountError(f"--port {port!r}: permission denied; join the group that owns "
                                f"it (dialout / uucp) or use a udev rule") from None
        if isinstance(exc, ValueError):
            raise BincountError(f"--baud {baud}: {text}; expected a rate the port "
                                f"supports") from None
        if os.path.isdir(port):
            raise BincountError(f"--port {port!r} is a directory; expected the board's USB "
                                f"serial port (e.g. /dev/ttyUSB0 on Linux)") from None
        if code == errno.ENOTTY or "Inappropriate ioctl" in text:
            raise BincountError(f"--port {port!r} is not a serial port; expected the board's "
                                f"USB serial port (e.g. /dev/ttyUSB0 on Linux)") from None
        raise BincountError(f"--port {port!r} cannot be opened ({text}); expected the board's "
                            f"USB serial port (e.g. /dev/ttyUSB0 on Linux)") from None


class BoardLink:
    """The protocol over ``port`` (a serial-like object, see the module docstring).

    ``name`` names the port in messages; ``timeout`` (s) is how long a reply may take beyond
    the time its bytes need on the line at ``baud``.
    """

    def __init__(self, port, name, baud, timeout):
        self.port, self.name, self.baud, self.timeout = port, name, baud, timeout
        self.decoder = P.FrameDecoder(accept=P.plausible_reply)
        self.frames = []
        self.info = None

    # -- frames ------------------------------------------------------------------------------

    def _line_seconds(self, nbytes):
        return 10.0 * nbytes / self.baud

    def _next_frame(self, what, deadline):
        while not self.frames:
            if self.decoder.skipped >= GARBAGE_LIMIT:
                self._garbage(what)
            if time.monotonic() > deadline:
                if self.decoder.skipped or self.decoder.buf:
                    self._garbage(what)
                raise BincountError(
                    f"no answer from the board on {self.name} to {what} within "
                    f"{self.timeout:g} s; check that the board is programmed and that --baud "
                    f"({self.baud}) is its rate, or give a longer --timeout")
            data = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            if data:
                self.frames += self.decoder.feed(data)
        frame = self.frames.pop(0)
        if frame.version != P.VERSION:
            raise BincountError(f"the board on {self.name} speaks protocol version "
                                f"{frame.version}; this bincount speaks version {P.VERSION}: "
                                f"use the bincount that built the board's bitstream")
        return frame

    def _garbage(self, what):
        head = bytes(self.decoder.garbage[:16]).hex(" ")
        n = self.decoder.skipped + len(self.decoder.buf)
        raise BincountError(f"the board on {self.name} answered {what} with garbage ({n} bytes "
                            f"that are no protocol frame, starting {head}); expected a bincount "
                            f"board at --baud {self.baud}")

    def _error_reply(self, frame, what):
        try:
            err = P.parse_error(frame.payload)
        except ValueError as exc:
            raise BincountError(f"the board on {self.name} answered {what} with a malformed "
                                f"error reply ({exc})") from None
        if err.code == P.ERR_BAD_VERSION:
            raise BincountError(f"the board on {self.name} speaks protocol version "
                                f"{err.detail}; this bincount speaks version {P.VERSION}: use the "
                                f"bincount that built the board's bitstream")
        raise BincountError(f"the board on {self.name} answered {what} with error "
                            f"{err.describe()}")

    # -- commands ----------------------------------------------------------------------------

    def hello(self):
        """Send INFO; return the board's :class:`~bincount.protocol.Info`."""
        reset = getattr(self.port, "reset_input_buffer", None)
        if reset is not None:
            reset()
        request = P.info_request()
        self.port.write(request)
        deadline = time.monotonic() + self.timeout + self._line_seconds(
            len(request) + P.FRAME_OVERHEAD + P.INFO_LENGTH)
        retried = False
        while True:
            frame = self._next_frame("INFO", deadline)
            if frame.type == P.REPLY_RESULT:
                continue            # a late result of an earlier run: not ours
            if frame.type == P.REPLY_ERROR:
                try:
                    err = P.parse_error(frame.payload)
                except ValueError:
                    err = None
                if err is not None and err.command != P.CMD_INFO \
                        and err.code != P.ERR_BAD_VERSION:
                    if err.code == P.ERR_TIMEOUT and not retried:
                        # an earlier run stopped inside a frame, which swallowed our INFO
                        # until the board's frame timeout: ask again
                        self.port.write(request)
                        deadline = time.monotonic() + self.timeout + self._line_seconds(
                            len(request) + P.FRAME_OVERHEAD + P.INFO_LENGTH)
                        retried = True
                    continue        # the answer to an earlier run's frame
                self._error_reply(frame, "INFO")
            break
        if frame.type != P.REPLY_INFO:
            raise BincountError(f"the board on {self.name} answered INFO with a frame of type "
                                f"0x{frame.type:02x}; expected the INFO reply 0x{P.REPLY_INFO:02x}")
        try:
            self.info = P.parse_info(frame.payload)
        except ValueError as exc:
            raise BincountError(f"the board on {self.name} sent a malformed INFO reply "
                                f"({exc})") from None
        if self.info.version != P.VERSION:
            raise BincountError(f"the board on {self.name} speaks protocol version "
                                f"{self.info.version}; this bincount speaks version "
                                f"{P.VERSION}: use the bincount that built the board's "
                                f"bitstream")
        return self.info

    def classify(self, images, names=None, window=None):
        """Classify ``images`` (bytes of ``info.image_bytes`` each) with up to ``window``
        (default: the board's ``max_in_flight``) frames on their way at once. Returns
        ``(results, seconds)``: one :class:`~bincount.protocol.Result` per image in order, and
        the time from the first request to the last reply."""
        info = self.info or self.hello()
        names = names or [f"image {k}" for k in range(len(images))]
        window = max(1, min(window or info.max_in_flight, info.max_in_flight))
        results, sent, pending = [], 0, []
        reply_bytes = P.FRAME_OVERHEAD + P.result_length(info.classes)
        t0 = time.monotonic()
        while len(results) < len(images):
            while sent < len(images) and sent - len(results) < window:
                request = P.classify_request(sent & 0xFF, images[sent])
                self.port.write(request)
                pending.append(len(request))
                sent += 1
            what = f"CLASSIFY of {names[len(results)]}"
            # the reply may wait for every request still on the line before it, and its own
            deadline = time.monotonic() + self.timeout + self._line_seconds(
                sum(pending) + reply_bytes)
            frame = self._next_frame(what, deadline)
            pending.pop(0)
            k = len(results)
            if frame.type == P.REPLY_ERROR:
                self._error_reply(frame, what)
            if frame.type != P.REPLY_RESULT:
                raise BincountError(f"the board on {self.name} answered {what} with a frame of "
                                    f"type 0x{frame.type:02x}; expected a result "
                                    f"(0x{P.REPLY_RESULT:02x})")
            try:
                result = P.parse_result(frame.payload, info.classes)
            except ValueError as exc:
                raise BincountError(f"the board on {self.name} sent a malformed result for "
                                    f"{names[k]} ({exc})") from None
            if result.tag != k & 0xFF:
                raise BincountError(f"the board on {self.name} answered {what} with the result "
                                    f"of tag {result.tag}; expected tag {k & 0xFF} (replies "
                                    f"out of order)")
            results.append(result)
        return results, time.monotonic() - t0
