"""Source games. Each sub-package holds a game's ground-truth simulator, its exploring
agent, its ``game.toml`` and its scenario packs; see ``neural_engine.games`` for the
contract they meet."""
