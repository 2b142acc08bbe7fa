from dataclasses import dataclass, field
from typing import Literal

import pytest

from neural_engine import schema
from neural_engine.errors import EngineError
from neural_engine.schema import SchemaError, TomlSource, bounds


@dataclass(frozen=True)
class Inner:
    size: int = field(default=4, metadata=bounds(1, 8))
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    name: str
    rate: float = 1.0
    inner: Inner = Inner()
    items: tuple[str, ...] = ()

    def check(self):
        return [(("name",), "must not be empty")] if not self.name else []


def fill_text(text: str) -> Outer:
    source = TomlSource(text, "test.toml")
    return schema.fill(Outer, source.data, source=source)


def test_fills_types_and_defaults():
    out = fill_text('name = "x"\nrate = 2\nitems = ["p", "q"]\n[inner]\nsize = 8\nmode = "b"\n')
    assert out == Outer(name="x", rate=2.0, inner=Inner(8, "b"), items=("p", "q"))
    assert isinstance(out.rate, float)


def test_unknown_key_suggests_and_names_line():
    with pytest.raises(SchemaError) as err:
        fill_text('name = "x"\n\n[inner]\nsiez = 3\n')
    assert err.value.problems == ["test.toml:4: inner.siez: unknown key (did you mean 'size'?)"]


def test_collects_every_problem():
    with pytest.raises(SchemaError) as err:
        fill_text('rate = "fast"\nitems = [1]\n[inner]\nsize = 99\nmode = "c"\n')
    text = "\n".join(err.value.problems)
    assert "name: missing required key" in text
    assert "test.toml:1: rate: expected a number" in text
    assert "items[0]: expected a string" in text
    assert "test.toml:4: inner.size: value 99 is out of range (must be between 1 and 8)" in text
    assert "inner.mode: 'c' is not one of 'a', 'b'" in text


def test_bool_is_not_an_integer_and_check_runs():
    with pytest.raises(SchemaError, match="size: expected an integer, got True"):
        fill_text('name = "x"\n[inner]\nsize = true\n')
    with pytest.raises(SchemaError, match="name: must not be empty"):
        fill_text('name = ""\n')


def test_bad_toml_names_file_and_line():
    with pytest.raises(EngineError, match=r"test.toml: not valid TOML: .*line 2"):
        TomlSource('name = "x"\nrate = = 3\n', "test.toml")


def test_array_of_tables_lines():
    source = TomlSource('[[cue]]\nt = 1\n\n[[cue]]\nt = 2\nhold = 3\n', "s.toml")
    assert source.line_of(("cue", 1, "hold")) == 6
    assert source.line_of(("cue", 0, "missing")) == 1


def test_round_trip_to_dict():
    out = Outer(name="x", items=("a",))
    assert schema.fill(Outer, schema.to_dict(out)) == out


def test_nan_and_infinity_are_refused():
    with pytest.raises(SchemaError, match="rate: expected a finite number, got nan"):
        fill_text('name = "x"\nrate = nan\n')
    with pytest.raises(SchemaError, match="rate: expected a finite number, got inf"):
        fill_text('name = "x"\nrate = inf\n')
