"""The view: a camera that follows the hero over the tile map, sprites on top, a HUD.

For B environments at once, ``Renderer.render`` works in three layers:

* the map: the camera's top-left pixel is the hero's centre minus half the screen, so
  the view scrolls with the hero pixel for pixel. Each screen pixel looks up its map
  tile, the tile's image (``World.vis``) and the texel inside it: one gather over all
  pixels. Torches animate with the tick. Pixels under a character's shadow (an
  ellipse at its feet; lower under a flying bat) read the darkened copy of the atlas;
* sprites: the hero, the sword while it swings, and the ``sprite_slots`` objects
  nearest the hero that are on screen. Each sprite's opaque texels (and each shadow's
  pixels, at the lowest key) are scattered into a canvas with a key of (depth, texel);
  a scatter-max keeps the front one per pixel, which is order-independent and so
  deterministic on every device. Depth is the feet's screen row, so what stands lower
  is drawn in front;
* the HUD on top: hearts, keys and coins.

Colours travel packed as int32 ``r | g << 8 | b << 16`` and are unpacked once; index
arithmetic per pixel is int32. The
renderer reads the state (``World``, ``Hero``) and the tick; it knows nothing about
the rules that change them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from games.dungeon import levelgen as lv
from games.dungeon.sprites import catalogue as sprite_catalogue
from games.dungeon.sprites import sprite_images
from games.dungeon.tiles import FRAMES, tile_images
from games.dungeon.world import Hero, World

TEXELS = lv.TILE * lv.TILE
SHADOW = 0.6                                     # brightness under a shadow
FAR = (1 << 16) - 1                              # the HUD's depth: in front of everything
SPRITE_MASK = (1 << 14) - 1                      # a canvas key's sprite-texel bits


def _pack(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) floats in [0, 1] → (...,) int32 r | g << 8 | b << 16."""
    c = np.clip(np.round(rgb * 255), 0, 255).astype(np.int64)
    return (c[..., 0] | c[..., 1] << 8 | c[..., 2] << 16).astype(np.int32)


@dataclass(frozen=True)
class Atlas:
    """tiles: (2 * N * FRAMES * 256,) int32, lit then shadowed; sprites: (M * 256,) int32
    colours and opaque: (M * 256,) bool; ``sprite`` maps names to sprite numbers."""

    tiles: torch.Tensor
    shadow_offset: int
    sprites: torch.Tensor
    opaque: torch.Tensor
    sprite: dict[str, int]


@lru_cache(maxsize=None)
def shared_atlas(device: torch.device) -> Atlas:
    images = tile_images()                                          # (N, F, 16, 16, 3)
    lit = _pack(images).reshape(-1)
    dark = _pack(images * SHADOW).reshape(-1)
    sprites = sprite_images()                                       # (M, 16, 16, 4)
    assert sprites.shape[0] * TEXELS <= SPRITE_MASK + 1, "sprite texels overflow the key"
    return Atlas(tiles=torch.from_numpy(np.concatenate([lit, dark])).to(device),
                 shadow_offset=len(lit),
                 sprites=torch.from_numpy(_pack(sprites[..., :3]).reshape(-1)).to(device),
                 opaque=torch.from_numpy(sprites[..., 3].reshape(-1) > 0.5).to(device),
                 sprite=sprite_catalogue())


def _ellipse(rx: float, ry: float) -> torch.Tensor:
    """Pixel offsets (E, 2) inside an ellipse of radii rx, ry around (0, 0)."""
    ys, xs = np.mgrid[-int(ry):int(ry) + 1, -int(rx):int(rx) + 1]
    inside = (xs / rx) ** 2 + (ys / ry) ** 2 <= 1.0
    return torch.from_numpy(np.stack([xs[inside], ys[inside]], -1).astype(np.int64))


