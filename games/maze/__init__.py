"""The maze: a first-person raycaster in the spirit of Wolfenstein 3D.

``Simulator`` steps B players through procedurally generated mazes and draws what they
see; ``Agent`` plays it like a person exploring. Files: ``mapgen`` (maps from seeds),
``world`` (maps as batched tensors), ``textures`` (the look), ``raycast`` (rays against
the grid), ``render`` (the view), ``sim`` (the rules), ``agent`` (the player), ``motion`` (the
true motion the engine's probe scores).
"""

from games.maze.agent import Agent
from games.maze.motion import motion
from games.maze.sim import Simulator

__all__ = ["Agent", "Simulator", "motion"]
