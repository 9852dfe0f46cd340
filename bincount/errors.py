"""The one exception type the command line turns into a one-line error."""

__all__ = ["BincountError"]


class BincountError(ValueError):
    """Bad input from the user: the message says what was wrong and what would be right."""