class Renderer:
    """Draws (B, H, W, 3) uint8 frames of a ``World`` and its ``Hero``es."""

    def __init__(self, width: int, height: int, device: torch.device, sprite_slots: int = 16):
        self.width, self.height, self.slots = width, height, sprite_slots
        self.device = device
        self.atlas = shared_atlas(device)
        self.rows = torch.arange(height, device=device)
        self.cols = torch.arange(width, device=device)
        within = torch.arange(TEXELS, device=device)
        self.texel = within                                          # (256,)
        self.texel_xy = torch.stack([within % lv.TILE, within // lv.TILE], -1)  # (256, 2)
        self.shadow = _ellipse(5.5, 2.5).to(device)                 # (E, 2)
        names = self.atlas.sprite
        self.hero_first = names["hero/down/0"]
        self.sword_first = names["sword/down"]
        self.kind_sprite = self._kind_sprites(names)
        self.hud_heart, self.hud_empty = names["hud/heart"], names["hud/heart/empty"]
        self.hud_key, self.hud_coin = names["hud/key"], names["hud/coin"]
        self.hud_digit = names["hud/digit/0"]
        self.flash_shift = self._flash_shifts(names)
        # constants of the layout, made once: the hot path copies nothing to the device
        def const(values) -> torch.Tensor:
            return torch.tensor(values, device=device)

        self.half_screen = const([width // 2, height // 2])
        self.sword_offset = const([[0, 12], [0, -12], [-12, 0], [12, 0]])   # by facing
        self.hero_corner = const([8, 10])
        self.hero_shadow = const([0, 5])
        self.reach = const([width / 2 + 12, height / 2 + 16])
        xs = [2 + 8 * i for i in range(5)] + [width - 42, width - 33, width - 24, width - 15,
                                               width - 10]
        self.hud_corner = const([[[x, 2] for x in xs]])                      # (1, 10, 2)

    def _kind_sprites(self, names: dict[str, int]) -> torch.Tensor:
        """(kinds, 4) sprite numbers per kind and animation frame; -1: not drawn."""
        frames = {lv.COIN: [names[f"coin/{i}"] for i in range(4)],
                  lv.HEART: [names["heart"]] * 4, lv.KEY: [names["key"]] * 4,
                  lv.CHEST: [names["chest"]] * 4, lv.CHEST_OPEN: [names["chest/open"]] * 4,
                  lv.POT: [names["pot"]] * 4,
                  lv.SLIME: [names["slime/0"], names["slime/1"]] * 2,
                  lv.BAT: [names["bat/0"], names["bat/1"]] * 2,
                  lv.SKELETON: [names[f"skeleton/{i}"] for i in range(4)],
                  lv.PUFF: [names[f"puff/{i}"] for i in (0, 1, 2, 2)]}
        table = torch.full((len(lv.KIND_NAMES), 4), -1, dtype=torch.long)
        for kind, ids in frames.items():
            table[kind] = torch.tensor(ids)
        return table.to(self.device)

    # ----------------------------------------------------------------- frames
    def render(self, world: World, hero: Hero, tick: torch.Tensor) -> torch.Tensor:
        """Frames (B, H, W, 3) uint8; ``tick`` (B,) long drives the animations."""
        b, h, w = hero.pos.shape[0], self.height, self.width
        camera = hero.pos.long() - self.half_screen                                 # (B, 2)
        ids, corner, depth, shadows = self._sprites(world, hero, tick, camera)
        top = self._stamp(ids, corner, depth, shadows)                             # (B, H*W)
        texel = self._map(world, camera, tick) + (top == 0).int() * self.atlas.shadow_offset
        colour = self.atlas.tiles.index_select(0, texel.reshape(-1)).view(b, h * w)
        sprite = self.atlas.sprites.index_select(0, (top.clamp_min(0) & SPRITE_MASK).reshape(-1))
        colour = torch.where(top > 0, sprite.view(b, h * w), colour)
        return colour.view(torch.uint8).reshape(b, h, w, 4)[..., :3].contiguous()

    def _map(self, world: World, camera: torch.Tensor, tick: torch.Tensor) -> torch.Tensor:
        """Atlas texel numbers (B, H*W) int32 of the tile map under the camera."""
        t, b = world.size, camera.shape[0]
        py = camera[:, 1, None] + self.rows                                        # (B, H)
        px = camera[:, 0, None] + self.cols                                        # (B, W)
        tile = ((py >> 4).clamp(0, t - 1)[:, :, None] * t
                + (px >> 4).clamp(0, t - 1)[:, None, :]).view(b, -1)               # (B, H*W)
        vis = world.vis.view(b, -1).gather(1, tile).int()                          # (B, H*W)
        frame = ((tick // 4) % FRAMES).int()[:, None] * TEXELS
        inner = ((py & 15).int()[:, :, None] * lv.TILE + (px & 15).int()[:, None, :]).view(b, -1)
        return vis * (FRAMES * TEXELS) + (inner + frame)

    def _stamp(self, ids: torch.Tensor, corner: torch.Tensor, depth: torch.Tensor,
               shadows: torch.Tensor) -> torch.Tensor:
        """What covers each pixel (B, H*W) int32: -1 nothing, 0 a shadow, else the front
        sprite's key ``depth << 14 | sprite texel``. Sprites ``ids`` (B, K) (-1: none)
        have top-left screen pixels ``corner`` (B, K, 2) and depths (B, K) >= 1, shadows
        centres (B, J, 2); a greater depth is nearer the viewer."""
        h, w = self.height, self.width
        b = ids.shape[0]
        texel = ids.clamp_min(0)[..., None] * TEXELS + self.texel                 # (B, K, 256)
        x = corner[..., 0, None] + self.texel_xy[:, 0]
        y = corner[..., 1, None] + self.texel_xy[:, 1]
        shown = (ids >= 0)[..., None] & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        shown &= self.atlas.opaque.take(texel)
        key = torch.where(shown, (depth[..., None] << 14) | texel, -1)
        index = torch.where(shown, y * w + x, h * w)
        points = shadows[:, :, None] + self.shadow                                 # (B, J, E, 2)
        sx, sy = points[..., 0], points[..., 1]
        inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
        shade = torch.where(inside, sy * w + sx, h * w)
        index = torch.cat([index.view(b, -1), shade.view(b, -1)], 1)
        key = torch.cat([key.view(b, -1), torch.zeros_like(sx).view(b, -1)], 1).int()
        top = torch.full((b, h * w + 1), -1, dtype=torch.int32, device=self.device)
        top.scatter_reduce_(1, index, key, "amax")
        return top[:, :h * w]

    # ----------------------------------------------------------------- sprites
    def _sprites(self, world: World, hero: Hero, tick: torch.Tensor, camera: torch.Tensor
                 ) -> tuple[torch.Tensor, ...]:
        """Everything drawn over the map: sprite ids (B, K), corners (B, K, 2), depths
        (B, K) and shadow centres (B, J, 2), in screen pixels."""
        near = self._nearest(world, hero)                                          # (B, N)
        kind = world.kind.gather(1, near)
        pos = world.pos.gather(1, near[..., None].expand(-1, -1, 2)).long()        # (B, N, 2)
        frame = self._frames(world, near, kind, tick)
        flashing = world.flash.gather(1, near) > 0
        ids = self.kind_sprite[kind, frame]
        flash_ids = ids + self.flash_shift[kind]
        ids = torch.where(flashing & (tick[:, None] % 4 < 2), flash_ids, ids)
        lift = torch.where((kind >= lv.SLIME) & (kind <= lv.SKELETON), 10, 8)
        lift = torch.where(kind == lv.BAT, 14, lift)
        screen = pos - camera[:, None]                                             # (B, N, 2)
        corner = screen - torch.stack([torch.full_like(lift, 8), lift], -1)
        depth = ((screen[..., 1] + 64).clamp(0, 400) * 64 + 1
                 + torch.arange(near.shape[1], device=self.device))

        hero_screen = hero.pos.long() - camera                                     # (B, 2)
        stride = torch.where(hero.walk > 0, 1 + (hero.walk // 4) % 2, 0)
        stride = torch.where(hero.swing > 0, 1, stride)
        hero_id = self.hero_first + hero.facing * 3 + stride
        hidden = (hero.invuln > 0) & (tick % 4 >= 2)
        hero_id = torch.where(hidden, -1, hero_id)
        hero_depth = (hero_screen[:, 1] + 64).clamp(0, 400) * 64 + 63
        sword_screen = hero_screen + self.sword_offset[hero.facing]
        sword_id = torch.where(hero.swing > 0, self.sword_first + hero.facing, -1)
        sword_depth = torch.where(hero.facing == 1, hero_depth - 1, hero_depth + 1)

        hud_ids, hud_corner = self._hud(hero)
        ids = torch.cat([ids, hero_id[:, None], sword_id[:, None], hud_ids], 1)
        corner = torch.cat([corner, (hero_screen - self.hero_corner)[:, None],
                            (sword_screen - 8)[:, None], hud_corner], 1)
        top = torch.full_like(hud_ids, FAR)
        depth = torch.cat([depth, hero_depth[:, None], sword_depth[:, None], top], 1)

        casts = (kind >= lv.SLIME) & (kind <= lv.SKELETON) | (kind == lv.COIN) | (kind == lv.KEY)
        drop = torch.where(kind == lv.BAT, 8, 5)
        shadow = screen + torch.stack([torch.zeros_like(drop), drop], -1)
        shadow = torch.where(casts[..., None], shadow, -100)
        hero_shadow = hero_screen + self.hero_shadow
        shadows = torch.cat([shadow, hero_shadow[:, None]], 1)
        return ids, corner, depth, shadows

    def _nearest(self, world: World, hero: Hero) -> torch.Tensor:
        """Slots (B, N) of the objects nearest the hero that may be on screen."""
        rel = (world.pos - hero.pos[:, None]).abs()                               # (B, S, 2)
        seen = (world.kind != lv.NONE) & (rel < self.reach).all(-1)
        distance = torch.where(seen, rel.sum(-1), float("inf"))
        n = min(self.slots, distance.shape[1])
        return distance.topk(n, dim=1, largest=False).indices

    def _frames(self, world: World, slots: torch.Tensor, kind: torch.Tensor,
                tick: torch.Tensor) -> torch.Tensor:
        """Animation frame 0-3 of each drawn object (B, N)."""
        t = tick[:, None] + slots * 5
        timer = world.timer.gather(1, slots)
        vel = world.vel.gather(1, slots[..., None].expand(-1, -1, 2))
        moving = vel.abs().sum(-1) > 0
        frame = (t // 3) % 4                                                     # coins spin
        frame = torch.where(kind == lv.SLIME, moving.long(), frame)
        frame = torch.where(kind == lv.BAT, (t // 3) % 2, frame)
        walk = (t // 6) % 2 + 2 * (vel[..., 0] < 0)
        frame = torch.where(kind == lv.SKELETON, walk, frame)
        frame = torch.where(kind == lv.PUFF, (timer // 3).clamp(0, 3), frame)
        return frame

    def _flash_shifts(self, names: dict[str, int]) -> torch.Tensor:
        """(kinds,) how far each kind's flash sprites sit after its plain ones (0: none)."""
        shift = torch.zeros(len(lv.KIND_NAMES), dtype=torch.long)
        for k, name in ((lv.SLIME, "slime/0"), (lv.BAT, "bat/0"), (lv.SKELETON, "skeleton/0"),
                        (lv.POT, "pot")):
            shift[k] = names[f"flash/{name}"] - names[name]
        return shift.to(self.device)

    def _hud(self, hero: Hero) -> tuple[torch.Tensor, torch.Tensor]:
        """HUD sprite ids (B, 10) and corners (B, 10, 2): five hearts, a key and its
        count, a coin and two digits of the score (capped at 99)."""
        b, dev = hero.pos.shape[0], self.device
        hearts = torch.arange(5, device=dev)
        heart_ids = torch.where(hearts < hero.health[:, None], self.hud_heart, self.hud_empty)
        keys = hero.keys.long().clamp(0, 9)
        score = hero.score.long().clamp(0, 99)
        ids = torch.cat([heart_ids, torch.stack([
            torch.full_like(keys, self.hud_key), self.hud_digit + keys,
            torch.full_like(keys, self.hud_coin), self.hud_digit + score // 10,
            self.hud_digit + score % 10], 1)], 1)
        return ids, self.hud_corner.expand(b, -1, -1)
