"""Scenario packs: a folder with ``pack.toml`` and its files, for designers and kiosks.

A pack names a game (and, optionally, weights inside the pack), gives start states
(seed and pose, or a start image), overrides bindings and mouse sensitivity, sets
sampler options, scripts a timeline of inputs and events, and sets kiosk behaviour.
``spec`` is the schema, ``timeline`` the scripted part, ``files`` the rules for the
pack's files and paths, ``load`` reads and checks a whole pack. A pack is data only:
TOML, PNG images and safetensors weights; it never makes the engine run code.
"""

from neural_engine.packs.load import ScenarioPack, load_pack

__all__ = ["ScenarioPack", "load_pack"]
