"""Serving: many players in browsers, each steering their own world on one batched pool.

The rooms of ``neural-engine serve``, in the order a tick flows through them:

- ``protocol``: the wire format (client messages, checked strictly; frame headers);
- ``browser_keys``: the browser's key codes as the engine's key names;
- ``seat``: one player's row: their action mapper, pause, input numbers, kiosk rules;
- ``rules``: the kiosk's rules for one row over the network (attract, idle, session);
- ``floor``: who holds which row and who waits; plans each tick;
- ``rows``: the frame sources of all rows stepped together (the simulator, or the
  world model's ``StreamPool``);
- ``codec``: frames to bytes (PNG, JPEG, raw);
- ``server``: the aiohttp application: the page, one WebSocket per player, the tick;
- ``bench``: players per machine without a browser or a network;
- ``headless``: Debian's chromium over the DevTools protocol (tests, codec bench).

Only ``server`` and ``headless`` import aiohttp; the bench runs where it is missing.
"""
