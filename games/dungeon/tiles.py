"""The look of the dungeon's map: procedural 16 x 16 pixel-art tiles, and which tile
image each map tile shows.

The view is three-quarter top-down: a wall with open floor to its south shows its
*face* (stone courses, sometimes a torch, a banner or a crack); every other wall shows
its dark *top* with a lit rim on each side that borders floor. Floors come in five
styles with four variants each, darkened along a wall to their north or west (the
walls' shadow). Pillars stand on their room's floor. Doors are drawn in halves (a door
is two tiles wide): closed, locked (a padlock) or open, in east-west or north-south
walls. Torches flicker: every image has ``FRAMES`` animation frames (most identical).

Everything is painted with numpy from fixed seeds, in a few tones per material with
shapes a few pixels across, so an autoencoder at 8x compression can keep them.
``catalogue()`` lists the images in atlas order; ``tile_images`` paints them all and
``autotile`` picks, for a level, the image of every tile with its door open and shut.
This module knows nothing about objects, the camera or torch tensors.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

from games.dungeon.levelgen import (BANNER, CRACK, DOOR, FLOOR_STYLES, LOCKED, OPEN, PILLAR,
                                    TILE, TORCH, WALL, Level)

FRAMES = 4
DOOR_STATES = ("closed", "locked", "open")
Image = np.ndarray          # (FRAMES, TILE, TILE, 3) float32 in [0, 1]


def catalogue() -> dict[str, int]:
    """Name → atlas index of every tile image, in atlas order."""
    names = [f"floor/{s}/{v}/{sh}" for s in range(len(FLOOR_STYLES)) for v in range(4)
             for sh in range(4)]
    names += [f"top/{mask}" for mask in range(16)]
    names += [f"face/{d}" for d in range(4)]
    names += [f"pillar/{s}" for s in range(len(FLOOR_STYLES))]
    names += [f"door/{state}/{axis}/{half}" for state in DOOR_STATES for axis in (0, 1)
              for half in (0, 1)]
    return {name: i for i, name in enumerate(names)}


def _rgb(*c: int) -> np.ndarray:
    return np.array(c, dtype=np.float32) / 255.0


def _rng(name: str) -> np.random.RandomState:
    return np.random.RandomState(zlib.crc32(name.encode()))


def _still(img: np.ndarray) -> Image:
    return np.repeat(img[None], FRAMES, 0)


# -- floors -----------------------------------------------------------------------------
def _slabs(rng, base, mortar, sizes: list[tuple[int, int, int, int]], tone: float) -> np.ndarray:
    img = np.empty((TILE, TILE, 3), np.float32)
    img[:] = mortar
    for x, y, w, h in sizes:
        c = base * (1 + rng.uniform(-tone, tone))
        img[y:y + h - 1, x:x + w - 1] = c
        img[y, x:x + w - 1] = np.minimum(c * 1.12, 1)             # lit top edge
    return img


def _floor(style: int, variant: int) -> np.ndarray:
    rng = _rng(f"floor{style}{variant}")
    name = FLOOR_STYLES[style]
    if name == "flagstone":
        img = _slabs(rng, _rgb(98, 98, 116), _rgb(58, 58, 72),
                     [(0, 0, 9, 7), (9, 0, 7, 7), (0, 7, 6, 9), (6, 7, 10, 9)], 0.07)
    elif name == "brick":
        rows = []
        for band in range(4):
            shift = 4 * (band % 2)
            rows += [((x + shift) % TILE, band * 4, 8, 4) for x in range(0, TILE, 8)]
        img = _slabs(rng, _rgb(146, 94, 70), _rgb(92, 58, 48), rows, 0.08)
    elif name == "checker":
        light, dark = _rgb(200, 190, 170), _rgb(92, 82, 96)
        ys, xs = np.indices((TILE, TILE))
        img = np.where((((ys // 8) + (xs // 8)) % 2 == 0)[..., None], light, dark)
        img = img.astype(np.float32)
        img[(ys % 8 == 7) | (xs % 8 == 7)] *= 0.85
    elif name == "moss":
        img = np.empty((TILE, TILE, 3), np.float32)
        img[:] = _rgb(64, 84, 54)
        for _ in range(7):
            x, y, r = rng.randint(TILE), rng.randint(TILE), rng.randint(2, 4)
            ys, xs = np.indices((TILE, TILE))
            blob = ((xs - x) ** 2 + (ys - y) ** 2) < r * r
            img[blob] = _rgb(82, 110, 62) * (1 + rng.uniform(-0.06, 0.06))
    else:                                                            # planks
        img = np.empty((TILE, TILE, 3), np.float32)
        for p in range(2):
            c = _rgb(178, 132, 76) * (1 + rng.uniform(-0.08, 0.08))
            img[:, p * 8:p * 8 + 8] = c
            img[:, p * 8 + 7] = _rgb(104, 72, 40)
            joint = (rng.randint(TILE) + 8 * p) % TILE
            img[joint, p * 8:p * 8 + 7] = _rgb(120, 84, 48)
            img[(joint + 5) % TILE, p * 8 + 3:p * 8 + 5] = _rgb(136, 96, 56)   # a knot
    _floor_detail(img, rng, name, variant)
    return np.clip(img, 0, 1)


def _floor_detail(img: np.ndarray, rng, name: str, variant: int) -> None:
    """Variant 0 is plain; 1 a crack, 2 pebbles or tufts, 3 a worn patch."""
    if variant == 1:
        x, y = rng.randint(3, 12), rng.randint(2, 6)
        for _ in range(7):
            img[y, x] *= 0.55
            y, x = min(y + 1, TILE - 1), int(np.clip(x + rng.randint(-1, 2), 0, TILE - 1))
    elif variant == 2:
        colour = _rgb(120, 168, 80) if name == "moss" else _rgb(140, 134, 128)
        for _ in range(3):
            x, y = rng.randint(2, 14), rng.randint(2, 14)
            img[y, x:x + 2] = colour
            img[y + 1, x:x + 2] = colour * 0.7
    elif variant == 3:
        x, y = rng.randint(2, 9), rng.randint(2, 9)
        img[y:y + 5, x:x + 5] *= 0.9


def _shadowed(img: np.ndarray, north: bool, west: bool) -> np.ndarray:
    out = img.copy()
    if north:
        out[:4] *= np.array([0.55, 0.65, 0.78, 0.9], np.float32)[:, None, None]
    if west:
        out[:, :3] *= np.array([0.62, 0.76, 0.9], np.float32)[None, :, None]
    return out


# -- walls ------------------------------------------------------------------------------
TOP, RIM, RIM_DARK = _rgb(50, 42, 64), _rgb(128, 112, 146), _rgb(86, 74, 104)


def _top(mask: int) -> np.ndarray:
    """Wall top; mask bits 1 N, 2 E, 4 S, 8 W: sides that border open ground."""
    img = np.empty((TILE, TILE, 3), np.float32)
    img[:] = TOP
    ys, xs = np.indices((TILE, TILE))
    img[((xs // 4) + (ys // 4)) % 3 == 0] *= 0.88
    for bit, edge in ((1, np.s_[0:2, :]), (2, np.s_[:, 14:16]), (4, np.s_[14:16, :]),
                      (8, np.s_[:, 0:2])):
        if mask & bit:
            img[edge] = RIM_DARK
    for bit, edge in ((1, np.s_[0, :]), (2, np.s_[:, 15]), (4, np.s_[15, :]), (8, np.s_[:, 0])):
        if mask & bit:
            img[edge] = RIM
    return img


def _face_bricks(rng) -> np.ndarray:
    img = np.empty((TILE, TILE, 3), np.float32)
    img[:] = _rgb(66, 56, 62)
    for band, (y, h) in enumerate(((2, 5), (7, 4), (11, 4))):
        shift = 5 * (band % 2)
        for x in range(-8, TILE, 8):
            c = _rgb(126, 108, 104) * (1 + rng.uniform(-0.08, 0.08))
            x0, x1 = max(x + shift, 0), min(x + shift + 7, TILE)
            if x1 > x0:
                img[y:y + h - 1, x0:x1] = c
                img[y, x0:x1] = np.minimum(c * 1.15, 1)
    img[0] = _rgb(36, 30, 44)
    img[1] = _rgb(150, 132, 140)
    img[15] = _rgb(44, 38, 44)
    return img


def _face(decor: int) -> Image:
    rng = _rng(f"face{decor}")
    img = _face_bricks(rng)
    frames = _still(img)
    if decor == TORCH:
        frames = frames.copy()
        for f in range(FRAMES):
            ys, xs = np.indices((TILE, TILE))
            lit = (ys - 6) ** 2 + (xs - 7.5) ** 2 < 20                  # the flame's light
            frames[f][lit] = np.clip(frames[f][lit] * (1.18 + 0.06 * (f % 2)), 0, 1)
            frames[f, 9:13, 7:9] = _rgb(90, 60, 36)                     # the stick
            frames[f, 12, 6:10] = _rgb(60, 60, 70)                     # the bracket
            tip = (f * 3) % 2
            frames[f, 5:9, 7:9] = _rgb(236, 120, 40)
            frames[f, 3 + tip:6, 7 + tip:8 + tip] = _rgb(250, 200, 70)
            frames[f, 6:8, 7:9] = _rgb(255, 236, 150)
    elif decor == BANNER:
        frames = frames.copy()
        cloth = _rgb(152, 36, 48)
        frames[:, 2, 3:13] = _rgb(70, 60, 70)
        frames[:, 3:13, 4:12] = cloth
        frames[:, 3:13, 4] = cloth * 0.75
        frames[:, 13, 4:12:2] = cloth
        frames[:, 6:9, 7:9] = _rgb(232, 190, 70)
        frames[:, 7, 6:10] = _rgb(232, 190, 70)
    elif decor == CRACK:
        frames = frames.copy()
        x = 9
        for y in range(3, 14):
            frames[:, y, x] = _rgb(40, 32, 38)
            x += (y % 3 == 0) - (y % 4 == 0)
    return frames


def _pillar(style: int) -> np.ndarray:
    img = _floor(style, 0)
    ys, xs = np.indices((TILE, TILE))
    img[((xs - 8) ** 2 / 36 + (ys - 14) ** 2 / 4) < 1] *= 0.55           # its shadow
    body = (xs >= 3) & (xs <= 12) & (ys >= 4) & (ys <= 14)
    shade = 0.72 + 0.5 * np.sin((xs - 2) / 11 * np.pi).clip(0)
    img[body] = (_rgb(128, 118, 134)[None, :] * shade[body][:, None]).clip(0, 1)
    cap = (((xs - 7.5) ** 2 / 36 + (ys - 4) ** 2 / 9) < 1) & (ys <= 6)
    img[cap] = _rgb(176, 166, 184)
    img[14, 3:13] = _rgb(84, 76, 90)
    return img


# -- doors ------------------------------------------------------------------------------
WOOD, WOOD_DARK = _rgb(138, 86, 46), _rgb(92, 56, 32)
IRON, GOLD = _rgb(72, 72, 84), _rgb(228, 184, 64)


def _door(state: str, axis: int, half: int) -> np.ndarray:
    """Half of a two-tile door. Axis 0: in an east-west wall, seen from the front (halves
    west and east); axis 1: in a north-south wall, seen from above (halves north and south)."""
    ys, xs = np.indices((TILE, TILE))
    if axis == 0:
        img = _face_bricks(_rng("doorframe"))
        if state == "open":
            img[2:, :] = _rgb(30, 26, 34)
            img[2:, :] = img[2:] * (1 + 0.04 * (ys[2:] % 4 == 0))[..., None]
        else:
            inner = slice(2, TILE) if half == 0 else slice(0, 14)
            img[2:, inner] = WOOD
            img[2:, (xs % 4 == 3)[0]] = WOOD_DARK
            img[5:7, inner] = IRON
            img[12:14, inner] = IRON
            if state == "locked" and half == 0:              # a padlock where they meet
                img[7:12, 11:16] = GOLD
                img[5:7, 12:15] = GOLD * 0.8
                img[9:11, 13:14] = _rgb(30, 24, 20)
            elif state == "closed":                          # a ring handle on each half
                img[8:10, 14 if half == 0 else 1] = GOLD
        frame_col = 0 if half == 0 else 15
        img[:, frame_col] = _rgb(60, 50, 58)
        return img
    img = _top(10)                                                         # east and west rims
    if state == "open":
        img[:, 2:14] = _rgb(34, 30, 38)
    else:
        img[:, 4:12] = WOOD
        img[(ys % 4 == 3)[:, 0], 4:12] = WOOD_DARK
        img[:, 4] = WOOD_DARK
        img[:, 11] = _rgb(178, 120, 70)
        hinge = 2 if half == 0 else 12
        img[hinge:hinge + 2, 4:12] = IRON
        if state == "locked" and half == 1:
            img[0:5, 3:13] = GOLD
            img[2:4, 7:9] = _rgb(30, 24, 20)
    edge = 0 if half == 0 else 15
    img[edge, 2:14] = RIM
    return img


@lru_cache(maxsize=1)
def tile_images() -> np.ndarray:
    """Every tile image in ``catalogue()`` order: (N, FRAMES, TILE, TILE, 3) float32."""
    out = []
    for name in catalogue():
        kind, *args = name.split("/")
        if kind == "floor":
            style, variant, shadow = map(int, args)
            out.append(_still(_shadowed(_floor(style, variant), bool(shadow & 1),
                                        bool(shadow & 2))))
        elif kind == "top":
            out.append(_still(_top(int(args[0]))))
        elif kind == "face":
            out.append(_face(int(args[0])))
        elif kind == "pillar":
            out.append(_still(_pillar(int(args[0]))))
        else:
            out.append(_still(_door(args[0], int(args[1]), int(args[2]))))
    return np.stack(out).astype(np.float32)


def autotile(level: Level) -> tuple[np.ndarray, np.ndarray]:
    """Tile image index per map tile (T, T) int32, as generated and with every door open."""
    names = catalogue()
    tiles = level.tiles
    wallish = np.isin(tiles, (WALL, DOOR, LOCKED, OPEN))
    padded = np.pad(wallish, 1, constant_values=True)
    north, south = padded[:-2, 1:-1], padded[2:, 1:-1]
    west, east = padded[1:-1, :-2], padded[1:-1, 2:]
    shade = np.pad(np.isin(tiles, (WALL, DOOR, LOCKED)), 1, constant_values=True)
    floor = (names["floor/0/0/0"] + level.style.astype(np.int32) * 16
             + level.decor.clip(0, 3).astype(np.int32) * 4
             + shade[:-2, 1:-1] * 1 + shade[1:-1, :-2] * 2)
    mask = (~north) * 1 + (~east) * 2 + (~south) * 4 + (~west) * 8
    top = names["top/0"] + mask
    face = names["face/0"] + level.decor.clip(0, 3)
    vis = np.where(tiles == WALL, np.where(south, top, face), floor)
    vis = np.where(tiles == PILLAR, names["pillar/0"] + level.style, vis)

    def door(state: str) -> np.ndarray:
        return (names[f"door/{state}/0/0"] + level.axis.astype(np.int32) * 2 + level.half)

    vis = np.where(tiles == DOOR, door("closed"), vis)
    vis = np.where(tiles == LOCKED, door("locked"), vis)
    vis = np.where(tiles == OPEN, door("open"), vis)
    opened = np.where(np.isin(tiles, (DOOR, LOCKED)), door("open"), vis)
    return vis.astype(np.int32), opened.astype(np.int32)
