"""The browser's key codes as the engine's key names: one table, sent to the page.

The page reads ``KeyboardEvent.code`` (the physical key, as on a US layout, so WASD
stays under the left hand on any layout) and sends the engine's name for it ("w",
"left shift", "up"), the names that ``game.toml`` bindings and ``--bind`` use. Mouse
buttons are "mouse left", "mouse middle" and "mouse right" (``MouseEvent.button`` 0,
1, 2). The server's action mapper is the pygame loop's ``ActionMapper``, keyed by
these names instead of pygame's codes, so both loops map input the same way.

This module is data; it knows nothing about sockets or the page's code.
"""

from __future__ import annotations

import string

_NAMED = {
    "Space": "space", "Enter": "return", "NumpadEnter": "return", "Tab": "tab",
    "Backspace": "backspace", "Escape": "escape", "Delete": "delete", "Insert": "insert",
    "Home": "home", "End": "end", "PageUp": "page up", "PageDown": "page down",
    "ArrowUp": "up", "ArrowDown": "down", "ArrowLeft": "left", "ArrowRight": "right",
    "ShiftLeft": "left shift", "ShiftRight": "right shift",
    "ControlLeft": "left ctrl", "ControlRight": "right ctrl",
    "AltLeft": "left alt", "AltRight": "right alt", "CapsLock": "caps lock",
    "Comma": ",", "Period": ".", "Slash": "/", "Semicolon": ";", "Quote": "'",
    "BracketLeft": "[", "BracketRight": "]", "Minus": "-", "Equal": "=",
    "Backquote": "`", "Backslash": "\\",
}

BROWSER_KEYS: dict[str, str] = {
    **_NAMED,
    **{f"Key{c.upper()}": c for c in string.ascii_lowercase},
    **{f"Digit{d}": d for d in string.digits},
    **{f"Numpad{d}": f"keypad {d}" for d in string.digits},
    **{f"F{i}": f"f{i}" for i in range(1, 13)},
}

MOUSE_BUTTON_NAMES = ("mouse left", "mouse middle", "mouse right")   # button 0, 1, 2
