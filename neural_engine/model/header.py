"""A safetensors header, read and checked before anything in the file is trusted.

A safetensors file is an 8-byte little-endian header length, a JSON header (every
tensor's dtype, shape and byte range, plus string metadata) and the tensor bytes.
``read_header`` reads only the header, bounded in size, and checks its structure: a
table of tensors whose shapes and byte ranges agree with their dtypes and lie inside
the file without overlapping. ``tensor_problems`` then compares the tensors with
those a configuration implies (names, shapes, dtypes), so a file can be refused
before a single parameter is allocated for it.

This module knows the file format, not what the tensors mean: the expected tensors
come from the caller (``neural_engine.model.weights`` builds them on the meta device).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from neural_engine.errors import EngineError

MAX_HEADER_BYTES = 1 << 20       # the shipped world model's header is 17 KB
MAX_TENSORS = 4096
MAX_DIMS = 8
# Bytes per element of every safetensors dtype (to check the byte ranges of any file).
ITEM_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
              "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
# The dtypes the engine writes its weights in.
FLOAT_DTYPES = ("F16", "BF16", "F32")
# The companion of a matrix stored in 8 bits (neural_engine.model.quantize).
SCALE_SUFFIX = "::scale"


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    begin: int          # byte range in the data section
    end: int


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]


def _entry(name: str, raw) -> TensorEntry:
    """One tensor's entry, checked; EngineError naming the tensor."""
    if not isinstance(raw, dict) or set(raw) != {"dtype", "shape", "data_offsets"}:
        raise EngineError(f"tensor {name!r}: an entry needs exactly dtype, shape and "
                          "data_offsets")
    dtype, shape, offsets = raw["dtype"], raw["shape"], raw["data_offsets"]
    if dtype not in ITEM_BYTES:
        raise EngineError(f"tensor {name!r}: unknown dtype {str(dtype)[:20]!r}")
    ints = lambda v: isinstance(v, list) and all(type(x) is int and x >= 0 for x in v)  # noqa
    if not ints(shape) or len(shape) > MAX_DIMS:
        raise EngineError(f"tensor {name!r}: a shape is a list of at most {MAX_DIMS} "
                          "sizes ≥ 0")
    if not ints(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        raise EngineError(f"tensor {name!r}: data_offsets must be [begin, end]")
    count = 1
    for size in shape:
        count *= size
    if count * ITEM_BYTES[dtype] != offsets[1] - offsets[0]:
        raise EngineError(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes do not hold "
                          f"a {dtype} tensor of shape {tuple(shape)}")
    return TensorEntry(dtype, tuple(shape), offsets[0], offsets[1])


def parse_header(data: bytes, file_bytes: int) -> Header:
    """The header at the start of ``data`` (the file's first bytes) of a file of
    ``file_bytes`` bytes; EngineError saying what is wrong."""
    if len(data) < 8:
        raise EngineError("not a safetensors file (shorter than its header length)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > MAX_HEADER_BYTES:
        raise EngineError(f"not a weights file this engine reads (a header of {length} "
                          f"bytes; at most {MAX_HEADER_BYTES})")
    if 8 + length > min(file_bytes, len(data)):
        raise EngineError("not a safetensors file (the header runs past the end)")
    try:
        raw = json.loads(data[8:8 + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EngineError("not a safetensors file (the header is not JSON)") from None
    if not isinstance(raw, dict):
        raise EngineError("not a safetensors file (the header is not a table)")
    metadata = raw.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise EngineError("corrupt safetensors metadata (it must map strings to strings)")
    if len(raw) > MAX_TENSORS:
        raise EngineError(f"more than {MAX_TENSORS} tensors")
    tensors = {name: _entry(name, entry) for name, entry in raw.items()}
    data_bytes = file_bytes - 8 - length
    end = 0
    for name, entry in sorted(tensors.items(), key=lambda item: item[1].begin):
        if entry.begin < end:
            raise EngineError(f"tensor {name!r} overlaps another tensor's bytes")
        end = entry.end
    if end > data_bytes:
        raise EngineError(f"truncated weights file: the tensors need {end} bytes of data, "
                          f"the file holds {data_bytes}")
    return Header(tensors, metadata)


def read_header(path: str | os.PathLike) -> Header:
    """The checked header of the safetensors file at ``path`` (reads only the header)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) == 8:
                (length,) = struct.unpack("<Q", head)
                head += f.read(min(length, MAX_HEADER_BYTES))
    except FileNotFoundError:
        raise EngineError("weights file not found", where=str(path)) from None
    except OSError as exc:
        raise EngineError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    try:
        return parse_header(head, size)
    except EngineError as exc:
        raise EngineError(exc.message, where=str(path)) from None


def tensor_problems(header: Header, expected: dict[str, tuple[tuple[int, ...], bool]]
                    ) -> list[str]:
    """What differs between the file's tensors and ``expected`` (name → (shape, whether
    it is floating point)): missing, unexpected, wrong shape, a dtype the engine does
    not write. Integer tensors must be stored as I64, floating ones in FLOAT_DTYPES or,
    with two or more dims, as I8 beside their row scales (``neural_engine.model.quantize``)."""
    problems = []
    companions = set()
    for name, (shape, floating) in expected.items():
        entry = header.tensors.get(name)
        scale = header.tensors.get(name + SCALE_SUFFIX)
        if entry is None:
            problems.append(f"missing tensor {name}")
        elif entry.shape != tuple(shape):
            problems.append(f"tensor {name} has shape {entry.shape}, the configuration "
                            f"needs {tuple(shape)}")
        elif floating and entry.dtype == "I8" and len(shape) >= 2:
            companions.add(name + SCALE_SUFFIX)
            if scale is None:
                problems.append(f"tensor {name} is I8 without its {SCALE_SUFFIX} tensor")
            elif scale.dtype not in FLOAT_DTYPES or scale.shape != (shape[0],):
                problems.append(f"tensor {name}{SCALE_SUFFIX} must be a floating tensor "
                                f"of shape ({shape[0]},)")
        elif floating and entry.dtype not in FLOAT_DTYPES:
            problems.append(f"tensor {name} is {entry.dtype}; weights are "
                            f"{', '.join(FLOAT_DTYPES)}")
        elif not floating and entry.dtype != "I64":
            problems.append(f"tensor {name} is {entry.dtype}, not I64")
    problems += [f"unexpected tensor {n[:80]!r}" for n in sorted(set(header.tensors)
                                                                  - set(expected) - companions)]
    return problems
