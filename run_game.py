#!/usr/bin/env python3
"""Play the default game: ``python run_game.py`` (``--help`` lists the options).

Controls: WASD / arrows move, Q/E or the mouse turn, Shift runs; Esc quits,
F11 fullscreen, P pause, R reset, F12 screenshot.
"""

import sys

if __name__ == "__main__":
    try:
        from neural_engine.cli.play import main      # imports torch: seconds
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
