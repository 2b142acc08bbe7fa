"""TOML at the edge, frozen dataclasses inside.

Every configuration the engine reads from a file (a game's ``game.toml``, a model
configuration, a scenario pack, an action script) has exactly one schema: a frozen
dataclass. This module parses TOML once and fills such a dataclass, refusing unknown
keys (with the closest valid key suggested), wrong types and out-of-range values.
Each problem names the file, the line and the dotted key. Deep code never sees a raw
dict.

It knows nothing about what the configurations mean; bounds live with the fields
(``field(metadata=bounds(lo, hi))``) and cross-field rules in the dataclass's own
``check()`` method, which returns a list of problems.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from neural_engine.errors import EngineError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

Key = tuple[Union[str, int], ...]


def bounds(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """Field metadata for a closed numeric range, or a length range for tuples."""
    return {"bounds": (lo, hi)}


class SchemaError(EngineError):
    """One or more problems found while filling a dataclass from a file."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class TomlSource:
    """A parsed TOML document that remembers on which line each key was written."""

    _ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
    _TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
    _ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")

    def __init__(self, text: str, name: str):
        self.name = name
        try:
            self.data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise EngineError(f"not valid TOML: {exc}", where=name) from None
        self._lines: dict[Key, int] = {}
        self._index_lines(text)

    @classmethod
    def read(cls, path: str | Path) -> "TomlSource":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise EngineError("file not found", where=str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise EngineError(f"cannot read: {exc}", where=str(path)) from None
        return cls(text, str(path))

    @staticmethod
    def _split(dotted: str) -> list[str]:
        return [part.strip().strip("\"'") for part in dotted.split(".")]

    def _index_lines(self, text: str) -> None:
        table: Key = ()
        counts: dict[Key, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if match := self._ARRAY_TABLE.match(line):
                name = tuple(self._split(match.group(1)))
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (*name, index)
                self._lines.setdefault(table, number)
                self._lines.setdefault(name, number)
            elif match := self._TABLE.match(line):
                table = tuple(self._split(match.group(1)))
                self._lines.setdefault(table, number)
            elif match := self._ASSIGN.match(line):
                self._lines.setdefault((*table, *self._split(match.group(1))), number)

    def line_of(self, key: Key) -> int | None:
        """The line where ``key`` (or its nearest written parent) was defined."""
        for end in range(len(key), 0, -1):
            if (line := self._lines.get(tuple(key[:end]))) is not None:
                return line
        return None

    def where(self, key: Key) -> str:
        line = self.line_of(key)
        location = f"{self.name}:{line}" if line else self.name
        return f"{location}: {dotted(key)}" if key else location


def dotted(key: Key) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if origin is tuple or origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a table"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return str(tp)


class _Filler:
    def __init__(self, source: TomlSource | None, name: str):
        self.source = source
        self.name = name
        self.problems: list[str] = []

    def problem(self, key: Key, message: str) -> None:
        if self.source is not None:
            where = self.source.where(key)
        else:
            where = f"{self.name}: {dotted(key)}" if key else self.name
        self.problems.append(f"{where}: {message}")

    def value(self, tp: Any, raw: Any, key: Key, meta: dict[str, Any]) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            if raw is None and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.value(inner[0], raw, key, meta)
        if dataclasses.is_dataclass(tp):
            if not isinstance(raw, dict):
                return self.problem(key, f"expected {_type_name(tp)}, got {type(raw).__name__}")
            return self.dataclass(tp, raw, key)
        if origin is Literal:
            if raw not in args:
                close = difflib.get_close_matches(str(raw), [str(a) for a in args], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                return self.problem(key, f"{raw!r} is not {_type_name(tp)}{hint}")
            return raw
        if origin in (tuple, list):
            if not isinstance(raw, list):
                return self.problem(key, f"expected {_type_name(tp)}, got {type(raw).__name__}")
            item_tp = args[0] if args else Any
            items = tuple(self.value(item_tp, v, (*key, i), {}) for i, v in enumerate(raw))
            self.check_bounds(len(items), key, meta, what="length")
            return items
        if origin is dict:
            if not isinstance(raw, dict):
                return self.problem(key, f"expected {_type_name(tp)}, got {type(raw).__name__}")
            return {k: self.value(args[1], v, (*key, k), {}) for k, v in raw.items()}
        if tp is Any:
            return raw
        if tp is float:
            ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
            raw = float(raw) if ok else raw
            if ok and not math.isfinite(raw):
                return self.problem(key, f"expected a finite number, got {raw!r}")
        else:
            ok = isinstance(raw, tp) and not (tp is int and isinstance(raw, bool))
        if not ok:
            return self.problem(key, f"expected {_type_name(tp)}, got {raw!r}")
        if tp in (int, float):
            self.check_bounds(raw, key, meta, what="value")
        return raw

    def check_bounds(self, value: float, key: Key, meta: dict[str, Any], what: str) -> None:
        lo, hi = meta.get("bounds", (None, None))
        if lo is not None and value < lo or hi is not None and value > hi:
            span = f"between {lo} and {hi}" if lo is not None and hi is not None else (
                f"at least {lo}" if lo is not None else f"at most {hi}")
            self.problem(key, f"{what} {value} is out of range (must be {span})")

    def dataclass(self, cls: type, raw: dict[str, Any], key: Key) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = typing.get_type_hints(cls)
        for name in raw:
            if name not in fields:
                close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem((*key, name), f"unknown key{hint}")
        kwargs: dict[str, Any] = {}
        for name, f in fields.items():
            if name in raw:
                kwargs[name] = self.value(hints[name], raw[name], (*key, name), dict(f.metadata))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.problem((*key, name), "missing required key")
        if self.problems:
            return None
        try:
            obj = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            self.problem(key, str(exc))
            return None
        check = getattr(obj, "check", None)
        if callable(check):
            for sub, message in check():
                self.problem((*key, *sub), message)
        return obj


def fill(cls: type, data: dict[str, Any], *, source: TomlSource | None = None,
         name: str = "<config>", key: Key = ()) -> Any:
    """Build ``cls`` (a dataclass) from ``data``; raise SchemaError listing every problem."""
    filler = _Filler(source, source.name if source else name)
    obj = filler.dataclass(cls, data, key)
    if filler.problems:
        raise SchemaError(filler.problems)
    return obj


def load(cls: type, path: str | Path) -> Any:
    """Read a TOML file and fill ``cls`` from its whole document."""
    source = TomlSource.read(path)
    return fill(cls, source.data, source=source)


def to_dict(obj: Any) -> Any:
    """A dataclass as plain TOML/JSON-able data (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
