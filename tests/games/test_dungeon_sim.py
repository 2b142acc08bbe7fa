"""The dungeon simulator's rules: the view scrolls with the hero, walls and shut doors
stop it, use opens doors (locked ones with a key) and chests, the sword beats creatures
and breaks pots, creatures hurt, pickups count, and a scripted case replays exactly.

Level 19 (``games/dungeon/packs``) is the stage: its start room has a shut door three
tiles west of the start, a locked door at tiles (8, 20-21), a chest at (4, 4) and a
pot at (9, 4)."""

import math
import zlib

import pytest
import torch

from games.dungeon import levelgen as lv
from neural_engine.games import load_game

GAME = load_game("dungeon")
SPEC = GAME.spec
BUTTONS = SPEC.actions.buttons


def press(*names: str) -> torch.Tensor:
    out = torch.zeros(1, SPEC.actions.dim)
    for name in names:
        out[0, BUTTONS.index(name)] = 1.0
    return out


def start(pose=None, seed: int = 19):
    sim = GAME.simulator(batch=1)
    sim.reset([seed], None if pose is None else torch.tensor([pose]))
    return sim


def hold(sim, ticks: int, *names: str):
    for _ in range(ticks):
        frame = sim.step(press(*names))
    return frame


def place(sim, kind: int, offset: tuple[int, int], slot: int = 0, **values) -> int:
    """Put an object of ``kind`` at the hero's position + offset (pixels) in ``slot``."""
    w = sim.world
    w.kind[0, slot] = kind
    w.pos[0, slot] = sim.hero.pos[0] + torch.tensor(offset, dtype=torch.float32)
    w.hp[0, slot] = sim.kinds["hp"][kind]
    w.vel[0, slot] = 0
    for name, value in values.items():
        getattr(w, name)[0, slot] = value
    return slot


def best_shift(before: torch.Tensor, after: torch.Tensor, span: int = 5) -> tuple[int, int]:
    """The (dx, dy) for which ``after`` at (x, y) best matches ``before`` at (x+dx, y+dy),
    over a band of rows clear of the HUD and the hero."""
    rows, cols = slice(14, 48), slice(span, 128 - span)
    best, out = math.inf, (0, 0)
    for dy in range(-span, span + 1):
        for dx in range(-span, span + 1):
            a = after[rows, cols].float()
            b = before[14 + dy:48 + dy, span + dx:128 - span + dx].float()
            err = (a - b).abs().mean().item()
            if err < best:
                best, out = err, (dx, dy)
    return out


def test_walking_scrolls_the_view_by_the_step():
    sim = start()
    before = sim.render()[0]
    after = hold(sim, 1, "right")[0]
    assert best_shift(before, after) == (3, 0)          # three pixels a tick
    before = after
    after = hold(sim, 1, "left", "up")[0]
    assert best_shift(before, after) == (-2, -2)        # two each way on a diagonal


def test_walking_speed_and_facing():
    sim = start()
    x, y = sim.state()[0, :2].tolist()
    hold(sim, 4, "left")
    assert sim.state()[0, :2].tolist() == [x - 12 / 16, y]
    assert sim.hero.facing.item() == 2                   # left
    hold(sim, 1, "left", "up")
    assert sim.hero.facing.item() == 2                   # a diagonal keeps a facing it has
    hold(sim, 1, "up")
    assert sim.hero.facing.item() == 1
    hold(sim, 1, "down", "right")
    assert sim.hero.facing.item() == 0                   # up is not one of them: down
    assert sim.state()[0, sim.state_names.index("moved")] == 4


def test_walls_stop_the_hero_and_it_slides():
    sim = GAME.simulator(batch=3)
    sim.reset([19, 20, 21])
    gen = torch.Generator().manual_seed(2)
    half, blocked = sim.rules.half, 0.0
    for tick in range(240):
        if tick % 12 == 0:
            keys = (torch.rand(3, 4, generator=gen) < 0.4).float()
        actions = torch.zeros(3, SPEC.actions.dim)
        actions[:, :4] = keys
        sim.step(actions)
        pos = sim.hero.pos
        for dx in (-half, half - 1):
            for dy in (-half, half - 1):
                inside = sim.world.solid_at(pos[:, 0] + dx, pos[:, 1] + dy)
                assert not inside.any(), (tick, pos)
        blocked += sim.hero.blocked.sum().item()
    assert blocked > 10


