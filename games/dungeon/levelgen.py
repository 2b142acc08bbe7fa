"""Procedural dungeon levels, one per seed, and the vocabulary of what a level holds.

A level is a square grid of ``T = grid * cell`` tiles; tile (row, col) covers pixels
``[16 col, 16 col + 16) x [16 row, 16 row + 16)`` (x is the column, y the row). The
grid is cut into ``grid x grid`` cells and every cell holds one rectangular room.
Rooms are joined along a random spanning tree of the cell grid (so every room can be
reached) plus a few extra links that make loops. Each link is a corridor two tiles
wide, straight where the two rooms overlap and bent once where they do not; where it
meets a room's wall it may get a door (opened with *use*) or a locked door (opened
with *use* and a key). Keys lie in rooms reachable from the start without passing a
locked door, one per locked door, so every level can be finished.

Rooms get a floor style, big rooms get pillars, some wall faces carry torches and
banners. Objects stand at tile centres: coins, hearts and keys to pick up, chests to
open, pots to smash, and slimes, bats and skeletons. Every pot and enemy carries the
drop it leaves when it breaks or dies, fixed here so that play stays deterministic.

This module knows where things are, not how they look (``tiles``, ``sprites``) nor
how they move (``sim``). It runs on the CPU with numpy's frozen legacy generator
seeded through ``SeedSequence``, so a seed gives the same level on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neural_engine.schema import bounds

TILE = 16                                   # pixels per tile side

# Tile codes of ``Level.tiles``.
FLOOR, WALL, PILLAR, DOOR, LOCKED, OPEN = range(6)
SOLID_TILES = (WALL, PILLAR, DOOR, LOCKED)

# Floor styles (``Level.style``): corridors use style 0.
FLOOR_STYLES = ("flagstone", "brick", "checker", "moss", "planks")
# Wall-face decorations (``Level.decor`` on walls).
PLAIN, TORCH, BANNER, CRACK = range(4)

# Object kinds; index 0 is an empty slot.
NONE, COIN, HEART, KEY, CHEST, CHEST_OPEN, POT, SLIME, BAT, SKELETON, PUFF = range(11)
KIND_NAMES = ("none", "coin", "heart", "key", "chest", "open chest", "pot", "slime", "bat",
              "skeleton", "puff")

_STEPS = ((0, -1), (1, 0), (0, 1), (-1, 0))         # (dx, dy): north, east, south, west


@dataclass(frozen=True)
class LevelConfig:
    """How levels are generated. Counts are upper bounds: a level may hold fewer."""

    grid: int = field(default=4, metadata=bounds(2, 8))          # rooms per side
    cell: int = field(default=12, metadata=bounds(9, 16))        # tiles per cell side
    room: tuple[int, int] = (5, 8)                               # interior side, min, max
    loops: float = field(default=0.2, metadata=bounds(0.0, 1.0))     # extra links
    doors: float = field(default=0.55, metadata=bounds(0.0, 1.0))    # links with a door
    locked: int = 2
    coins: int = 14
    hearts: int = 3
    chests: int = 3
    pots: int = 8
    slimes: int = 6
    bats: int = 4
    skeletons: int = 3

    @property
    def tiles(self) -> int:
        return self.grid * self.cell

    @property
    def max_objects(self) -> int:
        return (self.coins + self.hearts + self.locked + self.chests + self.pots
                + self.slimes + self.bats + self.skeletons)


@dataclass(frozen=True)
class Level:
    """One generated level, as numpy arrays on the CPU.

    tiles:   (T, T) int8 tile codes (FLOOR, WALL, ...)
    door:    (T, T) int16 door number of DOOR/LOCKED tiles (both tiles of a door share
             it), -1 elsewhere
    axis:    (T, T) int8 for door tiles: 0 in a wall running east-west (passage north
             to south), 1 in a wall running north-south; half: (T, T) int8, which tile
             of the door (0 west/north, 1 east/south)
    style:   (T, T) int8 floor style; decor: (T, T) int8 (floor: a variant 0-3; walls:
             PLAIN, TORCH, BANNER or CRACK)
    room:    (T, T) int16 room number of room interiors, -1 elsewhere
    objects: (S, 4) int32 rows (x, y, kind, drop) in pixels, kind NONE in unused slots,
             S = ``LevelConfig.max_objects``
    start:   (2,) int32 the player's start (x, y) in pixels
    """

    tiles: np.ndarray
    door: np.ndarray
    axis: np.ndarray
    half: np.ndarray
    style: np.ndarray
    decor: np.ndarray
    room: np.ndarray
    objects: np.ndarray
    start: np.ndarray


@dataclass(frozen=True)
class _Room:
    x0: int
    y0: int
    x1: int                                  # inclusive
    y1: int

    def cells(self) -> list[tuple[int, int]]:
        return [(x, y) for y in range(self.y0, self.y1 + 1) for x in range(self.x0, self.x1 + 1)]


def generate(seed: int, config: LevelConfig = LevelConfig()) -> Level:
    """The level of ``seed``; the same seed always gives the same level."""
    rng = np.random.RandomState(np.random.MT19937(np.random.SeedSequence(seed % 2**64)))
    t, g = config.tiles, config.grid
    tiles = np.full((t, t), WALL, dtype=np.int8)
    room_of = np.full((t, t), -1, dtype=np.int16)
    rooms = _place_rooms(rng, config)
    for k, r in enumerate(rooms):
        tiles[r.y0:r.y1 + 1, r.x0:r.x1 + 1] = FLOOR
        room_of[r.y0:r.y1 + 1, r.x0:r.x1 + 1] = k
    start_room = int(rng.randint(g * g))
    tree, extra = _links(rng, g, start_room, config.loops)
    door = np.full((t, t), -1, dtype=np.int16)
    axis = np.zeros((t, t), dtype=np.int8)
    half = np.zeros((t, t), dtype=np.int8)
    lockable = [i for i, (a, b) in enumerate(tree) if a != start_room]
    locked = set(rng.permutation(lockable)[:config.locked].tolist()) if lockable else set()
    doors = []                                   # (tiles of the door, its axis, locked)
    for i, (a, b) in enumerate(tree + extra):
        spots = _corridor(tiles, rooms[a], rooms[b], rng)
        is_locked = i in locked
        if is_locked or rng.rand() < config.doors:
            doors.append((spots, is_locked))
    for number, ((cells, ax), is_locked) in enumerate(doors):
        if not _door_fits(tiles, cells, ax):
            continue
        for h, (x, y) in enumerate(cells):
            tiles[y, x] = LOCKED if is_locked else DOOR
            door[y, x], axis[y, x], half[y, x] = number, ax, h
    style = _paint_floors(rng, room_of, len(rooms))
    decor = _decorate(rng, tiles)
    _pillars(rng, tiles, rooms, start_room)
    region = _reachable_rooms(tiles, room_of, rooms[start_room])
    objects, start = _objects(rng, tiles, room_of, rooms, start_room, region, config)
    return Level(tiles, door, axis, half, style, decor, room_of, objects, start)


def _place_rooms(rng: np.random.RandomState, config: LevelConfig) -> list[_Room]:
    """One room per cell, at least two wall tiles from the cell's edges."""
    lo, hi = config.room
    span = config.cell - 4
    lo, hi = min(lo, span), min(hi, span)
    rooms = []
    for gy in range(config.grid):
        for gx in range(config.grid):
            w, h = rng.randint(lo, hi + 1), rng.randint(max(lo - 1, 3), hi + 1)
            x0 = gx * config.cell + 2 + rng.randint(span - w + 1)
            y0 = gy * config.cell + 2 + rng.randint(span - h + 1)
            rooms.append(_Room(x0, y0, x0 + w - 1, y0 + h - 1))
    return rooms


