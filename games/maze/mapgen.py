"""Procedural maze maps, one per seed, and the vocabulary of things a map holds.

A map is a square grid of ``T = 2 * cells + 1`` tiles. Tile (row, col) covers the
square ``[col, col + 1) x [row, row + 1)`` in map units (x is the column, y the row).
The generator carves a perfect maze with a depth-first backtracker, braids away most
dead ends and knocks out a few more walls so that paths loop, then opens a handful of
rectangular rooms. Walls take a texture kind by region (a Voronoi split of the map, so
that places have a look of their own) with a few landmark walls (a banner, a painting)
scattered as cues. Rooms get their own floor and ceiling. Sprites stand at tile
centres: pillars, barrels and plants in room interiors (solid), ceiling lamps, and
treasures to pick up.

This module knows where things are, not how they look (``textures``) nor how they
are drawn (``render``). It runs on the CPU with numpy's frozen legacy generator seeded
through ``SeedSequence``, so a seed gives the same map on every machine and device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neural_engine.schema import bounds

WALL_KINDS = ("grey_stone", "red_brick", "blue_stone", "wood_panel", "steel", "green_tile")
LANDMARK_KINDS = ("banner", "painting")
ALL_WALL_KINDS = WALL_KINDS + LANDMARK_KINDS
FLOOR_KINDS = ("stone_floor", "wood_floor", "checker_floor")
CEILING_KINDS = ("dark_ceiling", "light_ceiling")


@dataclass(frozen=True)
class SpriteKind:
    """A kind of billboard sprite: its name, its collision radius (0: walk through),
    and whether walking over it picks it up."""

    name: str
    radius: float = 0.0
    pickup: bool = False


SPRITE_KINDS = (
    SpriteKind("pillar", radius=0.25),
    SpriteKind("barrel", radius=0.3),
    SpriteKind("plant", radius=0.22),
    SpriteKind("lamp"),
    SpriteKind("treasure", pickup=True),
)
_SPRITE_ID = {kind.name: i for i, kind in enumerate(SPRITE_KINDS)}

_DIRS = ((-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass(frozen=True)
class MapConfig:
    """How maps are generated. Counts are upper bounds: a small map may hold fewer."""

    cells: int = field(default=16, metadata=bounds(3, 64))
    braid: float = field(default=0.6, metadata=bounds(0.0, 1.0))   # dead ends opened
    loops: float = field(default=0.05, metadata=bounds(0.0, 1.0))  # extra walls removed
    rooms: tuple[int, int] = (3, 6)                                # min, max count
    room_cells: tuple[int, int] = (2, 4)                           # min, max side
    regions: tuple[int, int] = (4, 6)                              # wall-kind regions
    landmarks: int = 10
    pillars: int = 8
    props: int = 8
    lamps: int = 16
    treasures: int = 12

    @property
    def tiles(self) -> int:
        return 2 * self.cells + 1

    @property
    def max_sprites(self) -> int:
        return self.pillars + self.props + self.lamps + self.treasures


@dataclass(frozen=True)
class MazeMap:
    """One generated map, as numpy arrays on the CPU.

    walls:   (T, T) int16, 0 where free, k + 1 for wall kind k of ``ALL_WALL_KINDS``
    floor:   (T, T) int16, index into ``FLOOR_KINDS``
    ceiling: (T, T) int16, index into ``CEILING_KINDS``
    sprites: (S, 3) float32 rows (x, y, kind) with kind -1 for unused slots,
             S = ``MapConfig.max_sprites``
    start:   (3,) float32 start pose (x, y, angle)
    """

    walls: np.ndarray
    floor: np.ndarray
    ceiling: np.ndarray
    sprites: np.ndarray
    start: np.ndarray


def generate(seed: int, config: MapConfig = MapConfig()) -> MazeMap:
    """The map of ``seed``; the same seed always gives the same map."""
    rng = np.random.RandomState(np.random.MT19937(np.random.SeedSequence(seed % 2**64)))
    n = config.cells
    free = np.zeros((config.tiles, config.tiles), dtype=bool)
    _carve_maze(free, n, rng)
    _braid(free, n, rng, config.braid)
    _knock_walls(free, n, rng, config.loops)
    room_id = _carve_rooms(free, n, rng, config)
    walls = _paint_walls(free, rng, config)
    floor, ceiling = _paint_flats(room_id, rng)
    sprites, taken = _place_sprites(free, room_id, rng, config)
    start = _start_pose(free, taken, rng)
    return MazeMap(walls, floor, ceiling, sprites, start)


def _carve_maze(free: np.ndarray, n: int, rng: np.random.RandomState) -> None:
    """A perfect maze over n x n cells; cell (r, c) is tile (2r + 1, 2c + 1)."""
    seen = np.zeros((n, n), dtype=bool)
    r, c = rng.randint(n), rng.randint(n)
    seen[r, c] = True
    free[2 * r + 1, 2 * c + 1] = True
    stack = [(r, c)]
    while stack:
        r, c = stack[-1]
        options = [(r + dr, c + dc) for dr, dc in _DIRS
                   if 0 <= r + dr < n and 0 <= c + dc < n and not seen[r + dr, c + dc]]
        if not options:
            stack.pop()
            continue
        nr, nc = options[rng.randint(len(options))]
        seen[nr, nc] = True
        free[r + nr + 1, c + nc + 1] = True
        free[2 * nr + 1, 2 * nc + 1] = True
        stack.append((nr, nc))


def _braid(free: np.ndarray, n: int, rng: np.random.RandomState, chance: float) -> None:
    """Open one more wall of a dead-end cell with probability ``chance``."""
    for index in rng.permutation(n * n):
        r, c = divmod(int(index), n)
        tr, tc = 2 * r + 1, 2 * c + 1
        closed = [(dr, dc) for dr, dc in _DIRS
                  if 0 <= r + dr < n and 0 <= c + dc < n and not free[tr + dr, tc + dc]]
        if len(closed) == 3 and rng.rand() < chance:
            dr, dc = closed[rng.randint(len(closed))]
            free[tr + dr, tc + dc] = True


def _knock_walls(free: np.ndarray, n: int, rng: np.random.RandomState, chance: float
                 ) -> None:
    """Remove each wall between two neighbouring cells with probability ``chance``."""
    t = 2 * n + 1
    rows, cols = np.meshgrid(np.arange(1, t - 1), np.arange(1, t - 1), indexing="ij")
    between = (rows + cols) % 2 == 1  # (T-2, T-2): exactly one coordinate is even
    knock = between & (rng.rand(t - 2, t - 2) < chance)
    free[1:-1, 1:-1] |= knock


def _carve_rooms(free: np.ndarray, n: int, rng: np.random.RandomState,
                 config: MapConfig) -> np.ndarray:
    """Open rectangular rooms aligned to cells; returns (T, T) room ids, -1 outside."""
    room_id = np.full(free.shape, -1, dtype=np.int16)
    lo, hi = config.room_cells
    for k in range(rng.randint(config.rooms[0], config.rooms[1] + 1)):
        h, w = (min(n, rng.randint(lo, hi + 1)) for _ in range(2))
        r0, c0 = rng.randint(n - h + 1), rng.randint(n - w + 1)
        rect = (slice(2 * r0 + 1, 2 * (r0 + h)), slice(2 * c0 + 1, 2 * (c0 + w)))
        free[rect] = True
        room_id[rect] = k
    return room_id


def _paint_walls(free: np.ndarray, rng: np.random.RandomState, config: MapConfig
                 ) -> np.ndarray:
    """Wall kinds by nearest region centre, plus landmarks on walls that face a free tile."""
    t = free.shape[0]
    count = rng.randint(config.regions[0], config.regions[1] + 1)
    centres = rng.randint(t, size=(count, 2))
    kinds = rng.permutation(len(WALL_KINDS))[np.arange(count) % len(WALL_KINDS)]
    rows, cols = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
    d2 = (rows[..., None] - centres[:, 0]) ** 2 + (cols[..., None] - centres[:, 1]) ** 2
    walls = (kinds[d2.argmin(-1)] + 1).astype(np.int16)  # (T, T)
    walls[free] = 0
    padded = np.pad(free, 1)
    faces_free = (padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:])
    candidates = np.flatnonzero(~free & faces_free)
    picked = rng.choice(candidates, size=min(config.landmarks, len(candidates)), replace=False)
    landmark = len(WALL_KINDS) + 1 + rng.randint(len(LANDMARK_KINDS), size=len(picked))
    walls.flat[picked] = landmark
    return walls


def _paint_flats(room_id: np.ndarray, rng: np.random.RandomState
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Corridors: stone floor, dark ceiling; each room its own floor, a light ceiling."""
    rooms = int(room_id.max()) + 1
    room_floor = rng.randint(len(FLOOR_KINDS), size=max(rooms, 1)).astype(np.int16)
    floor = np.where(room_id >= 0, room_floor[np.maximum(room_id, 0)], 0).astype(np.int16)
    ceiling = (room_id >= 0).astype(np.int16)
    return floor, ceiling