def test_use_opens_the_door_in_front_and_only_that():
    sim = start()
    hold(sim, 20, "left")                                # walks into the shut door
    assert sim.hero.blocked.item() == 1
    door = sim.world.tiles[0, 19:21, 37]
    assert (door == lv.DOOR).all()
    hold(sim, 1, "up")
    hold(sim, 1, "use")                                  # facing up: nothing there
    assert (sim.world.tiles[0, 19:21, 37] == lv.DOOR).all()
    hold(sim, 1, "left")
    hold(sim, 1)
    hold(sim, 3, "use")                                  # facing the door: it opens
    assert (sim.world.tiles[0, 19:21, 37] == lv.OPEN).all()
    x = sim.hero.pos[0, 0].item()
    hold(sim, 10, "left")
    assert sim.hero.pos[0, 0].item() == x - 30           # and lets the hero through


def test_a_locked_door_takes_a_key():
    sim = start(pose=[9.5, 20.5])
    hold(sim, 3, "left")
    hold(sim, 1, "use")
    assert (sim.world.tiles[0, 20:22, 8] == lv.LOCKED).all()    # no key
    sim.hero.keys[0] = 1
    hold(sim, 1)
    hold(sim, 1, "use")
    assert (sim.world.tiles[0, 20:22, 8] == lv.OPEN).all()
    assert sim.hero.keys.item() == 0


def test_a_chest_gives_five_coins_once():
    sim = start(pose=[4.5, 5.5])
    hold(sim, 2, "up")
    hold(sim, 1, "use")
    assert sim.hero.score.item() == 5
    assert (sim.world.kind[0] == lv.CHEST_OPEN).sum() == 1
    hold(sim, 1)
    hold(sim, 1, "use")
    assert sim.hero.score.item() == 5


def test_the_sword_hits_once_per_swing_and_beats_creatures():
    sim = start()
    hold(sim, 1, "right")
    slime = place(sim, lv.SLIME, (18, 0), timer=20)      # resting, right in front
    x = sim.world.pos[0, slime, 0].item()
    hold(sim, 10, "attack")
    hold(sim, 1)
    assert sim.world.hp[0, slime].item() == 1            # six striking ticks, one hit
    assert sim.world.pos[0, slime, 0].item() > x + 10    # pushed away
    assert sim.hero.swing.item() == 0 and sim.hero.moved.item() == 0
    place(sim, lv.SLIME, (18, 0), slot=slime, timer=20, hp=1.0)
    hold(sim, 6, "attack")
    assert sim.world.kind[0, slime] == lv.PUFF
    hold(sim, 10)
    assert sim.world.kind[0, slime] == sim.world.drop[0, slime]


def test_a_pot_breaks_and_frees_its_tile():
    sim = start(pose=[9.5, 5.5])
    assert sim.world.solid[0, 4, 9]
    hold(sim, 1, "up")
    hold(sim, 8, "attack")
    assert not sim.world.solid[0, 4, 9]
    assert (sim.world.kind[0] == lv.POT).sum() == 7


def test_creatures_hurt_and_the_hero_starts_again_when_out_of_hearts():
    sim = start()
    spawn = sim.hero.pos.clone()
    hold(sim, 2, "right")
    place(sim, lv.BAT, (4, 0))
    hold(sim, 1)
    assert sim.hero.health.item() == 4
    hold(sim, 1)
    assert sim.hero.pos[0, 0].item() < spawn[0, 0].item() + 6       # knocked back west
    hold(sim, 10)
    place(sim, lv.SKELETON, (0, 0), slot=1)
    hold(sim, 1)
    assert sim.hero.health.item() == 4                              # safe for a while
    sim.world.kind[0, :2] = lv.NONE
    hold(sim, sim.rules.safe_ticks)
    sim.hero.health[0] = 1
    place(sim, lv.SKELETON, (0, 0), slot=1)
    hold(sim, 1)
    assert torch.equal(sim.hero.pos, spawn)
    assert sim.hero.health.item() == 5 and sim.hero.deaths.item() == 1


