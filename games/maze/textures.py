"""The look of the maze: procedural textures in one mip-mapped atlas.

Every wall, floor, ceiling and sprite kind named in ``mapgen`` gets a square RGBA
image painted here with numpy from a fixed seed: stone blocks, bricks, planks, steel
panels, tiles, a banner and a painting for walls; tiled, planked and checkered floors;
panelled ceilings; a pillar, a barrel, a plant, a lamp and a treasure as sprites with
transparency. The structure is deliberately medium-frequency (blocks and planks a few
texels across, one tone per block, no per-texel noise) so that an autoencoder at 8x
compression can keep it.

``TextureAtlas`` stores all images with their mip chains flat, ``(N, 4)`` texels, so
that any number of lookups of any kinds at any mip level is one gather. It knows
nothing about maps, rays or cameras.
"""

from __future__ import annotations

import sys
import zlib
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from games.maze.mapgen import ALL_WALL_KINDS, CEILING_KINDS, FLOOR_KINDS, SPRITE_KINDS

SIZE = 32
Image = np.ndarray  # (SIZE, SIZE, 4) float32, RGB and alpha in [0, 1]


def _canvas(rgb, alpha: float = 1.0) -> Image:
    img = np.zeros((SIZE, SIZE, 4), dtype=np.float32)
    img[..., :3] = rgb
    img[..., 3] = alpha
    return img


def _blocks(img: Image, rng, rows: list[int], widths: Callable[[int], list[int]],
            colour, mortar, tone: float, bevel: float, shift: int = 0) -> Image:
    """Fill ``img`` with a course of blocks per row band, odd bands shifted by ``shift``
    texels (wrapping round); mortar one texel wide, a bevel on each block."""
    y0 = 0
    for band, height in enumerate(rows):
        x0 = shift * (band % 2)
        for width in widths(band):
            block = np.asarray(colour) * (1 + rng.uniform(-tone, tone))
            xs = np.arange(x0, x0 + width) % SIZE
            img[y0:y0 + height, xs, :3] = block
            img[y0, xs, :3] = np.minimum(block * (1 + bevel), 1)
            img[y0 + height - 1, xs, :3] = block * (1 - bevel)
            img[y0:y0 + height, xs[0], :3] = mortar
            x0 += width
        img[y0 + height - 1, :, :3] = mortar
        y0 += height
    return img


def grey_stone(rng) -> Image:
    return _blocks(_canvas(0), rng, [8] * 4, lambda b: [16, 16],
                   (0.5, 0.5, 0.52), (0.22, 0.22, 0.24), 0.12, 0.25, shift=8)


def red_brick(rng) -> Image:
    return _blocks(_canvas(0), rng, [4] * 8, lambda b: [8] * 4,
                   (0.62, 0.2, 0.13), (0.68, 0.64, 0.58), 0.12, 0.15, shift=4)


def blue_stone(rng) -> Image:
    def widths(band: int) -> list[int]:
        out, left = [], SIZE
        while left > 14:
            out.append(int(rng.randint(6, min(12, left - 6) + 1)))
            left -= out[-1]
        return out + [left]
    return _blocks(_canvas(0), rng, [8, 6, 10, 8], widths,
                   (0.2, 0.28, 0.66), (0.08, 0.1, 0.28), 0.18, 0.3)


def wood_panel(rng) -> Image:
    img = _canvas(0)
    for x0 in range(0, SIZE, 8):
        plank = np.array([0.47, 0.29, 0.14]) * (1 + rng.uniform(-0.12, 0.12))
        img[:, x0:x0 + 8, :3] = plank
        img[:, x0 + rng.randint(2, 6), :3] = plank * 0.8
        img[:, x0, :3] = (0.2, 0.12, 0.06)
    img[13:18, :, :3] = (0.33, 0.19, 0.08)
    img[13, :, :3] = (0.55, 0.36, 0.18)
    img[17, :, :3] = (0.2, 0.12, 0.06)
    return img


def steel(rng) -> Image:
    img = _canvas(0)
    for y0 in (0, 16):
        for x0 in (0, 16):
            panel = np.array([0.5, 0.55, 0.6]) * (1 + rng.uniform(-0.06, 0.06))
            img[y0:y0 + 16, x0:x0 + 16, :3] = panel
            img[y0, x0:x0 + 16, :3] = (0.78, 0.8, 0.84)
            img[y0:y0 + 16, x0, :3] = (0.7, 0.73, 0.78)
            img[y0 + 15, x0:x0 + 16, :3] = (0.24, 0.26, 0.3)
            img[y0:y0 + 16, x0 + 15, :3] = (0.28, 0.3, 0.34)
            for ry in (y0 + 3, y0 + 11):
                for rx in (x0 + 3, x0 + 11):
                    img[ry:ry + 2, rx:rx + 2, :3] = (0.25, 0.27, 0.3)
    return img


def green_tile(rng) -> Image:
    return _blocks(_canvas(0), rng, [8] * 4, lambda b: [8] * 4,
                   (0.2, 0.52, 0.32), (0.72, 0.76, 0.7), 0.1, 0.2)


