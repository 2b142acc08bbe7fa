"""The maze's training player: the exploring agent, plus spells of trying the controls.

A world model cannot learn keys it rarely sees pressed, nor what a wall does if it
never walks into one. The exploring agent (``agent.py``) plays the way people explore:
forward most of the time, back and strafe rarely, and it turns away from walls. This
player is that agent most of the time and, for about ``share`` of its ticks, holds one
key combination for a spell of 4–30 ticks, without looking where it goes: turning in
place, walking straight into whatever is ahead, backing up, strafing, walking while
strafing or turning, a steady mouse turn, or nothing; with run held on some.

Only training data uses it; the held-out evaluation cases keep ``Agent`` (its random
stream is untouched). All randomness comes from the agent's seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from games.maze.agent import Agent, AgentConfig
from games.maze.sim import Simulator
from neural_engine.games import GameSpec

# (held buttons, mouse turn) of each spell, and its chance
COMBOS: tuple[tuple[tuple[str, ...], bool, float], ...] = (
    (("turn_left",), False, 0.12), (("turn_right",), False, 0.12),
    (("forward",), False, 0.14), (("back",), False, 0.10),
    (("strafe_left",), False, 0.08), (("strafe_right",), False, 0.08),
    (("forward", "strafe_left"), False, 0.04), (("forward", "strafe_right"), False, 0.04),
    (("forward", "turn_left"), False, 0.05), (("forward", "turn_right"), False, 0.05),
    ((), True, 0.12), ((), False, 0.06),
)
MOVES = ("forward", "back", "strafe_left", "strafe_right")


@dataclass(frozen=True)
class PlayConfig:
    share: float = 0.25               # share of ticks spent trying the controls
    spell_ticks: tuple[int, int] = (4, 30)
    explore_ticks: tuple[int, int] = (40, 200)   # between spells
    run_share: float = 0.3            # spells with a move key that also hold run
    mouse: tuple[float, float] = (0.2, 0.9)      # |dx| of a mouse spell


class TrainingAgent(Agent):
    def __init__(self, spec: GameSpec, batch: int = 1, device: torch.device | str = "cpu",
                 seed: int = 0, config: AgentConfig = AgentConfig(),
                 play: PlayConfig = PlayConfig()):
        super().__init__(spec, batch, device, seed, config)
        self.play = play
        space = spec.actions
        table = torch.zeros(len(COMBOS), space.dim, device=self.device)
        for row, (keys, _, _) in enumerate(COMBOS):
            for key in keys:
                table[row, space.index(key)] = 1.0
        self._table = table
        self._mouse_combo = torch.tensor([m for _, m, _ in COMBOS], device=self.device)
        self._moves = table[:, [space.index(k) for k in MOVES]].sum(1) > 0
        chances = torch.tensor([p for _, _, p in COMBOS], device=self.device)
        self._combo_cdf = chances.cumsum(0) / chances.sum()
        self._run = space.index("run")
        # the chance that a spell starts at a switch, so spells fill ``share`` of the time
        mean_spell, mean_explore = (sum(play.spell_ticks) / 2, sum(play.explore_ticks) / 2)
        s = play.share
        self._start_chance = s * mean_explore / (s * mean_explore + (1 - s) * mean_spell)

    def reset(self, sim: Simulator) -> None:
        super().reset(sim)
        b, dev = self.batch, self.device
        self.in_spell = torch.zeros(b, dtype=torch.bool, device=dev)
        self.spell_timer = torch.zeros(b, dtype=torch.long, device=dev)
        self.spell = torch.zeros(b, self.spec.actions.dim, device=dev)

    def act(self, sim: Simulator) -> torch.Tensor:
        explored = super().act(sim)
        p = self.play
        r = torch.rand(self.batch, 6, generator=self.gen, device=self.device)
        self.spell_timer = self.spell_timer - 1
        switch = self.spell_timer <= 0
        start = r[:, 0] < self._start_chance
        combo = torch.searchsorted(self._combo_cdf, r[:, 1:2].contiguous())[:, 0].clamp_max(
            len(COMBOS) - 1)
        spell = self._table[combo].clone()
        spell[:, self._run] = (self._moves[combo] & (r[:, 2] < p.run_share)).float()
        side = torch.where(r[:, 4] < 0.5, -1.0, 1.0)
        turn = (p.mouse[0] + (p.mouse[1] - p.mouse[0]) * r[:, 3]) * side
        if self._mouse_dx is not None:
            spell[:, self._mouse_dx] = torch.where(self._mouse_combo[combo], turn, 0.0)
        lo = torch.where(start, p.spell_ticks[0], p.explore_ticks[0])
        hi = torch.where(start, p.spell_ticks[1], p.explore_ticks[1])
        length = lo + (r[:, 5] * (hi - lo + 1)).long()
        self.in_spell = torch.where(switch, start, self.in_spell)
        self.spell = torch.where(switch[:, None], spell, self.spell)
        self.spell_timer = torch.where(switch, length, self.spell_timer)
        return torch.where(self.in_spell[:, None], self.spell, explored)