def test_pickups_count_and_hearts_are_capped():
    sim = start()
    for slot, kind in enumerate((lv.COIN, lv.KEY, lv.HEART)):
        place(sim, kind, (0, 0), slot=slot)
    hold(sim, 1)
    assert (sim.hero.score.item(), sim.hero.keys.item(), sim.hero.health.item()) == (1, 1, 5)
    assert (sim.world.kind[0, :3] == lv.NONE).all()


def test_creatures_move_on_their_own_and_stay_out_of_walls():
    sim = GAME.simulator(batch=2)
    sim.reset([19, 33])
    w = sim.world
    creature = (w.kind == lv.SLIME) | (w.kind == lv.BAT) | (w.kind == lv.SKELETON)
    first = w.pos.clone()
    for _ in range(120):
        sim.step(torch.zeros(2, SPEC.actions.dim))
        half = sim.kinds["half"][w.kind]
        for dx in (-1, 1):
            for dy in (-1, 1):
                corner = w.pos + torch.stack([dx * half - int(dx > 0), dy * half - int(dy > 0)], -1)
                assert not (w.solid_at(corner[..., 0], corner[..., 1]) & creature).any()
    moved = (w.pos - first).abs().sum(-1)
    assert (moved[creature] > 0).float().mean() > 0.8


def test_the_door_and_key_case_replays_exactly():
    script = GAME.script("eval/door_and_key.toml")
    actions = SPEC.actions.encode(script.actions(SPEC.actions, SPEC.tick_rate))
    sim = start(seed=1073741830)
    opened = None
    for tick, action in enumerate(actions):
        frame = sim.step(action[None])
        if opened is None and sim.world.tiles[0, 30, 8] == lv.OPEN:
            opened = tick
    assert opened == 52 and sim.hero.keys.item() == 1
    # The frames are what a world model learns: a change of look must be on purpose.
    assert zlib.crc32(frame.numpy().tobytes()) == 463848816


def test_the_kiosk_attract_loop_replays_the_agents_run():
    """The attract timeline is the agent's first 32 s in level 28, recorded in a batch of
    32: replayed alone it does what the agent did. A change of the rules that breaks
    this needs the timeline recorded again (docs/adding_a_game.md, section 6)."""
    from neural_engine.packs import load_pack

    pack = load_pack(GAME.folder / "packs" / "attract")
    actions = SPEC.actions.encode(pack.timeline().actions)
    sim = start(seed=28)
    w = sim.world
    creatures = ((w.kind == lv.SLIME) | (w.kind == lv.BAT) | (w.kind == lv.SKELETON)).sum()
    for action in actions:
        sim.step(action[None])
    doors = (w.tiles == lv.OPEN).sum().item() // 2
    beaten = creatures - ((w.kind == lv.SLIME) | (w.kind == lv.BAT) | (w.kind == lv.SKELETON)).sum()
    assert (doors, (w.kind == lv.CHEST_OPEN).sum().item(), beaten.item()) == (5, 1, 4)
    assert sim.hero.score.item() == 10


@pytest.mark.gpu
def test_cuda_frames_equal_cpu_frames_bit_for_bit():
    actions = torch.zeros(40, 2, SPEC.actions.dim)
    actions[:, :, BUTTONS.index("right")] = 1
    actions[10:20, :, BUTTONS.index("attack")] = 1
    frames = []
    for device in ("cpu", "cuda"):
        sim = GAME.simulator(batch=2, device=device)
        out = [sim.reset([19, 1073741830])]
        out += [sim.step(a.to(device)) for a in actions]
        frames.append(torch.stack(out).cpu())
    assert torch.equal(frames[0], frames[1])
