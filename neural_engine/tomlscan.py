"""A linear pre-scan of TOML text: the bounds the standard parser cannot promise, and
the line on which every key was written.

``tomllib`` is correct but not bounded: a key of 50,000 dotted parts costs it time
and memory quadratic in the parts, and arrays or inline tables nested thousands deep
exhaust the stack. ``scan(text, name)`` reads the text once, in time linear in its
length, before the parser sees it, and refuses what is past a bound (size, nesting
depth, parts of a dotted key) with one ``EngineError`` naming the file and line. On
the way it records the line of every table header, every key and every inline table
or array inside a value, which ``schema`` uses to point at mistakes.

The scan follows TOML's lexical rules (strings of four kinds, comments, keys and
values); it does not check the grammar: whatever it lets through, ``tomllib`` still
parses and judges. Where it cannot follow the text (an unterminated string, say) it
stops recording lines and leaves the verdict to the parser; the bounds up to there
were checked, and the parser stops at the same place.
"""

from __future__ import annotations

import re

from neural_engine.errors import EngineError

Key = tuple  # parts: str for table keys, int for positions in arrays

MAX_BYTES = 1 << 20        # any TOML file the engine reads
MAX_DEPTH = 16             # arrays and inline tables inside one another
MAX_KEY_PARTS = 16         # parts of one dotted key, or of one table header
MAX_PATH = 48              # parts from the document's root down to any value

_SPACE = re.compile(r"[ \t\r]+")
_COMMENT = re.compile(r"#[^\n]*")
_BARE = re.compile(r"[A-Za-z0-9_\-]+")
_ATOM = re.compile(r"[^\s,\[\]{}#=\"']+")      # numbers, dates, booleans: values only
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL = re.compile(r"'[^'\n]*'")
_ML_BASIC_STOP = re.compile(r'\\[\s\S]|"{3,5}')
_ML_LITERAL_STOP = re.compile(r"'{3,5}")
_TIME = re.compile(r" [0-9:.+\-Zz]+")            # the time after a date and a space
# Past where the scan could follow: no line with this many dots (a dotted key's cost
# in the parser is quadratic in its parts; a thousand parts is still cheap).
MAX_DOTS_UNFOLLOWED = 1000


class _Stop(Exception):
    """The scan cannot follow the text further; the parser will say why."""


