"""The one exception type for mistakes a user can cause and fix.

Bad files, unknown names, missing weights, no display, an unwritable output path:
each is raised as an ``EngineError`` at the place the mistake is found, with a message
that names what is wrong and where. The command-line edge turns it into one line on
stderr and a non-zero exit; nothing below the edge prints or exits.
"""

from __future__ import annotations


class EngineError(Exception):
    """A user-fixable problem, reported as one line: ``where: what``."""

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
