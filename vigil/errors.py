"""Errors a user can act on. The CLI prints their message (no traceback) and exits non-zero."""


class VigilError(Exception):
    """A failure with a message that says what went wrong and what to do about it."""
