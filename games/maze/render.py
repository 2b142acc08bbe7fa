"""The first-person view: textured walls, floor and ceiling, billboard sprites, fog.

For a batch of B players ``Renderer.render`` casts one ray per screen column (all
columns of all environments at once, see ``raycast``), then works per pixel:

* walls: a column of height ``focal / distance`` centred on the horizon, textured by
  the face position ``u`` and the height within the column, darker on north/south
  faces (the classic side shading);
* floor and ceiling: each pixel row below (above) the horizon sees the floor (ceiling)
  at a fixed distance, so its world point is ``pos + row_distance * ray``; the tile
  under that point picks the floor (ceiling) kind;
* sprites: every sprite is a one-tile billboard facing the camera; per column the
  nearest ``sprite_layers`` sprites in front of the wall are kept (a per-column depth
  test against the wall distance), and their opaque texels cover the background,
  nearest first;
* fog: brightness falls linearly with distance from ``fog_start`` to nothing at
  ``reach`` (the farthest a ray looks), towards ``fog_colour``.

Textures come with mip levels chosen from the on-screen size, so distant walls and
floor do not shimmer. The camera height is half a tile and the view never pitches, so
the ceiling row mirrored about the horizon sees the same world point as a floor row.

Per pixel the work is integer: every layer (wall, flat, sprites) yields an index into
the atlas's lit texel table (``light * count + texel``); masks pick one index per
pixel, and one gather makes the frame. Per-column quantities (span, mip level, texel
column, brightness) are folded into a base index and a slope before touching pixels.
This module knows nothing about movement, actions or how maps are made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from games.maze.raycast import cast
from games.maze.textures import SIZE, shared_atlas
from games.maze.world import World


@dataclass(frozen=True)
class Camera:
    """How the view is drawn."""

    fov_degrees: float = 66.0
    reach: float = 14.0            # tiles; rays stop and fog is total here
    fog_start: float = 1.5
    fog_power: float = 1.3         # > 1 keeps the middle distance brighter
    fog_colour: tuple[float, float, float] = (0.03, 0.03, 0.045)
    side_shade: float = 0.7        # brightness of north/south wall faces
    near: float = 0.3              # sprites closer than this are not drawn
    sprite_layers: int = 2         # overlapping sprites resolved per column


class Renderer:
    """Draws (B, H, W, 3) uint8 frames of a ``World`` from player poses."""

    def __init__(self, width: int, height: int, camera: Camera, device: torch.device):
        if height % 2:
            raise ValueError(f"the renderer needs an even height, got {height}")
        self.width, self.height, self.camera = width, height, camera
        self.atlas = shared_atlas(device, tuple(camera.fog_colour))
        self.tan_half = math.tan(math.radians(camera.fov_degrees) / 2)
        self.focal = width / 2 / self.tan_half
        cols = torch.arange(width, device=device, dtype=torch.float32) + 0.5        # (W,)
        self.cols = cols
        self.rows = torch.arange(height, device=device, dtype=torch.float32) + 0.5  # (H,)
        self.cam_x = (2 * cols / width - 1) * self.tan_half                         # (W,)
        self._flat_rows(device)

    def _flat_rows(self, device: torch.device) -> None:
        """Per floor row i (screen row H/2 + i, mirrored ceiling row H/2 - 1 - i), shaped
        (1, H/2, 1): distance, mip size, and the base indices of floor and ceiling."""
        atlas, half = self.atlas, self.height // 2
        dist = 0.5 * self.focal / (torch.arange(half, device=device, dtype=torch.float32) + 0.5)
        across = dist / self.focal                      # world step per pixel column
        along = 2 * dist ** 2 / self.focal              # world step per pixel row
        level = atlas.level_for(SIZE * (across * along).sqrt())
        size = atlas.level_size[level]
        light = atlas.light_index(self._light(dist))
        base = light + atlas.level_offset[level]

        def shaped(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(1, half, 1)

        self.flat_size = shaped(size)
        self.flat_scaled_dist = shaped(dist * size)
        self.flat_shift = shaped(torch.log2(size.float()).round().int())
        self.flat_mask = shaped(size - 1)
        self.flat_area = shaped(size * size)
        self.floor_base = shaped(base + atlas.first["floor"] * size * size)
        self.ceiling_base = shaped(base + atlas.first["ceiling"] * size * size)

    def _light(self, dist: torch.Tensor) -> torch.Tensor:
        c = self.camera
        return ((c.reach - dist) / (c.reach - c.fog_start)).clamp(0, 1) ** c.fog_power

    def _span(self, height: torch.Tensor, kind: torch.Tensor, u: torch.Tensor, drawn: torch.Tensor
              ) -> tuple[torch.Tensor, ...]:
        """Columns of ``height`` pixels centred on the horizon showing atlas kind ``kind``
        at texture column ``u``; all shaped (...). Returns (slope, offset, fsize, base,
        size): pixel row y (centre) shows texel row ``f = y * slope + offset`` where
        0 <= f < fsize, that is texel ``base + int(f) * size`` (int32). Columns not
        ``drawn`` get f = -1."""
        level = self.atlas.level_for(SIZE / height)
        size = self.atlas.level_size[level]
        fsize = size.float()
        slope = torch.where(drawn, fsize / height, 0.0)
        offset = torch.where(drawn, -(self.height / 2 - height / 2) * slope, -1.0)
        iu = torch.minimum((u * fsize).int(), size - 1).clamp_min(0)
        base = self.atlas.level_offset[level] + kind.int() * size * size + iu
        return slope, offset, fsize, base, size

    def _rows(self, slope: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Texel row coordinate f per pixel: (..., W) column terms -> (..., H, W)."""
        return torch.addcmul(offset.unsqueeze(-2), self.rows[:, None], slope.unsqueeze(-2))

    def render(self, world: World, pos: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """Frames (B, H, W, 3) uint8 seen from positions (B, 2) facing angles (B,)."""
        b, h, w, atlas = pos.shape[0], self.height, self.width, self.atlas
        forward = torch.stack([angle.cos(), angle.sin()], -1)                      # (B, 2)
        right = torch.stack([-angle.sin(), angle.cos()], -1)                       # (B, 2)
        rays = forward[:, None] + right[:, None] * self.cam_x[None, :, None]       # (B, W, 2)
        hits = cast(world, pos, rays, self.camera.reach, math.hypot(1, self.tan_half))

        dist = hits.dist.clamp_min(1e-4)                                           # (B, W)
        light = self._light(dist) * torch.where(hits.yside, self.camera.side_shade, 1.0)
        slope, offset, fsize, base, size = self._span(
            self.focal / dist, (hits.kind - 1).clamp_min(0) + atlas.first["wall"], hits.u,
            hits.kind > 0)
        f = self._rows(slope, offset)                                              # (B, H, W)
        is_wall = ((f >= 0) & (f < fsize[:, None])).int()
        wall = (base + atlas.light_index(light))[:, None] + f.int() * size[:, None]

        index = self._flats(world, pos, rays)                                      # (B, H, W)
        index = index + is_wall * (wall - index)
        index = self._sprites(world, pos, forward, right, hits.dist, index)
        texels = atlas.lit.index_select(0, index.reshape(-1))                      # (B*H*W,) int32
        return texels.view(torch.uint8).reshape(b, h, w, 4)[..., :3].contiguous()

    def _flats(self, world: World, pos: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
        """Lit texel indices (B, H, W) of floor (lower half) and ceiling (upper half)."""
        t = world.tiles
        x = torch.addcmul(pos[:, 0, None, None] * self.flat_size, self.flat_scaled_dist,
                          rays[:, None, :, 0]).int()                     # (B, H/2, W) texel x
        y = torch.addcmul(pos[:, 1, None, None] * self.flat_size, self.flat_scaled_dist,
                          rays[:, None, :, 1]).int()
        tile = ((y >> self.flat_shift) * t + (x >> self.flat_shift)).clamp_(0, t * t - 1)
        within = (y & self.flat_mask) * self.flat_size + (x & self.flat_mask)
        floor = world.lookup_index(world.floor, tile) * self.flat_area + self.floor_base + within
        ceiling = (world.lookup_index(world.ceiling, tile) * self.flat_area
                   + self.ceiling_base + within)
        return torch.cat([ceiling.flip(1), floor], 1)

    def _sprites(self, world: World, pos: torch.Tensor, forward: torch.Tensor,
                 right: torch.Tensor, zbuffer: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Cover lit texel indices ``index`` (B, H, W) with the visible sprites' texels."""
        w, atlas = self.width, self.atlas
        rel = world.sprite_xy - pos[:, None]                                       # (B, S, 2)
        depth = (rel * forward[:, None]).sum(-1)                                   # (B, S)
        lateral = (rel * right[:, None]).sum(-1)
        safe = depth.clamp_min(1e-3)
        size = self.focal / safe                                                   # (B, S) pixels
        left = w / 2 + self.focal * lateral / safe - size / 2
        u = (self.cols - left[..., None]) / size[..., None]                        # (B, S, W)
        seen = (world.present & (depth > self.camera.near))[..., None]
        seen = seen & (u >= 0) & (u < 1) & (depth[..., None] < zbuffer[:, None])
        key = torch.where(seen, depth[..., None], math.inf)                        # (B, S, W)
        layers = min(self.camera.sprite_layers, key.shape[1])
        near, slot = key.topk(layers, dim=1, largest=False)                        # (B, L, W)

        def pick(values: torch.Tensor) -> torch.Tensor:  # (B, S) -> (B, L, W)
            return values[..., None].expand(-1, -1, w).gather(1, slot)

        kind = pick(world.sprite_kind) + atlas.first["sprite"]
        slope, offset, fsize, base, size = self._span(
            pick(size), kind, u.gather(1, slot).clamp(0, 1), near.isfinite())
        light = atlas.light_index(self._light(near))                               # (B, L, W)
        f = self._rows(slope, offset)                                              # (B, L, H, W)
        inside = (f >= 0) & (f < fsize[:, :, None])
        texel = base[:, :, None] + f.clamp_min(0).int() * size[:, :, None]
        texel = texel.clamp_max(atlas.count - 1)
        opaque = atlas.opaque.index_select(0, texel.reshape(-1)).reshape(texel.shape)
        cover = (inside & opaque).int()
        lit = texel + light[:, :, None]
        for layer in reversed(range(layers)):
            index = index + cover[:, layer] * (lit[:, layer] - index)
        return index
