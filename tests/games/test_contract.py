"""The game contract, checked for every game under games/: a new game is checked by
adding its folder. Each test names what the engine relies on (``neural_engine.games``,
``neural_engine.control``); the games' own tests check their rules.

Simulators run tiny batches for few ticks; the agent tests shrink the frames (the
agent never looks at them)."""

import dataclasses
import importlib
import sys

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.evaluation.cases import load_cases
from neural_engine.games import GAMES_ROOT, Game, available, default_game, load_game
from neural_engine.input.keys import check_key_name
from neural_engine.packs import load_pack

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

GAMES = available()
AGENT_TICKS = 900               # the maze's agent backs up only when stuck: ~700 ticks


def test_there_are_several_games_and_a_default():
    assert {"maze", "dungeon"} <= set(GAMES)
    assert default_game() in GAMES


@pytest.fixture(scope="module", params=GAMES)
def game(request) -> Game:
    return load_game(request.param)


def idle(game: Game, batch: int) -> torch.Tensor:
    return torch.zeros(batch, game.spec.actions.dim)


def random_actions(game: Game, ticks: int, batch: int, seed: int) -> torch.Tensor:
    """(N, B, A): buttons held in runs of a few ticks, mouse axes in [-1, 1]."""
    space = game.spec.actions
    gen = torch.Generator().manual_seed(seed)
    keys = (torch.rand(ticks // 4 + 1, batch, len(space.buttons), generator=gen) < 0.3).float()
    keys = keys.repeat_interleave(4, 0)[:ticks]
    mouse = torch.rand(ticks, batch, len(space.mouse_axes), generator=gen) * 2 - 1
    return torch.cat([keys, mouse], -1)


def play(game: Game, seeds: list[int], actions: torch.Tensor):
    sim = game.simulator(batch=len(seeds))
    frames = [sim.reset(seeds)]
    states = [sim.state()]
    for a in actions:
        frames.append(sim.step(a))
        states.append(sim.state())
    return sim, torch.stack(frames, 1), torch.stack(states, 1)                 # (B, T, ...)


# -- game.toml --------------------------------------------------------------------------
def test_game_toml_is_complete_and_consistent(game):
    spec = game.spec
    assert spec.name == game.folder.name and spec.title
    assert spec.width % 8 == 0 and spec.height % 8 == 0
    module = importlib.import_module(game.module_name)
    for hook in ("Simulator", "Agent", "motion"):
        assert callable(getattr(module, hook, None)), f"games.{spec.name} lacks {hook}"
    names = module.Simulator.state_names
    assert len(set(names)) == len(names)
    assert set(spec.pose) <= set(names), "pose names state fields"
    assert set(spec.control.state) <= set(names), "[control] state names state fields"
    assert set(spec.bindings) == set(spec.actions.buttons), "every button has keys"
    for keys in spec.bindings.values():
        assert keys and all(check_key_name(k) is None for k in keys)
    assert spec.control.scored, "at least one motion target is scored"
    assert set(spec.control.latency) <= set(spec.actions.buttons)


def test_eval_cases_load_and_are_held_out(game):
    cases, folder = load_cases(game)
    names = [c.name for c in cases.case]
    assert len(cases.case) >= 4 and len(set(names)) == len(names)
    assert all(c.seed >= game.spec.seeds.held_out for c in cases.case)
    scripted = [c for c in cases.case if c.script is not None]
    assert scripted and len(scripted) < len(cases.case), "agent cases and scripted cases"
    for case in scripted:
        assert game.script(str((folder / case.script).relative_to(game.folder))).cue


def test_packs_validate_and_one_is_a_kiosk(game):
    packs = sorted(p.parent for p in (GAMES_ROOT / game.spec.name / "packs").glob("*/pack.toml"))
    assert len(packs) >= 2
    loaded = [load_pack(p) for p in packs]
    assert all(p.game.name == game.spec.name for p in loaded)
    kiosks = [p for p in loaded if p.spec.kiosk is not None and p.script is not None]
    assert kiosks and all(p.spec.timeline.loop for p in kiosks), "a looping attract pack"


# -- the simulator ----------------------------------------------------------------------
def test_frames_states_and_coverage_have_the_contract_shapes(game):
    spec, b = game.spec, 2
    sim = game.simulator(batch=b)
    frames = sim.reset([5, 6])
    assert frames.shape == (b, spec.height, spec.width, 3) and frames.dtype == torch.uint8
    frames = sim.step(random_actions(game, 1, b, 0)[0])
    assert frames.shape == (b, spec.height, spec.width, 3) and frames.dtype == torch.uint8
    state = sim.state()
    assert state.shape == (b, len(sim.state_names)) and state.dtype == torch.float32
    covered = sim.visited_fraction()
    assert covered.shape == (b,) and ((covered > 0) & (covered <= 1)).all()
    for f in frames:                           # a picture, not a test pattern or a blank
        assert len(torch.unique(f.reshape(-1, 3), dim=0)) > 24 and f.float().std() > 12


def test_same_seeds_and_actions_give_the_same_frames(game):
    actions = random_actions(game, 24, 2, seed=3)
    _, frames_a, states_a = play(game, [11, 12], actions)
    _, frames_b, states_b = play(game, [11, 12], actions)
    assert torch.equal(frames_a, frames_b) and torch.equal(states_a, states_b)
    _, frames_c, _ = play(game, [11, 13], actions)
    assert torch.equal(frames_c[0], frames_a[0]) and not torch.equal(frames_c[1], frames_a[1])
    # an environment does not depend on its batch-mates
    _, alone, _ = play(game, [12], actions[:, 1:])
    assert torch.equal(alone[0], frames_a[1])


def test_ticks_advanced_without_drawing_change_nothing_but_the_drawing(game):
    """``advance`` plays the rules alone and ``render`` draws what ``step`` would have
    returned: a run that draws only some ticks reaches the same states and frames."""
    actions = random_actions(game, 12, 2, seed=5)
    _, frames, states = play(game, [21, 22], actions)
    sim = game.simulator(batch=2)
    sim.reset([21, 22])
    for t, a in enumerate(actions, 1):
        if t % 3:
            assert sim.advance(a) is None
        else:
            assert torch.equal(sim.step(a), frames[:, t])
        assert torch.equal(sim.state(), states[:, t])
    assert torch.equal(sim.render(), frames[:, -1]) and torch.equal(sim.render(), frames[:, -1])


def test_misuse_is_one_engine_error(game):
    sim = game.simulator(batch=2)
    with pytest.raises(EngineError):
        sim.step(idle(game, 2))                                    # before reset
    with pytest.raises(EngineError):
        sim.reset([1])                                             # one seed for two
    sim.reset([1, 2])
    with pytest.raises(EngineError):
        sim.step(torch.zeros(2, game.spec.actions.dim + 1))
    far = torch.full((2, len(game.spec.pose)), -1000.0)
    with pytest.raises(EngineError):
        sim.reset([1, 2], far)                                     # a pose in no place


def test_a_start_pose_puts_the_player_there(game):
    sim = game.simulator(batch=2)
    sim.reset([21, 22])
    names = sim.state_names
    pose = sim.state()[:, [names.index(n) for n in game.spec.pose]]
    first = sim.reset([21, 22], pose.flip(0))                     # each the other's start
    again = sim.state()[:, [names.index(n) for n in game.spec.pose]]
    assert torch.allclose(again, pose.flip(0), atol=1e-5)
    assert first.shape[0] == 2


# -- motion and control -----------------------------------------------------------------
def test_motion_hook_matches_the_control_table(game):
    control = game.spec.control
    sim = game.simulator(batch=2)
    sim.reset([31, 32])
    states = [sim.state()]
    for _ in range(3):
        sim.step(idle(game, 2))
        states.append(sim.state())
    press = idle(game, 2)
    for button in control.latency:
        press[:, game.spec.actions.index(button)] = 1.0
    still = sim.render()
    moved = sim.step(press)
    states.append(sim.state())
    motion = game.motion(torch.stack(states, 1), sim.state_names)             # (B, 4, M)
    assert motion.shape == (2, 4, len(control.motion))
    classes = control.classes(motion)
    assert (classes[:, :3] == 0).all(), "standing still is no motion"
    assert (classes[:, 3] != 0).any(-1).all(), "the latency buttons move the player"
    assert ((moved != still).any(-1).float().mean((1, 2)) > 0.05).all(), "visibly, at once"


def _controls(game: Game) -> dict:
    """The game's eval/controls.toml as plain data (the evaluation owns its schema)."""
    return tomllib.loads((game.folder / "eval" / "controls.toml").read_text())


def _play_script(game: Game, seed: int, script: str) -> tuple[torch.Tensor, tuple]:
    spec = game.spec
    actions = spec.actions.encode(game.script(script).actions(spec.actions, spec.tick_rate))
    sim = game.simulator(batch=1)
    sim.reset([seed])
    states = [sim.state()]
    for a in actions:
        sim.step(a[None])
        states.append(sim.state())
    return torch.stack(states, 1), sim.state_names                          # (1, T + 1, S)


def test_control_tests_name_motion_axes_and_their_scripts_do_what_they_say(game):
    control, spec = game.spec.control, game.spec
    tests = _controls(game)["test"]
    kinds = {t["kind"] for t in tests}
    assert {"hold", "blocked", "loop", "still"} <= kinds
    for test in tests:
        assert all(s >= spec.seeds.held_out for s in test["seeds"]), test["name"]
        if "axis" in test:
            assert test["axis"] in control.names, test["name"]
        if "button" in test:
            assert test["button"] in spec.actions.buttons, test["name"]
        if test["kind"] not in ("hold", "blocked", "loop"):
            continue
        states, names = _play_script(game, test["seeds"][0], "eval/" + test["script"])
        motion = control.classes(game.motion(states, names))[0]              # (T, M)
        along = motion[:, control.names.index(test["axis"])]
        if test["kind"] == "hold":
            assert (along != 0).float().mean() > 0.1, f"{test['name']} moves the player"
        elif test["kind"] == "blocked":
            # the wall stops the player and it stays stopped with the key held
            assert (along[:20] == test.get("sign", 1)).any() and (along[-20:] == 0).all()
        else:
            fields = [names.index(n) for n in control.state]
            before = round(test["before"] * spec.tick_rate) + 1                # state after it
            start, end = states[0, before, fields], states[0, -1, fields]
            assert torch.allclose(start, end, atol=1e-3), f"{test['name']}: {start} → {end}"
            assert (motion != 0).any(), f"{test['name']} moves in between"


# -- the agent --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def agent_run(game):
    small = Game(dataclasses.replace(game.spec, width=32, height=32), game.module_name)
    sim = small.simulator(batch=4)
    agent = small.agent(batch=4, seed=1)
    sim.reset([41, 42, 43, 44])
    agent.reset(sim)
    actions = []
    for _ in range(AGENT_TICKS):
        actions.append(agent.act(sim))
        sim.step(actions[-1])
    return small, sim, torch.stack(actions, 1)                                 # (B, N, A)


def test_the_agent_uses_every_action_like_a_person(agent_run):
    game, sim, actions = agent_run
    space = game.spec.actions
    assert actions.shape == (4, AGENT_TICKS, space.dim) and actions.dtype == torch.float32
    buttons = actions[..., :len(space.buttons)]
    assert ((buttons == 0) | (buttons == 1)).all()
    for i, name in enumerate(space.buttons):
        assert buttons[..., i].any(), f"the agent never presses {name}"
    mouse = actions[..., len(space.buttons):]
    assert (mouse.abs() <= 1).all()
    for j, axis in enumerate(space.mouse_axes):
        assert (mouse[..., j].abs() > 0.05).any(), f"the agent never moves the mouse's {axis}"
    changes = (buttons[:, 1:] != buttons[:, :-1]).any(-1).float().mean()
    assert changes < 0.5, "keys are held, not flickered"
    assert (sim.visited_fraction() > sim.visited_fraction().new_tensor(0.02)).all()


def test_the_agent_is_deterministic_per_seed(game):
    small = Game(dataclasses.replace(game.spec, width=32, height=32), game.module_name)

    def run(seed: int) -> torch.Tensor:
        sim = small.simulator(batch=2)
        agent = small.agent(batch=2, seed=seed)
        sim.reset([51, 52])
        agent.reset(sim)
        out = []
        for _ in range(30):
            out.append(agent.act(sim))
            sim.step(out[-1])
        return torch.stack(out)

    a, b, c = run(4), run(4), run(5)
    assert torch.equal(a, b) and not torch.equal(a, c)
