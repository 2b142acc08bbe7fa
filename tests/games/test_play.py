"""Every game plays on its simulator as a player starts it, headless, and every one of
its packs plays, kiosk packs in kiosk mode (in this process, without the watchdog;
``tests/runtime/test_kiosk.py`` runs the watchdog end to end)."""

from pathlib import Path

import av
import pytest

from neural_engine.cli.play import main
from neural_engine.games import GAMES_ROOT, available

PACKS = sorted(p.parent for p in GAMES_ROOT.glob("*/packs/*/pack.toml"))


@pytest.mark.parametrize("game", available())
def test_every_game_plays_headless_on_its_simulator(game, tmp_path):
    out = tmp_path / "play.mp4"
    assert main(["--game", game, "--engine", "sim", "--headless", "--seconds", "1",
                 "--scale", "1", "--record", str(out)]) == 0
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 20 and frames[0].width == 128


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: f"{p.parent.parent.name}-{p.name}")
def test_every_pack_plays_headless(pack: Path, tmp_path):
    args = ["--pack", str(pack), "--engine", "sim", "--headless", "--seconds", "1",
            "--scale", "1"]
    if "[kiosk]" in (pack / "pack.toml").read_text():
        args += ["--kiosk", "--no-watchdog", "--log-dir", str(tmp_path)]
    assert main(args) == 0
