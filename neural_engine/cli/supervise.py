"""``play --kiosk``: this process becomes the watchdog; the game runs as its child.

``supervise`` starts the play command again, with the same arguments (handed over as
JSON in the environment, so nothing is re-parsed differently), under a
``show.watchdog.Watchdog`` that restarts it when it crashes or hangs and writes
rotated logs. ``cli.play.kiosk_child`` is that second process's entry point; it ends itself when the
watchdog goes (``show.watchdog.tie_to_watchdog``). The pack was checked before the
watchdog starts, so a broken pack is a one-line error, not a restart loop; and a
mistake only the child finds (say, ``--sampler`` against the weights) makes it exit
with ``EXIT_REFUSED``, which ends the watchdog instead of restarting the game.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neural_engine.errors import EngineError
from neural_engine.packs import ScenarioPack
from neural_engine.packs.spec import KioskSettings

ARGS_ENV = "NEURAL_ENGINE_PLAY_ARGS"
CHILD = ("import sys; from neural_engine.cli.play import kiosk_child; "
         "sys.exit(kiosk_child())")


def supervise(args: argparse.Namespace, pack: ScenarioPack | None) -> int:
    """Run the game as the watchdog's child until the operator's chord ends it."""
    from neural_engine.show.watchdog import Watchdog

    if args.record:
        raise EngineError("--record: a kiosk runs for days; it does not record")
    settings = pack.kiosk if pack is not None else KioskSettings()
    values = {k: v for k, v in vars(args).items() if k != "handler"}
    dog = Watchdog([sys.executable, "-c", CHILD], args.log_dir,
                   env={ARGS_ENV: json.dumps(values)}, hang_seconds=settings.hang_seconds)
    print(f"kiosk: watchdog running; logs in {Path(args.log_dir).resolve()}", file=sys.stderr)
    return dog.run()
