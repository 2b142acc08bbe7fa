"""Datasets of recorded play: sharded safetensors files and a reader of random clips.

A dataset folder holds ``dataset.json`` (how it was made: game, sizes, seed, the
names of action and state columns) and shards ``shard-00000.safetensors``, each with

- ``frames``  (E, T, H, W, 3) uint8   the rendered frames
- ``actions`` (E, T, A) float32       ``actions[:, t]`` is the input of tick t, the one
                                      that produced ``frames[:, t]``; ``actions[:, 0]``
                                      is idle (frame 0 is the start frame)
- ``state``   (E, T, S) float32       the true player state after tick t
- ``seeds``   (E,) int64              the world seed of each episode

plus per-shard statistics (coverage, action counts) as JSON metadata. Shards are
written to a temporary name and renamed into place, so a folder never holds half a
shard. Nothing here knows how the frames were produced.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from neural_engine import schema
from neural_engine.errors import EngineError

FORMAT_VERSION = 1
INFO_NAME = "dataset.json"

# Training worlds take seeds below this; held-out evaluation worlds start here. A game
# may move the line (game.toml's [seeds] held_out); this is the default it takes.
HELD_OUT_SEED_BASE = 1 << 30


def episode_seed(base_seed: int, index: int, below: int = HELD_OUT_SEED_BASE) -> int:
    """A well-mixed world seed for episode ``index`` of a dataset, below ``below`` (the
    game's first held-out seed)."""
    z = (base_seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) % below


@dataclass(frozen=True)
class DatasetInfo:
    """How a dataset was made; two runs with equal info write identical shards.

    ``batch`` (environments simulated together) is part of it because the exploring
    agent draws its randomness for a whole batch at once.
    """

    game: str
    episodes: int
    frames: int
    episodes_per_shard: int
    batch: int
    seed: int
    width: int
    height: int
    tick_rate: int
    buttons: tuple[str, ...]
    mouse_axes: tuple[str, ...]
    state_names: tuple[str, ...]
    version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shards(self) -> int:
        return -(-self.episodes // self.episodes_per_shard)

    def shard_episodes(self, shard: int) -> range:
        start = shard * self.episodes_per_shard
        return range(start, min(start + self.episodes_per_shard, self.episodes))


def shard_path(folder: Path, shard: int) -> Path:
    return folder / f"shard-{shard:05d}.safetensors"


def write_info(folder: Path, info: DatasetInfo) -> None:
    tmp = folder / (INFO_NAME + ".tmp")
    try:
        tmp.write_text(json.dumps(schema.to_dict(info), indent=2) + "\n")
        os.replace(tmp, folder / INFO_NAME)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_info(folder: str | Path) -> DatasetInfo:
    path = Path(folder) / INFO_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise EngineError("not a dataset folder (no dataset.json)", where=str(folder)) from None
    except (OSError, ValueError) as exc:
        raise EngineError(f"unreadable dataset description: {exc}", where=str(path)) from None
    if not isinstance(raw, dict):
        raise EngineError("dataset description is not a JSON object", where=str(path))
    return schema.fill(DatasetInfo, raw, name=str(path))


def write_shard(path: Path, tensors: dict[str, torch.Tensor], stats: dict[str, Any]) -> None:
    """Write one shard atomically (temporary file, then rename); on a full or read-only
    disk nothing is left behind and the EngineError says why."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata={"stats": json.dumps(stats), "version": str(FORMAT_VERSION)})
        os.replace(tmp, path)
    except (OSError, SafetensorError) as exc:
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EngineError(f"cannot write shard: {reason.removeprefix('Error while serializing: ')}",
                          where=str(path)) from None


def read_shard_stats(path: Path) -> dict[str, Any] | None:
    """The statistics of a complete shard, or None if it is missing or unreadable."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})["stats"])
    except (OSError, SafetensorError, KeyError, ValueError):
        return None


@dataclass
class Clips:
    """A batch of clips: frames (B, T, H, W, 3) uint8, actions (B, T, A), state (B, T, S)."""

    frames: torch.Tensor
    actions: torch.Tensor
    state: torch.Tensor


class ClipReader:
    """Random fixed-length clips from a dataset folder, read lazily from memory-mapped shards.

    ``sample(batch)`` draws episodes and start ticks uniformly with its own seeded RNG,
    so two readers with the same seed yield the same clips; ``position``/``seek`` give
    training an exact resume point.
    """

    def __init__(self, folder: str | Path, clip_len: int, seed: int = 0):
        self.folder = Path(folder)
        self.info = read_info(self.folder)
        if not 1 <= clip_len <= self.info.frames:
            raise EngineError(f"clip length {clip_len} must be between 1 and the episode "
                              f"length {self.info.frames}", where=str(self.folder))
        self.clip_len = clip_len
        self.seed = seed
        self._handles = []
        self._index: list[tuple[int, int]] = []  # (shard, episode within shard)
        for shard in range(self.info.shards):
            path = shard_path(self.folder, shard)
            try:
                handle = safe_open(str(path), framework="pt")
            except (OSError, SafetensorError) as exc:
                raise EngineError(f"missing or corrupt shard: {exc}", where=str(path)) from None
            self._handles.append(handle)
            count = handle.get_slice("frames").get_shape()[0]
            self._index.extend((shard, e) for e in range(count))
        if not self._index:
            raise EngineError("dataset holds no episodes", where=str(self.folder))
        self.seek(0)

    @property
    def episodes(self) -> int:
        return len(self._index)

    def seek(self, position: int) -> None:
        """Continue as if ``position`` clips had already been drawn."""
        self._rng = random.Random(self.seed)
        self.position = 0
        for _ in range(position):
            self._draw()

    def _draw(self) -> tuple[int, int, int]:
        shard, episode = self._index[self._rng.randrange(len(self._index))]
        start = self._rng.randrange(self.info.frames - self.clip_len + 1)
        self.position += 1
        return shard, episode, start

    def clip(self, shard: int, episode: int, start: int) -> Clips:
        handle, end = self._handles[shard], start + self.clip_len
        return Clips(frames=handle.get_slice("frames")[episode:episode + 1, start:end],
                     actions=handle.get_slice("actions")[episode:episode + 1, start:end],
                     state=handle.get_slice("state")[episode:episode + 1, start:end])

    def sample(self, batch: int) -> Clips:
        parts = [self.clip(*self._draw()) for _ in range(batch)]
        return Clips(frames=torch.cat([p.frames for p in parts]),
                     actions=torch.cat([p.actions for p in parts]),
                     state=torch.cat([p.state for p in parts]))
