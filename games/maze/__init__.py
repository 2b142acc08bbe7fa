"""The maze: a first-person raycaster in the spirit of Wolfenstein 3D.

``Simulator`` steps B players through procedurally generated mazes and draws what they
see; ``Agent`` plays it like a person exploring; ``TrainingAgent`` (training data only)
also spends spells trying every control. Files: ``mapgen`` (maps from seeds),
``world`` (maps as batched tensors), ``textures`` (the look), ``raycast`` (rays against
the grid), ``render`` (the view), ``sim`` (the rules), ``agent`` and ``training_agent``
(the players), ``motion`` (the true motion the engine's probe scores).
"""

from games.maze.agent import Agent
from games.maze.motion import motion
from games.maze.sim import Simulator
from games.maze.training_agent import TrainingAgent

__all__ = ["Agent", "Simulator", "TrainingAgent", "motion"]