def banner(rng) -> Image:
    img = grey_stone(rng)
    img[2:26, 9:23, :3] = (0.72, 0.1, 0.1)
    for y in range(26, 30):  # pointed bottom
        img[y, 9 + 2 * (y - 25):23 - 2 * (y - 25), :3] = (0.72, 0.1, 0.1)
    img[2:26, 9, :3] = img[2:26, 22, :3] = (0.9, 0.75, 0.2)
    img[2, 9:23, :3] = (0.9, 0.75, 0.2)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    emblem = (yy - 13.5) ** 2 + (xx - 15.5) ** 2
    img[(emblem < 20) & (emblem >= 8), :3] = (0.95, 0.8, 0.25)
    img[emblem < 3, :3] = (0.95, 0.8, 0.25)
    return img


def painting(rng) -> Image:
    img = wood_panel(rng)
    img[5:25, 5:27, :3] = (0.85, 0.65, 0.2)
    img[7:23, 7:25, :3] = (0.45, 0.65, 0.9)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    hill = (yy > 16 + 3 * np.cos((xx - 7) / 5.0)) & (yy >= 7) & (yy < 23) & (xx >= 7) & (xx < 25)
    img[hill, :3] = (0.2, 0.5, 0.2)
    img[(yy - 11) ** 2 + (xx - 20) ** 2 < 6, :3] = (1.0, 0.9, 0.35)
    return img


def stone_floor(rng) -> Image:
    return _blocks(_canvas(0), rng, [16, 16], lambda b: [16, 16],
                   (0.4, 0.37, 0.33), (0.2, 0.18, 0.16), 0.1, 0.1)


def wood_floor(rng) -> Image:
    return _blocks(_canvas(0), rng, [8] * 4, lambda b: [16, 16],
                   (0.52, 0.34, 0.18), (0.25, 0.15, 0.07), 0.12, 0.1, shift=8)


def checker_floor(rng) -> Image:
    img = _canvas((0.58, 0.57, 0.54))
    img[:16, 16:, :3] = img[16:, :16, :3] = (0.2, 0.21, 0.26)
    return img


def dark_ceiling(rng) -> Image:
    img = _canvas((0.22, 0.22, 0.24))
    img[0, :, :3] = img[:, 0, :3] = (0.32, 0.32, 0.34)
    img[15:17, :, :3] = (0.18, 0.18, 0.2)
    return img


def light_ceiling(rng) -> Image:
    img = _canvas((0.44, 0.42, 0.38))
    for line in (0, 16):
        img[line, :, :3] = img[:, line, :3] = (0.3, 0.29, 0.26)
    return img


def _cylinder(width: int) -> np.ndarray:
    """(width,) brightness of a lit cylinder seen side on."""
    x = (np.arange(width) + 0.5) / width * 2 - 1
    return 0.55 + 0.55 * np.sqrt(1 - x ** 2) - 0.15 * x


def pillar(rng) -> Image:
    img = _canvas(0, alpha=0.0)
    img[3:29, 11:21] = np.concatenate([np.outer(_cylinder(10), (0.55, 0.53, 0.48)),
                                       np.ones((10, 1))], 1)
    img[0:3, 9:23] = (0.62, 0.6, 0.55, 1)
    img[29:32, 9:23] = (0.45, 0.43, 0.4, 1)
    img[3, 11:21, :3] = img[28, 11:21, :3] = (0.35, 0.33, 0.3)
    return img


def barrel(rng) -> Image:
    img = _canvas(0, alpha=0.0)
    img[14:32, 9:23] = np.concatenate([np.outer(_cylinder(14), (0.22, 0.42, 0.3)),
                                       np.ones((14, 1))], 1)
    for y in (15, 22, 29):
        img[y:y + 2, 9:23, :3] *= 0.45
    img[14, 11:21, :3] = (0.35, 0.55, 0.4)
    return img


