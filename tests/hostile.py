"""Hostile inputs, made small on disk, and a way to run code on them under hard bounds.

Each ``*_bytes`` or ``write_*`` function builds one of the pathological files that the
hardening pass (issue 17) found: a weights file whose configuration asks for a huge
model, a TOML key of 50,000 dotted parts, a PNG whose image data inflates to
gigabytes, an action script of a million cues, and so on. ``run_bounded`` runs a Python
snippet on one of them in a fresh interpreter whose address space is capped
(``resource.setrlimit``) a fixed amount above what its imports took, under a generous
timeout: a blow-up or a hang fails the test, and no speed is asserted.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What a bounded child may take beyond its imports, and how long it may run. Generous:
# the point is to catch gigabytes and minutes, not to time anything.
MEMORY_MB = 768
TIMEOUT_S = 240

_PRELUDE = """
import resource, sys
def _vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
{imports}
_limit = _vm_bytes() + {memory} * (1 << 20)
resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
"""


@dataclass
class Bounded:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def run_bounded(code: str, *args: str, imports: str = "import torch", memory_mb: int = MEMORY_MB,
                timeout: float = TIMEOUT_S, cwd: Path = ROOT, env: dict | None = None) -> Bounded:
    """Run ``code`` (after ``imports``) with its address space capped ``memory_mb`` above
    what the imports took; a timeout fails the caller's test through ``TimeoutExpired``."""
    import os

    script = _PRELUDE.format(imports=imports, memory=memory_mb) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    return Bounded(proc.returncode, proc.stdout, proc.stderr)


# -- weights ------------------------------------------------------------------------
def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], metadata: dict[str, str],
                      fill: bytes = b"\0") -> bytes:
    """A safetensors file from (dtype, shape) per tensor; data of ``fill`` bytes."""
    sizes = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I8": 1, "U8": 1, "BOOL": 1, "I64": 8}
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + fill * offset


def world_model_metadata(**denoiser) -> dict[str, str]:
    """The metadata of a maze world-model file of the small size, denoiser fields changed."""
    config = {"game": "maze", "height": 128, "width": 128, "action_dim": 8,
              "denoiser": denoiser}
    return {"format": "neural-engine/world-model/1", "config": json.dumps(config)}


def lying_weights_bytes(**denoiser) -> bytes:
    """A tiny file (one small tensor) whose configuration asks for the given denoiser."""
    return safetensors_bytes({"denoiser.x": ("F16", [4])}, world_model_metadata(**denoiser))


# -- TOML -----------------------------------------------------------------------------
def dotted_key_toml(parts: int = 50_000) -> str:
    """``game = "maze"`` and one key of ``parts`` dotted parts (a 100 KB file)."""
    return 'game = "maze"\n' + ".".join(["a"] * parts) + " = 1\n"


def spaces_in_string_toml(spaces: int = 250_000) -> str:
    """A multi-line string holding one line of ``spaces`` spaces."""
    return 'game = "maze"\ndescription = """\n' + " " * spaces + 'x\n"""\n'


def many_cues_script(cues: int = 1_000_000) -> str:
    """An action script of ``cues`` cues (18 MB for a million)."""
    return "".join(f"[[cue]]\nt = {i * 1e-4:.4f}\n" for i in range(cues))


def start_switch_pack(switches: int = 40_000) -> tuple[str, str]:
    """pack.toml and a timeline file with ``switches`` start switches at t = 0."""
    pack = ('game = "maze"\n[[start]]\nname = "a"\nseed = 1\n[[start]]\nname = "b"\nseed = 2\n'
            '[timeline]\nfile = "t.toml"\nseconds = 1.0\n')
    timeline = "".join(f'[[cue]]\nt = 0\nstart = "{"ab"[i % 2]}"\n' for i in range(switches))
    return pack, timeline


def mouse_cues_timeline(cues: int = 25_000) -> str:
    """``cues`` cues at t = 0, each moving the mouse over an hour."""
    return "seconds = 3600.0\n" + "[[cue]]\nt=0\nmouse=[1,0]\nover=3600\n" * cues


# -- PNG ------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, idat: bytes, extra: list[tuple[bytes, bytes]] = ()
              ) -> bytes:
    """A PNG (8-bit RGB) with the given compressed image data and extra chunks."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = [_chunk(b"IHDR", ihdr)] + [_chunk(k, d) for k, d in extra]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def zlib_bomb(inflated_gib: float) -> bytes:
    """A zlib stream of zeros that inflates to ``inflated_gib`` GiB (about 1 MB per GiB).

    One compressed segment of 64 MiB of zeros, fully flushed (it refers to nothing
    before it), repeated; then an empty final block and the Adler-32 of the zeros.
    """
    block = 64 << 20
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = raw.compress(bytes(block)) + raw.flush(zlib.Z_FULL_FLUSH)
    final = raw.flush(zlib.Z_FINISH)
    count = max(1, round(inflated_gib * (1 << 30) / block))
    total = count * block
    adler = ((total % 65521) << 16) | 1          # Adler-32 of ``total`` zero bytes
    return b"\x78\xda" + segment * count + final + struct.pack(">I", adler)


def png_bomb(inflated_gib: float, width: int = 128, height: int = 128) -> bytes:
    """A PNG of the maze's frame size whose image data inflates to gigabytes."""
    return png_bytes(width, height, zlib_bomb(inflated_gib))
