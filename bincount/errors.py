"""The exceptions the command line turns into one line on stderr (``bincount.cli.main``)."""

__all__ = ["BincountError", "Terminated"]


class BincountError(ValueError):
    """Bad input from the user: the message says what was wrong and what would be right."""


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (``bincount.cli.main``).

    A ``BaseException`` like ``KeyboardInterrupt``, so that the same clean-up runs: the atomic
    writers remove their temporary files and multi-file outputs remove what they created.
    """

    signum = 15
