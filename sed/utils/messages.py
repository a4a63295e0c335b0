"""Error messages on one line: what the command-line tools print and what the config loader raises."""

__all__ = ["one_line"]


def one_line(message) -> str:
    """`message` (any object, e.g. an exception) as one line: its whitespace runs, newlines included, as one space."""
    return " ".join(str(message).split())
