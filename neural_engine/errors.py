"""The one exception type for mistakes a user can cause and fix.

Bad files, unknown names, missing weights, no display, an unwritable output path:
each is raised as an ``EngineError`` at the place the mistake is found, with a message
that names what is wrong and where. The command-line edge turns it into one line on
stderr and a non-zero exit; nothing below the edge prints or exits. Messages quote
what the user wrote, which may hold control characters; ``escape_controls`` is how
the edge (and every log) writes them.
"""

from __future__ import annotations


class EngineError(Exception):
    """A user-fixable problem, reported as one line: ``where: what``."""

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


def escape_controls(text: str) -> str:
    """``text`` with control characters (a terminal's escape sequences among them)
    written as ``\\x1b`` and the like, so that printing it cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in text)