def plant(rng) -> Image:
    img = _canvas(0, alpha=0.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for cy, cx, ry, rx, shade in ((14, 10, 7, 4, 0.8), (11, 16, 9, 4, 1.0), (14, 22, 7, 4, 0.7),
                                  (20, 13, 5, 5, 0.9), (20, 19, 5, 5, 0.75)):
        leaf = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        img[leaf] = (0.15 * shade, 0.6 * shade, 0.2 * shade, 1)
    for y in range(24, 32):
        inset = (y - 24) // 3
        img[y, 11 + inset:21 - inset] = (0.6, 0.32, 0.18, 1)
    img[24, 10:22] = (0.7, 0.4, 0.24, 1)
    return img


def lamp(rng) -> Image:
    img = _canvas(0, alpha=0.0)
    img[0:4, 15:17] = (0.3, 0.3, 0.3, 1)
    for y in range(4, 10):
        half = 2 + (y - 4)
        img[y, 16 - half:16 + half] = (0.85, 0.7, 0.25, 1)
    img[10:12, 12:20] = (1.0, 0.97, 0.75, 1)
    return img


def treasure(rng) -> Image:
    img = _canvas(0, alpha=0.0)
    gold = np.outer(_cylinder(10), (0.95, 0.72, 0.15)).clip(0, 1)
    img[20:26, 11:21] = np.concatenate([gold, np.ones((10, 1))], 1)
    img[20, 10:22] = (1.0, 0.88, 0.4, 1)
    img[26:29, 15:17] = (0.85, 0.62, 0.1, 1)
    img[29:32, 12:20] = (0.9, 0.68, 0.12, 1)
    img[22:24, 13:15] = (1.0, 1.0, 0.85, 1)
    return img


PAINTERS: dict[str, Callable[[np.random.RandomState], Image]] = {
    f.__name__: f for f in (grey_stone, red_brick, blue_stone, wood_panel, steel, green_tile,
                            banner, painting, stone_floor, wood_floor, checker_floor,
                            dark_ceiling, light_ceiling, pillar, barrel, plant, lamp, treasure)}

GROUPS: dict[str, tuple[str, ...]] = {
    "wall": ALL_WALL_KINDS,
    "floor": FLOOR_KINDS,
    "ceiling": CEILING_KINDS,
    "sprite": tuple(kind.name for kind in SPRITE_KINDS),
}


def paint(name: str) -> Image:
    """The image of one kind, the same on every call and machine."""
    return PAINTERS[name](np.random.RandomState(zlib.crc32(name.encode())))


def _mip_chain(img: Image, levels: int) -> list[Image]:
    """Box-filtered halvings; colour is averaged weighted by alpha."""
    chain = [img]
    for _ in range(levels - 1):
        prev = chain[-1]
        s = prev.shape[0] // 2
        blocks = prev.reshape(s, 2, s, 2, 4)  # (s, 2, s, 2, 4)
        alpha = blocks[..., 3].mean((1, 3))
        rgb = (blocks[..., :3] * blocks[..., 3:]).mean((1, 3)) / np.maximum(alpha, 1e-6)[..., None]
        chain.append(np.concatenate([rgb, alpha[..., None]], -1).astype(np.float32))
    return chain


class TextureAtlas:
    """All kinds' images and mip levels in one flat texel table, plus a lit copy.

    Texel ids: level l holds every kind's (s_l, s_l) image, s_l = SIZE >> l, row-major,
    kinds in ``names`` order, levels one after another; ``count`` texels in all.
    ``first[group]`` is the atlas kind id of a group's first kind.

    ``lit`` (light_levels * count,) int32 holds each texel blended towards a fog colour
    at ``light_levels`` brightness steps, packed as RGBA bytes in memory order, so a
    frame is one gather at ``light * count + texel`` viewed as uint8. ``opaque``
    (count,) bool says which texels are drawn (alpha above one half).
    """

    def __init__(self, device: torch.device, fog_colour=(0.0, 0.0, 0.0),
                 light_levels: int = 64, levels: int = 4):
        self.names = tuple(name for group in GROUPS.values() for name in group)
        self.first = {group: self.names.index(names[0]) for group, names in GROUPS.items()}
        self.levels, self.light_levels = levels, light_levels
        self.sizes = [SIZE >> level for level in range(levels)]
        chains = [_mip_chain(paint(name), levels) for name in self.names]
        flat = [np.stack([chain[level] for chain in chains]).reshape(-1, 4)
                for level in range(levels)]
        self.offsets = [int(x) for x in np.cumsum([0] + [len(block) for block in flat[:-1]])]
        texels = np.concatenate(flat)                                           # (N, 4)
        self.count = len(texels)
        light = np.linspace(0.0, 1.0, light_levels, dtype=np.float32)[:, None, None]
        rgb = texels[None, :, :3] * light + np.asarray(fog_colour, np.float32) * (1 - light)
        rgb = np.clip(np.round(rgb * 255), 0, 255).astype(np.int64)            # (L, N, 3)
        shifts = (0, 8, 16) if sys.byteorder == "little" else (24, 16, 8)
        packed = sum(rgb[..., c] << shift for c, shift in enumerate(shifts))
        self.lit = torch.from_numpy(packed.reshape(-1).astype(np.int32)).to(device)
        self.opaque = torch.from_numpy(texels[:, 3] > 0.5).to(device)
        self.level_size = torch.tensor(self.sizes, dtype=torch.int32, device=device)
        self.level_offset = torch.tensor(self.offsets, dtype=torch.int32, device=device)

    def level_for(self, texels_per_pixel: torch.Tensor) -> torch.Tensor:
        """The mip level (long) that keeps about one texel per pixel."""
        return torch.log2(texels_per_pixel.clamp_min(1.0)).floor().clamp_max(self.levels - 1).long()

    def light_index(self, light: torch.Tensor) -> torch.Tensor:
        """Brightness in [0, 1] -> int32 offset of its step in ``lit``."""
        step = (light.clamp(0, 1) * (self.light_levels - 1)).round().int()
        return step * self.count


@lru_cache(maxsize=8)
def shared_atlas(device: torch.device, fog_colour: tuple[float, float, float]) -> TextureAtlas:
    """One read-only atlas per device and fog colour, built on first use."""
    return TextureAtlas(device, fog_colour=fog_colour)
