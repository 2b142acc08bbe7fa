"""The action-control probe: a small network that reads the player's motion from frames.

Trained on real frames only (``neural-engine train probe``), it looks at two
consecutive frames and estimates how the player moved between them: the turn angle,
the step forward and the step sideways (in the heading of the first frame). Classes
for scoring, one per axis (``AXES``): turn left / none / right, move back / none /
forward and strafe left / none / right, each with a small dead zone. On generated
frames it tells whether the world answered the keys: its reading of a generated pair
is compared with the true motion under the same actions (taken from the simulator, so
walls that stop a commanded step are accounted for).

Applies to games whose simulator state has ``x``, ``y`` and ``angle``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neural_engine.errors import EngineError

SIZE = 64                      # frames are read at 64×64
SCALE = torch.tensor([0.25, 0.2, 0.2])      # typical |turn| (rad), |step| (tiles)
AXES = ("turn", "move", "strafe")           # the probe's outputs, in order
TURN_DEAD, MOVE_DEAD = 0.02, 0.02
DEAD_ZONES = torch.tensor([TURN_DEAD, MOVE_DEAD, MOVE_DEAD])
FORMAT = "neural-engine/motion-probe/1"


class MotionProbe(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(6, w, 4, 2, 1), nn.SiLU(),            # 32
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),        # 16
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.SiLU(),    # 8
            nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.SiLU(),    # 4
            nn.Flatten(), nn.Linear(4 * w * 16, 256), nn.SiLU(), nn.Linear(256, 3))
        self.width = width

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Two (B, H, W, 3) uint8 frames → (B, 3): turn (rad), forward, sideways (tiles)."""
        x = torch.cat([before, after], -1).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        x = F.interpolate(x, size=(SIZE, SIZE), mode="area")
        return self.net(x) * SCALE.to(x.device)


def motion_targets(states: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """True motion between consecutive states (..., T, S) → (..., T − 1, 3)."""
    try:
        x, y, a = (states[..., names.index(n)] for n in ("x", "y", "angle"))
    except ValueError:
        raise EngineError("the action-control probe needs x, y and angle in the game's "
                          "state") from None
    turn = torch.remainder(a[..., 1:] - a[..., :-1] + math.pi, 2 * math.pi) - math.pi
    dx, dy = x[..., 1:] - x[..., :-1], y[..., 1:] - y[..., :-1]
    c, s = a[..., :-1].cos(), a[..., :-1].sin()
    return torch.stack([turn, dx * c + dy * s, -dx * s + dy * c], -1)


def classes(motion: torch.Tensor) -> torch.Tensor:
    """(..., 3) motion → (..., 3) long classes in {-1, 0, 1}, one per axis of ``AXES``
    (turn: right is +1; move: forward is +1; strafe: right is +1)."""
    dead = DEAD_ZONES.to(motion.device)
    return torch.where(motion.abs() > dead, motion.sign(), 0).long()


@torch.no_grad()
def read_motion(probe: MotionProbe, frames: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The probe's reading of every consecutive pair of frames (B, T, H, W, 3) uint8 →
    (B, T − 1, 3) on the CPU."""
    b, t = frames.shape[:2]
    device = next(probe.parameters()).device
    before, after = frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1)
    read = [probe(x.to(device), y.to(device)).float().cpu()
            for x, y in zip(before.split(chunk), after.split(chunk))]
    return torch.cat(read).view(b, t - 1, 3) if read else torch.zeros(b, 0, 3)


def save_probe(path: Path, probe: MotionProbe, info: dict) -> Path:
    from neural_engine.model.weights import atomic_save

    atomic_save(probe.state_dict(), path, {"format": FORMAT, "width": str(probe.width),
                                           "info": json.dumps(info)})
    return path


def load_probe(path: Path, device: torch.device | str = "cpu") -> MotionProbe:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise EngineError(f"cannot read the motion probe ({exc})", where=str(path)) from None
    if meta.get("format") != FORMAT:
        raise EngineError("not a motion probe", where=str(path))
    probe = MotionProbe(int(meta["width"]))
    probe.load_state_dict(state)
    return probe.to(device).eval()