class Scanner:
    """One pass over ``text``; ``lines`` maps each key written to its line number."""

    def __init__(self, text: str, name: str):
        self.text, self.name = text, name
        self.pos, self.line = 0, 1
        self.lines: dict[Key, int] = {}
        self.complete = False       # whether the scan followed the text to its end
        self._tables: dict[Key, int] = {}

    # -- errors and positions -------------------------------------------------------
    def refuse(self, message: str) -> EngineError:
        return EngineError(message, where=f"{self.name}:{self.line}")

    def _advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def _skip(self, newlines: bool) -> None:
        """Whitespace and comments (and newlines, where the grammar allows them)."""
        text = self.text
        while self.pos < len(text):
            if m := _SPACE.match(text, self.pos):
                self.pos = m.end()
            elif m := _COMMENT.match(text, self.pos):
                self.pos = m.end()
            elif newlines and text[self.pos] == "\n":
                self.pos += 1
                self.line += 1
            else:
                return

    def _peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    # -- strings and keys -------------------------------------------------------------
    def _string(self) -> str:
        """A string of any kind at ``pos``; returns its text (escapes left as written)."""
        text, start = self.text, self.pos
        for quote, stop in (('"""', _ML_BASIC_STOP), ("'''", _ML_LITERAL_STOP)):
            if text.startswith(quote, start):
                pos = start + 3
                while True:
                    m = stop.search(text, pos)
                    if m is None:
                        raise _Stop
                    if m.group().startswith("\\"):
                        pos = m.end()
                        continue
                    self._advance(m.end())
                    return text[start + 3:m.end() - 3]
        m = (_BASIC if text[start] == '"' else _LITERAL).match(text, start)
        if m is None:
            raise _Stop
        self.pos = m.end()
        return m.group()[1:-1]

    def _key(self) -> list[str]:
        """A dotted key at ``pos``: its parts."""
        parts: list[str] = []
        while True:
            self._skip(newlines=False)
            if self.pos < len(self.text) and self.text[self.pos] in "\"'":
                if self._peek('"""') or self._peek("'''"):
                    raise _Stop                     # not a key: let the parser say so
                parts.append(self._string())
            elif m := _BARE.match(self.text, self.pos):
                parts.append(m.group())
                self.pos = m.end()
            else:
                raise _Stop
            if len(parts) > MAX_KEY_PARTS:
                raise self.refuse(f"a key of more than {MAX_KEY_PARTS} dotted parts")
            self._skip(newlines=False)
            if not self._peek("."):
                return parts
            self.pos += 1

    def _record(self, key: Key) -> None:
        if len(key) > MAX_PATH:
            raise self.refuse(f"keys nested more than {MAX_PATH} levels deep")
        self.lines.setdefault(key, self.line)

    # -- values -----------------------------------------------------------------------
    def _value(self, key: Key, depth: int) -> None:
        """One value at ``pos``, written under ``key``."""
        if depth > MAX_DEPTH:
            raise self.refuse(f"arrays or tables nested more than {MAX_DEPTH} deep")
        self._skip(newlines=False)
        text = self.text
        if self.pos >= len(text):
            raise _Stop
        c = text[self.pos]
        if c in "\"'":
            self._string()
        elif c == "[":
            self._record(key)
            self.pos += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if self._peek("]"):
                    self.pos += 1
                    return
                self._value((*key, index), depth + 1)
                index += 1
                self._skip(newlines=True)
                if self._peek(","):
                    self.pos += 1
                elif not self._peek("]"):
                    raise _Stop
        elif c == "{":
            self._record(key)
            self.pos += 1
            self._skip(newlines=False)
            if self._peek("}"):
                self.pos += 1
                return
            while True:
                self._assignment(key, depth + 1)
                self._skip(newlines=False)
                if self._peek(","):
                    self.pos += 1
                elif self._peek("}"):
                    self.pos += 1
                    return
                else:
                    raise _Stop
        elif m := _ATOM.match(text, self.pos):
            self.pos = m.end()
            if m := _TIME.match(text, self.pos):
                self.pos = m.end()
        else:
            raise _Stop

    def _assignment(self, table: Key, depth: int) -> None:
        parts = self._key()
        if not self._peek("="):
            raise _Stop
        self.pos += 1
        key = (*table, *parts)
        self._record(key)
        self._value(key, depth)

    # -- the document -----------------------------------------------------------------
    def _header(self) -> Key:
        array = self._peek("[[")
        self.pos += 2 if array else 1
        name = tuple(self._key())
        if not self._peek("]]" if array else "]"):
            raise _Stop
        self.pos += 2 if array else 1
        if not array:
            self._record(name)
            return name
        index = self._tables.get(name, 0)
        self._tables[name] = index + 1
        self._record((*name, index))
        self._record(name)
        return (*name, index)

    def run(self) -> dict[Key, int]:
        text = self.text
        if len(text) > MAX_BYTES:
            raise EngineError(f"larger than {MAX_BYTES >> 20} MiB", where=self.name)
        table: Key = ()
        try:
            while True:
                self._skip(newlines=True)
                if self.pos >= len(text):
                    self.complete = True
                    return self.lines
                if text[self.pos] == "[":
                    table = self._header()
                else:
                    self._assignment(table, 0)
                self._skip(newlines=False)
                if self.pos < len(text) and text[self.pos] != "\n":
                    raise _Stop
        except _Stop:
            self._check_rest()
            return self.lines

    def _check_rest(self) -> None:
        """Past where the scan could follow (the parser will most likely refuse it
        there): still no key long enough to cost the parser minutes."""
        start = self.text.rfind("\n", 0, self.pos) + 1
        for number, line in enumerate(self.text[start:].split("\n"), start=self.line):
            if line.count(".") > MAX_DOTS_UNFOLLOWED:
                self.line = number
                raise self.refuse(f"a line of more than {MAX_DOTS_UNFOLLOWED} dots")


def scan(text: str, name: str) -> dict[Key, int]:
    """The line of every key in ``text``; EngineError if the text is past a bound."""
    return Scanner(text, name).run()
