"""Key names a designer may write in bindings, and their pygame key codes.

The table is data: names are lower-case, as pygame spells them ("left shift", "f11",
"w"). Validation uses ``KEY_NAMES`` alone, so a pack or a game file can be checked
without starting pygame; ``key_code`` is only called by the live input mapper.
"""

from __future__ import annotations

import difflib
import string

from neural_engine.errors import EngineError

_SPECIAL = {
    "space": "K_SPACE", "return": "K_RETURN", "enter": "K_RETURN", "tab": "K_TAB",
    "backspace": "K_BACKSPACE", "escape": "K_ESCAPE", "delete": "K_DELETE",
    "insert": "K_INSERT", "home": "K_HOME", "end": "K_END",
    "page up": "K_PAGEUP", "page down": "K_PAGEDOWN",
    "up": "K_UP", "down": "K_DOWN", "left": "K_LEFT", "right": "K_RIGHT",
    "left shift": "K_LSHIFT", "right shift": "K_RSHIFT",
    "left ctrl": "K_LCTRL", "right ctrl": "K_RCTRL",
    "left alt": "K_LALT", "right alt": "K_RALT",
    "caps lock": "K_CAPSLOCK",
    ",": "K_COMMA", ".": "K_PERIOD", "/": "K_SLASH", ";": "K_SEMICOLON",
    "'": "K_QUOTE", "[": "K_LEFTBRACKET", "]": "K_RIGHTBRACKET", "-": "K_MINUS",
    "=": "K_EQUALS", "`": "K_BACKQUOTE", "\\": "K_BACKSLASH",
}
_SPECIAL.update({f"f{i}": f"K_F{i}" for i in range(1, 13)})
_SPECIAL.update({f"keypad {d}": f"K_KP{d}" for d in string.digits})
_SPECIAL.update({c: f"K_{c}" for c in string.ascii_lowercase + string.digits})

# Mouse buttons bind like keys; their codes live in a range no keyboard key uses.
MOUSE_BUTTONS = {"mouse left": 1, "mouse middle": 2, "mouse right": 3}
MOUSE_CODE_BASE = -1000

KEY_NAMES: frozenset[str] = frozenset(_SPECIAL) | frozenset(MOUSE_BUTTONS)


def check_key_name(name: str) -> str | None:
    """None if ``name`` is a known key, else a message with the closest valid name."""
    if name.lower() in KEY_NAMES:
        return None
    close = difflib.get_close_matches(name.lower(), sorted(KEY_NAMES), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key name {name!r}{hint}"


def key_code(name: str) -> int:
    """The pygame key code for a key name (or a negative code for a mouse button)."""
    if (problem := check_key_name(name)) is not None:
        raise EngineError(problem)
    name = name.lower()
    if name in MOUSE_BUTTONS:
        return MOUSE_CODE_BASE - MOUSE_BUTTONS[name]
    import pygame

    return int(getattr(pygame, _SPECIAL[name]))
