"""Input: the game's action space, key names, and the mapping from events to actions."""
