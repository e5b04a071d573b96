"""Errors a user can act on. The CLI prints their message (no traceback) and exits non-zero."""


class VigilError(Exception):
    """A failure with a message that says what went wrong and what to do about it."""


def describe_invalid(exc) -> str:
    """A pydantic ValidationError as ``field: problem`` lines, without the offending values
    (a misplaced password must not be echoed to a terminal or a log)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(settings)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)