def _links(rng: np.random.RandomState, g: int, start: int, loops: float
           ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """A random spanning tree of the g x g cell grid grown from ``start`` (as (parent,
    child) pairs in the order grown) and extra links for loops."""
    seen, stack, tree = {start}, [start], []
    while stack:
        here = stack[-1]
        x, y = here % g, here // g
        options = [(x + dx) + (y + dy) * g for dx, dy in _STEPS
                   if 0 <= x + dx < g and 0 <= y + dy < g and (x + dx) + (y + dy) * g not in seen]
        if not options:
            stack.pop()
            continue
        nxt = options[rng.randint(len(options))]
        seen.add(nxt)
        tree.append((here, nxt))
        stack.append(nxt)
    linked = {frozenset(e) for e in tree}
    extra = []
    for a in range(g * g):
        for b in (a + 1, a + g):
            if (b == a + 1 and b % g == 0) or b >= g * g or frozenset((a, b)) in linked:
                continue
            if rng.rand() < loops:
                extra.append((a, b))
    return tree, extra


def _carve(tiles: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    tiles[min(y0, y1):max(y0, y1) + 1, min(x0, x1):max(x0, x1) + 1] = FLOOR


def _corridor(tiles: np.ndarray, a: _Room, b: _Room, rng: np.random.RandomState
              ) -> tuple[list[tuple[int, int]], int]:
    """Carve a corridor two tiles wide from room a to room b (grid neighbours); return
    the two wall tiles where it enters one of the rooms (a door's place) and its axis."""
    if a.x1 < b.x0 or b.x1 < a.x0:                       # side by side: run east-west
        if b.x1 < a.x0:
            a, b = b, a
        lo, hi = max(a.y0, b.y0), min(a.y1, b.y1)
        if hi - lo >= 1:
            y = rng.randint(lo, hi)
            _carve(tiles, a.x1 + 1, y, b.x0 - 1, y + 1)
            ya = yb = y
        else:
            ya, yb = rng.randint(a.y0, a.y1), rng.randint(b.y0, b.y1)
            xm = rng.randint(a.x1 + 2, b.x0 - 2)
            _carve(tiles, a.x1 + 1, ya, xm + 1, ya + 1)
            _carve(tiles, xm, ya, xm + 1, yb + 1)
            _carve(tiles, xm, yb, b.x0 - 1, yb + 1)
        if rng.rand() < 0.5:
            return [(a.x1 + 1, ya), (a.x1 + 1, ya + 1)], 1
        return [(b.x0 - 1, yb), (b.x0 - 1, yb + 1)], 1
    if b.y1 < a.y0:                                      # one above the other
        a, b = b, a
    lo, hi = max(a.x0, b.x0), min(a.x1, b.x1)
    if hi - lo >= 1:
        x = rng.randint(lo, hi)
        _carve(tiles, x, a.y1 + 1, x + 1, b.y0 - 1)
        xa = xb = x
    else:
        xa, xb = rng.randint(a.x0, a.x1), rng.randint(b.x0, b.x1)
        ym = rng.randint(a.y1 + 2, b.y0 - 2)
        _carve(tiles, xa, a.y1 + 1, xa + 1, ym + 1)
        _carve(tiles, xa, ym, xb + 1, ym + 1)
        _carve(tiles, xb, ym, xb + 1, b.y0 - 1)
    if rng.rand() < 0.5:
        return [(xa, a.y1 + 1), (xa + 1, a.y1 + 1)], 0
    return [(xb, b.y0 - 1), (xb + 1, b.y0 - 1)], 0


def _door_fits(tiles: np.ndarray, cells: list[tuple[int, int]], axis: int) -> bool:
    """A door stands between two walls, with floor on both sides of the passage."""
    (xa, ya), (xb, yb) = cells
    if axis == 0:          # passage north-south: walls west and east, floor north and south
        flank = tiles[ya, xa - 1] == WALL and tiles[yb, xb + 1] == WALL
        sides = all(tiles[y - 1, x] == FLOOR and tiles[y + 1, x] == FLOOR for x, y in cells)
    else:
        flank = tiles[ya - 1, xa] == WALL and tiles[yb + 1, xb] == WALL
        sides = all(tiles[y, x - 1] == FLOOR and tiles[y, x + 1] == FLOOR for x, y in cells)
    return bool(flank and sides and all(tiles[y, x] == FLOOR for x, y in cells))


def _paint_floors(rng: np.random.RandomState, room_of: np.ndarray, rooms: int) -> np.ndarray:
    style = rng.randint(len(FLOOR_STYLES), size=rooms).astype(np.int8)
    return np.where(room_of >= 0, style[np.maximum(room_of, 0)], 0).astype(np.int8)


def _decorate(rng: np.random.RandomState, tiles: np.ndarray) -> np.ndarray:
    """Floor variants everywhere; torches, banners and cracks on some wall faces (walls
    with open floor to the south)."""
    t = tiles.shape[0]
    decor = rng.choice(4, size=(t, t), p=[0.55, 0.2, 0.15, 0.1]).astype(np.int8)
    below = np.zeros_like(tiles, dtype=bool)
    below[:-1] = tiles[1:] == FLOOR
    face = (tiles == WALL) & below
    roll = rng.rand(t, t)
    wall_decor = np.select([roll < 0.14, roll < 0.2, roll < 0.28], [TORCH, BANNER, CRACK], PLAIN)
    decor[tiles == WALL] = PLAIN
    decor[face] = wall_decor[face]
    return decor


def _pillars(rng: np.random.RandomState, tiles: np.ndarray, rooms: list[_Room],
             start: int) -> None:
    """Four pillars in some rooms of at least 7 x 6 (not the start room, which stays
    open around the hero), two tiles in from the walls."""
    for k, r in enumerate(rooms):
        if k == start or r.x1 - r.x0 < 6 or r.y1 - r.y0 < 5 or rng.rand() < 0.4:
            continue
        for x in (r.x0 + 2, r.x1 - 2):
            for y in (r.y0 + 2, r.y1 - 2):
                tiles[y, x] = PILLAR


def _reachable_rooms(tiles: np.ndarray, room_of: np.ndarray, start: _Room) -> set[int]:
    """Rooms reachable from ``start`` over floor, open and closed doors (not locked)."""
    t = tiles.shape[0]
    passable = np.isin(tiles, (FLOOR, DOOR, OPEN))
    seen = np.zeros_like(passable)
    queue = [(start.x0, start.y0)]
    seen[start.y0, start.x0] = True
    while queue:
        x, y = queue.pop()
        for dx, dy in _STEPS:
            nx, ny = x + dx, y + dy
            if 0 <= nx < t and 0 <= ny < t and passable[ny, nx] and not seen[ny, nx]:
                seen[ny, nx] = True
                queue.append((nx, ny))
    return set(np.unique(room_of[seen & (room_of >= 0)]).tolist())


def _objects(rng: np.random.RandomState, tiles: np.ndarray, room_of: np.ndarray,
             rooms: list[_Room], start_room: int, region: set[int], config: LevelConfig
             ) -> tuple[np.ndarray, np.ndarray]:
    """Objects on free room tiles (never on the tile in front of a door) and the start."""
    free = (tiles == FLOOR) & (room_of >= 0)
    near_door = np.zeros_like(free)
    for y, x in zip(*np.nonzero(np.isin(tiles, (DOOR, LOCKED)))):
        near_door[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = True
    free &= ~near_door
    s = rooms[start_room]
    sx, sy = (s.x0 + s.x1) // 2, (s.y0 + s.y1) // 2
    free[sy, sx] = False
    rows: list[tuple[int, int, int, int]] = []

    def put(kind: int, count: int, where: list[int], edge: str = "") -> None:
        for _ in range(count):
            options = [(x, y) for k in where for x, y in rooms[k].cells() if free[y, x]
                       and (edge != "north" or y == rooms[k].y0)
                       and (edge != "corner" or (x in (rooms[k].x0, rooms[k].x1)
                                                 and y in (rooms[k].y0, rooms[k].y1)))]
            if not options:
                return
            x, y = options[rng.randint(len(options))]
            if kind not in (COIN, POT):                      # the rest keep a tile apart
                free[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = False
            free[y, x] = False
            drop = rng.choice([COIN, HEART, NONE], p=[0.5, 0.15, 0.35])
            rows.append((x * TILE + TILE // 2, y * TILE + TILE // 2, kind,
                         int(drop) if kind in (POT, SLIME, BAT, SKELETON) else NONE))

    others = [k for k in range(len(rooms)) if k != start_room]
    safe = sorted(region - {start_room}) or [start_room]
    put(KEY, config.locked, safe)
    put(CHEST, config.chests, others, edge="north")
    put(POT, config.pots, list(range(len(rooms))), edge="corner")
    for kind, count in ((SKELETON, config.skeletons), (BAT, config.bats),
                        (SLIME, config.slimes)):
        put(kind, count, others)
    put(HEART, config.hearts, others)
    put(COIN, config.coins, list(range(len(rooms))))
    objects = np.zeros((config.max_objects, 4), dtype=np.int32)
    objects[:len(rows)] = np.asarray(rows, dtype=np.int32).reshape(-1, 4)
    start = np.array([sx * TILE + TILE // 2, sy * TILE + TILE // 2], dtype=np.int32)
    return objects, start
