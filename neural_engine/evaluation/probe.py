"""The action-control probe: a small network that reads the player's motion from frames.

Trained on real frames only (``neural-engine train probe``), it looks at two
consecutive frames and estimates each motion target the game's ``[control]`` table
names (``neural_engine.control``): for the maze the turn angle, the step forward and the
step sideways. Each reading is reduced to a class (below, within or above the target's
dead zone) by ``Control.classes``. On generated frames it tells whether the world
answered the keys: its reading of a generated pair is compared with the true motion of
the same actions (the game's ``motion`` hook on the simulator's states, so walls that
stop a commanded step are accounted for).

The probe divides its targets by their typical sizes (the table's ``scale``), which
its file stores; a file without them (the maze's first probe) takes the game's.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neural_engine.errors import EngineError

SIZE = 64                      # frames are read at 64×64
FORMAT = "neural-engine/motion-probe/1"


class MotionProbe(nn.Module):
    """Two frames → one estimate per motion target, in the targets' own units."""

    def __init__(self, scales: tuple[float, ...], width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(6, w, 4, 2, 1), nn.SiLU(),            # 32
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),        # 16
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.SiLU(),    # 8
            nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.SiLU(),    # 4
            nn.Flatten(), nn.Linear(4 * w * 16, 256), nn.SiLU(), nn.Linear(256, len(scales)))
        self.width, self.scales = width, tuple(float(v) for v in scales)
        self.register_buffer("scale", torch.tensor(self.scales), persistent=False)

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Two (B, H, W, 3) uint8 frames → (B, M) motion targets (the maze: turn in
        radians, forward and sideways steps in tiles)."""
        x = torch.cat([before, after], -1).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        x = F.interpolate(x, size=(SIZE, SIZE), mode="area")
        return self.net(x) * self.scale


@torch.no_grad()
def read_motion(probe: MotionProbe, frames: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The probe's reading of every consecutive pair of frames (B, T, H, W, 3) uint8 →
    (B, T − 1, M) on the CPU."""
    b, t = frames.shape[:2]
    device = next(probe.parameters()).device
    before, after = frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1)
    read = [probe(x.to(device), y.to(device)).float().cpu()
            for x, y in zip(before.split(chunk), after.split(chunk))]
    m = len(probe.scales)
    return torch.cat(read).view(b, t - 1, m) if read else torch.zeros(b, 0, m)


def save_probe(path: Path, probe: MotionProbe, info: dict) -> Path:
    from neural_engine.model.weights import atomic_save

    atomic_save(probe.state_dict(), path, {"format": FORMAT, "width": str(probe.width),
                                           "scales": json.dumps(probe.scales),
                                           "info": json.dumps(info)})
    return path


def load_probe(path: Path, device: torch.device | str = "cpu",
               scales: tuple[float, ...] | None = None) -> MotionProbe:
    """A probe file; ``scales``: the game's, for a file that does not store its own (and
    its targets must agree in number with them)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise EngineError(f"cannot read the motion probe ({exc})", where=str(path)) from None
    if meta.get("format") != FORMAT:
        raise EngineError("not a motion probe", where=str(path))
    try:
        stored = tuple(json.loads(meta["scales"])) if "scales" in meta else None
        width = int(meta["width"])
    except (KeyError, ValueError, TypeError):
        raise EngineError("a motion probe with a malformed header", where=str(path)) from None
    if stored is not None and scales is not None and len(stored) != len(scales):
        raise EngineError(f"the probe reads {len(stored)} motion targets, the game has "
                          f"{len(scales)}", where=str(path))
    if stored is None and scales is None:
        raise EngineError("the probe file does not say its motion scales", where=str(path))
    probe = MotionProbe(stored or scales, width)
    try:
        probe.load_state_dict(state)
    except RuntimeError:
        raise EngineError("the probe's tensors do not fit its header", where=str(path)) from None
    return probe.to(device).eval()
