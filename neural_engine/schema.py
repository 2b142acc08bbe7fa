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
import functools
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from neural_engine import tomlscan
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
    """A parsed TOML document that remembers on which line each key was written.

    The text is scanned first (``neural_engine.tomlscan``: size, nesting and dotted-key
    bounds, and the line of every key), so the parser only ever sees text it parses
    in bounded time and memory.
    """

    def __init__(self, text: str, name: str):
        self.name = name
        self._lines: dict[Key, int] = tomlscan.scan(text, name)
        self._overrides: dict[Key, str] = {}      # key → where its value came from instead
        try:
            self.data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise EngineError(f"not valid TOML: {exc}", where=name) from None
        except RecursionError:
            raise EngineError("not valid TOML: nested too deeply", where=name) from None

    @classmethod
    def read(cls, path: str | Path) -> "TomlSource":
        path = Path(path)
        try:
            with open(path, "rb") as f:
                data = f.read(tomlscan.MAX_BYTES + 1)
        except FileNotFoundError:
            raise EngineError("file not found", where=str(path)) from None
        except OSError as exc:
            raise EngineError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
        if len(data) > tomlscan.MAX_BYTES:
            raise EngineError(f"larger than {tomlscan.MAX_BYTES >> 20} MiB", where=str(path))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EngineError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                              where=str(path)) from None
        return cls(text, str(path))

    def override(self, name: str, value: Any, origin: str) -> None:
        """Set top-level key ``name`` to ``value``, written at ``origin`` (a command-line
        ``--set``, say) rather than in the file: problems with it name ``origin``."""
        self.data[name] = value
        self._overrides[(name,)] = origin

    def line_of(self, key: Key) -> int | None:
        """The line where ``key`` (or its nearest written parent) was defined."""
        for end in range(len(key), 0, -1):
            if (line := self._lines.get(tuple(key[:end]))) is not None:
                return line
        return None

    def where(self, key: Key) -> str:
        if key and (origin := self._overrides.get(tuple(key[:1]))) is not None:
            return f"{origin}: {dotted(key)}"
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


# Lists and tables longer than this are refused before their items are read, unless a
# field sets its own bounds; problems past MAX_PROBLEMS are counted, not listed.
MAX_ITEMS = 10_000
MAX_PROBLEMS = 50


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class _Filler:
    def __init__(self, source: TomlSource | None, name: str):
        self.source = source
        self.name = name
        self.problems: list[str] = []
        self.unlisted = 0

    def problem(self, key: Key, message: str) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.unlisted += 1
            return
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
            if not self.check_length(len(raw), key, meta):
                return None
            item_tp = args[0] if args else Any
            return tuple(self.value(item_tp, v, (*key, i), {}) for i, v in enumerate(raw))
        if origin is dict:
            if not isinstance(raw, dict):
                return self.problem(key, f"expected {_type_name(tp)}, got {type(raw).__name__}")
            if not self.check_length(len(raw), key, {}):
                return None
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

    def check_length(self, length: int, key: Key, meta: dict[str, Any]) -> bool:
        """Whether a list's length is within its bounds (MAX_ITEMS by default); checked
        before any item is read."""
        before = len(self.problems) + self.unlisted
        self.check_bounds(length, key, {"bounds": meta.get("bounds", (None, MAX_ITEMS))},
                          what="length")
        return len(self.problems) + self.unlisted == before

    def check_bounds(self, value: float, key: Key, meta: dict[str, Any], what: str) -> None:
        lo, hi = meta.get("bounds", (None, None))
        if lo is not None and value < lo or hi is not None and value > hi:
            span = f"between {lo} and {hi}" if lo is not None and hi is not None else (
                f"at least {lo}" if lo is not None else f"at most {hi}")
            self.problem(key, f"{what} {value} is out of range (must be {span})")

    def dataclass(self, cls: type, raw: dict[str, Any], key: Key) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = _type_hints(cls)
        for name in raw:
            if name not in fields and len(self.problems) >= MAX_PROBLEMS:
                self.unlisted += 1
            elif name not in fields:
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
        more = [f"… and {filler.unlisted} more problems"] if filler.unlisted else []
        raise SchemaError(filler.problems + more)
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