def _place_sprites(free: np.ndarray, room_id: np.ndarray, rng: np.random.RandomState,
                   config: MapConfig) -> tuple[np.ndarray, np.ndarray]:
    """Sprites at tile centres; returns (S, 3) rows (x, y, kind) and the (T, T) tiles used.

    Solid sprites go only where all eight neighbours are free, two tiles apart, so that
    pushing the player out of one never pushes it into a wall or another sprite.
    """
    padded = np.pad(free, 1)
    t = free.shape[0]
    open8 = np.ones_like(free)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            open8 &= padded[1 + dr:1 + dr + t, 1 + dc:1 + dc + t]
    taken = np.zeros_like(free)
    rows: list[tuple[float, float, int]] = []

    def scatter(mask: np.ndarray, count: int, spacing: int, kinds: list[int]) -> None:
        for index in rng.permutation(np.flatnonzero(mask & ~taken)):
            if count <= 0:
                return
            r, c = divmod(int(index), t)
            near = taken[max(r - spacing + 1, 0):r + spacing, max(c - spacing + 1, 0):c + spacing]
            if spacing > 1 and near.any():
                continue
            taken[r, c] = True
            rows.append((c + 0.5, r + 0.5, kinds[rng.randint(len(kinds))]))
            count -= 1

    interior = open8 & (room_id >= 0)
    scatter(interior, config.pillars, 2, [_SPRITE_ID["pillar"]])
    scatter(interior, config.props, 2, [_SPRITE_ID["barrel"], _SPRITE_ID["plant"]])
    scatter(free, config.lamps, 3, [_SPRITE_ID["lamp"]])
    scatter(free, config.treasures, 1, [_SPRITE_ID["treasure"]])
    sprites = np.full((config.max_sprites, 3), -1.0, dtype=np.float32)
    if rows:
        sprites[:len(rows)] = np.asarray(rows, dtype=np.float32)
    return sprites, taken


def _start_pose(free: np.ndarray, taken: np.ndarray, rng: np.random.RandomState
                ) -> np.ndarray:
    """A free tile without a sprite, facing the longest open run of the four directions."""
    t = free.shape[0]
    r, c = divmod(int(rng.choice(np.flatnonzero(free & ~taken))), t)
    runs = []
    for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):  # angles 0, pi/2, pi, 3pi/2
        k = 0
        while free[r + (k + 1) * dr, c + (k + 1) * dc]:
            k += 1
        runs.append(k)
    angle = np.argmax(runs) * np.pi / 2 + rng.uniform(-0.3, 0.3)
    return np.array([c + 0.5, r + 0.5, (angle + np.pi) % (2 * np.pi) - np.pi], dtype=np.float32)
