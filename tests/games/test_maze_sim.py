"""The maze simulator: determinism, collision, pickups and what the frames show."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from games.maze import Simulator
from games.maze.mapgen import SPRITE_KINDS
from neural_engine.errors import EngineError
from neural_engine.games import load_spec

SPEC = load_spec("maze")
BUTTONS = SPEC.actions.buttons


def press(batch: int, *names: str, dx: float = 0.0) -> torch.Tensor:
    out = torch.zeros(batch, SPEC.actions.dim)
    for name in names:
        out[:, BUTTONS.index(name)] = 1.0
    out[:, len(BUTTONS) + SPEC.actions.mouse_axes.index("dx")] = dx
    return out


def random_actions(steps: int, batch: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    keys = (torch.rand(steps, batch, len(BUTTONS), generator=gen) < 0.3).float()
    mouse = torch.rand(steps, batch, 1, generator=gen) * 2 - 1
    return torch.cat([keys, mouse], -1)                                         # (N, B, A)


@pytest.fixture(scope="module")
def sim():
    return Simulator(SPEC, batch=2)


def test_frames_shape_dtype_and_state(sim):
    frames = sim.reset([0, 1])
    assert frames.shape == (2, SPEC.height, SPEC.width, 3) and frames.dtype == torch.uint8
    state = sim.state()
    assert state.shape == (2, len(sim.state_names)) and state.dtype == torch.float32
    assert {"x", "y", "angle", "score"} <= set(sim.state_names)
    visited = sim.visited_fraction()
    assert visited.shape == (2,) and (visited > 0).all() and (visited < 0.05).all()
    frames = sim.step(press(2, "forward"))
    assert frames.shape == (2, SPEC.height, SPEC.width, 3)


def test_resolution_comes_from_the_spec():
    spec = dataclasses.replace(SPEC, width=64, height=48)
    small = Simulator(spec, batch=1)
    assert small.reset([3]).shape == (1, 48, 64, 3)
    assert small.step(press(1, "turn_left")).shape == (1, 48, 64, 3)


def test_same_seeds_and_actions_give_identical_frames():
    actions = random_actions(40, 2, seed=5)
    runs = []
    for _ in range(2):
        s = Simulator(SPEC, batch=2)
        frames = [s.reset([11, 12])] + [s.step(a) for a in actions]
        runs.append((torch.stack(frames), s.state()))
    assert torch.equal(runs[0][0], runs[1][0])
    assert torch.equal(runs[0][1], runs[1][1])


def test_different_seeds_give_different_maps_and_frames(sim):
    a = sim.reset([21, 21])
    assert torch.equal(a[0], a[1])
    walls_a = sim.world.walls.clone()
    b = sim.reset([21, 22])
    assert torch.equal(sim.world.walls[0], walls_a[0])
    assert not torch.equal(sim.world.walls[1], walls_a[1])
    assert not torch.equal(b[0], b[1])


def test_frames_are_rich_and_turning_changes_them(sim):
    frames = sim.reset([4, 5])
    for f in frames:
        colours = torch.unique(f.reshape(-1, 3), dim=0)
        assert len(colours) > 40
        assert f.float().std() > 15
        assert not torch.equal(f[: SPEC.height // 2], f[SPEC.height // 2:].flip(0))
    turned = sim.step(press(2, "turn_left"))
    changed = (turned != frames).any(-1).float().mean((1, 2))
    assert (changed > 0.2).all()
    mouse = sim.step(press(2, dx=1.0))
    assert ((mouse != turned).any(-1).float().mean((1, 2)) > 0.2).all()


def _best_shift(before: torch.Tensor, after: torch.Tensor, span: int) -> list[int]:
    """Per frame, the k for which after[:, x] best matches before[:, x + k]."""
    w = before.shape[2]
    errors = torch.stack([(after[:, :, span:w - span].float()
                           - before[:, :, span + k:w - span + k].float()).abs().mean((1, 2, 3))
                          for k in range(-span, span + 1)])                    # (2 span + 1, B)
    return (errors.argmin(0) - span).tolist()


def test_turning_right_pans_the_view_left_by_the_yaw(sim):
    before = sim.reset([4, 5])
    after = sim.step(press(2, dx=0.1))  # 0.025 rad: about 2.5 pixels at 128 wide
    assert all(k in (2, 3) for k in _best_shift(before, after, 6))
    before = after
    after = sim.step(press(2, "turn_left"))  # 135 deg/s at 20 ticks/s: about 11.6 pixels
    assert all(k in (-12, -11) for k in _best_shift(before, after, 16))


def test_moves_follow_the_heading(sim):
    sim.reset([60, 61])
    walls = _wall(sim, 0)
    y, x = next((y, x) for y, x in zip(*np.nonzero(~walls))
                if not walls[y - 1, x] and not walls[y, x + 1])
    sim.reset([60, 60], poses=torch.tensor([[x + 0.5, y + 0.5, math.pi]] * 2))  # facing west
    step = sim.physics.walk_speed / SPEC.tick_rate
    start = sim.state()[0, :2].clone()
    sim.step(press(2, "strafe_right"))  # the right of west is north: y decreases
    assert torch.allclose(sim.state()[0, :2] - start, torch.tensor([0.0, -step]), atol=1e-5)
    start = sim.state()[0, :2].clone()
    sim.step(press(2, "back", "run"))  # backwards from west is east
    run = step * sim.physics.run_factor
    assert torch.allclose(sim.state()[0, :2] - start, torch.tensor([run, 0.0]), atol=1e-5)


def _wall(sim: Simulator, b: int) -> np.ndarray:
    return sim.world.walls[b].numpy() > 0


def _body_in_wall(walls: np.ndarray, x: float, y: float, r: float) -> bool:
    for px in (x - r, x + r):
        for py in (y - r, y + r):
            if walls[int(math.floor(py)), int(math.floor(px))]:
                return True
    return False


def test_running_into_walls_never_enters_them():
    s = Simulator(SPEC, batch=4)
    s.reset([30, 31, 32, 33])
    walls = [_wall(s, b) for b in range(4)]
    r = s.physics.radius
    max_step = s.physics.walk_speed * s.physics.run_factor / SPEC.tick_rate
    gen = torch.Generator().manual_seed(1)
    prev = s.state()[:, :2].clone()
    blocked = 0.0
    for tick in range(240):
        names = ["forward", "run"]
        if tick % 40 < 3:  # a short turn now and then, so walls are hit at many angles
            names.append("turn_right")
        if tick % 60 > 45:
            names.append("strafe_left")
        s.step(press(4, *names, dx=float(torch.rand(1, generator=gen)) * 0.4 - 0.2))
        state = s.state()
        pos = state[:, :2]
        assert ((pos - prev).norm(dim=-1) <= max_step * 1.25).all()  # no teleports
        for b in range(4):
            assert not _body_in_wall(walls[b], *pos[b].tolist(), r)
        blocked += state[:, s.state_names.index("blocked")].sum().item()
        prev = pos.clone()
        rel = pos[:, None] - s.world.sprite_xy                                   # (B, S, 2)
        reach = s.world.sprite_radius + r
        assert ((rel.norm(dim=-1) >= reach - 1e-4) | (s.world.sprite_radius == 0)).all()
    assert blocked > 40  # the test did drive into walls


def _open_east_wall_pose(walls: np.ndarray):
    for y, x in zip(*np.nonzero(~walls)):
        if walls[y, x + 1] and not walls[y + 1, x]:
            return x, y
    raise AssertionError("no suitable tile")


def test_sliding_along_a_wall(sim):
    sim.reset([40, 41])
    walls = _wall(sim, 0)
    x, y = _open_east_wall_pose(walls)
    poses = torch.tensor([[x + 0.5, y + 0.3, math.pi / 4]] * 2)
    sim.reset([40, 40], poses=poses)
    for _ in range(10):
        sim.step(press(2, "forward"))
    px, py = sim.state()[0, :2].tolist()
    assert px <= x + 1 - sim.physics.radius + 1e-6
    assert py - (y + 0.3) > 0.4  # slid south along the wall
    assert sim.state()[0, sim.state_names.index("blocked")] == 1


def test_pose_inside_a_wall_is_refused(sim):
    with pytest.raises(EngineError):
        sim.reset([0, 0], poses=torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]))


def _approach(sim: Simulator, b: int, slot: int, distance: float):
    """A pose ``distance`` from sprite ``slot`` facing it across free tiles, or None."""
    walls = _wall(sim, b)
    sx, sy = sim.world.sprite_xy[b, slot].tolist()
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        if not walls[int(sy) + dy, int(sx) + dx]:
            return [sx + dx * distance, sy + dy * distance, math.atan2(-dy, -dx)]
    return None


def test_every_sprite_kind_is_drawn():
    s = Simulator(SPEC, batch=1)
    seen_kinds = set()
    for seed in range(3):
        s.reset([seed])
        kinds = s.world.sprite_kind[0].tolist()
        present = s.world.present[0].tolist()
        for slot, kind in enumerate(kinds):
            if kind in seen_kinds or not present[slot]:
                continue
            pose = _approach(s, 0, slot, 0.9)
            if pose is None:
                continue
            with_sprites = s.reset([seed], poses=torch.tensor([pose]))
            s.world.present[:] = False
            without = s.render()
            differ = (with_sprites != without).any(-1).sum().item()
            assert differ > 100, SPRITE_KINDS[kind].name
            seen_kinds.add(kind)
    assert seen_kinds == set(range(len(SPRITE_KINDS)))


def test_walking_over_a_treasure_scores_once():
    s = Simulator(SPEC, batch=1)
    s.reset([50])
    treasure = [i for i, k in enumerate(s.world.sprite_kind[0].tolist())
                if SPRITE_KINDS[k].pickup and s.world.present[0, i]]
    slot = next(i for i in treasure if _approach(s, 0, i, 1.0) is not None)
    s.reset([50], poses=torch.tensor([_approach(s, 0, slot, 1.0)]))
    assert s.state()[0, s.state_names.index("score")] == 0
    for _ in range(8):
        s.step(press(1, "forward"))
    assert s.state()[0, s.state_names.index("score")] == 1
    assert not s.world.present[0, slot]
    for _ in range(8):
        s.step(press(1, "back"))
    assert s.state()[0, s.state_names.index("score")] == 1


def test_probe_measures_wall_distance(sim):
    sim.reset([40, 41])
    x, y = _open_east_wall_pose(_wall(sim, 0))
    sim.reset([40, 40], poses=torch.tensor([[x + 0.5, y + 0.5, 0.0]] * 2))
    d = sim.probe(torch.tensor([0.0, math.pi / 4]))
    assert d.shape == (2, 2)
    assert abs(d[0, 0].item() - 0.5) < 1e-4
    assert abs(d[0, 1].item() - 0.5 * math.sqrt(2)) < 1e-4 or d[0, 1] > 0.5 * math.sqrt(2)


def test_visited_fraction_grows_when_moving(sim):
    sim.reset([60, 61])
    start = sim.visited_fraction()
    for tick in range(80):
        sim.step(press(2, "forward", "run", dx=0.3 if tick % 20 < 4 else 0.0))
    after = sim.visited_fraction()
    assert (after > start).all() and (after <= 1).all()


def test_the_true_motion_turns_first_then_moves_along_the_new_heading():
    """Running while turning is no strafe: the simulator turns, then steps along the new
    heading, and the sideways step is measured in that heading (games/maze/motion.py)."""
    from games.maze.motion import motion

    turn, step, a0 = 0.12, 0.216, 0.7
    a1 = a0 + turn
    run_turning = torch.tensor([[0.0, 0.0, a0], [step * math.cos(a1), step * math.sin(a1), a1]])
    t, move, strafe = motion(run_turning)[0].tolist()
    assert t == pytest.approx(turn, abs=1e-5) and move == pytest.approx(step, abs=1e-5)
    assert abs(strafe) < 1e-6          # in the first state's heading it would be 0.026
    # a strafe to the right (angles grow towards +y) with no turn
    right = torch.tensor([[1.0, 2.0, a0], [1.0 - 0.1 * math.sin(a0), 2.0 + 0.1 * math.cos(a0), a0]])
    t, move, strafe = motion(right)[0].tolist()
    assert abs(t) < 1e-6 and abs(move) < 1e-6 and strafe == pytest.approx(0.1, abs=1e-5)
