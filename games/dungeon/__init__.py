"""The dungeon: a top-down action adventure in the spirit of the classic console ones.

``Simulator`` steps B heroes through procedurally generated dungeons (rooms, corridors,
doors and locked doors, keys, coins, chests, pots, slimes, bats and skeletons) and
draws what a camera following each hero sees; ``Agent`` plays it like a person
exploring. Files: ``levelgen`` (levels from seeds), ``world`` (levels and heroes as
batched tensors), ``tiles`` and ``sprites`` (the look), ``render`` (the view),
``physics`` (moving boxes), ``creatures`` (how they move), ``sim`` (the rules),
``agent`` (the player), ``motion`` (the true motion the engine's probe scores).
"""

from games.dungeon.agent import Agent
from games.dungeon.motion import motion
from games.dungeon.sim import Simulator

__all__ = ["Agent", "Simulator", "motion"]
