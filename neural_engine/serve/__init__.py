"""Serving: many players in browsers, each steering their own world on one batched pool.

The rooms of ``neural-engine serve``, in the order a tick flows through them:

- ``protocol``: the wire format (client messages, checked strictly; frame headers);
- ``browser_keys``: the browser's key codes as the engine's key names;
- ``seat``: one player's row: their action mapper, pause, input numbers, kiosk rules;
- ``rules``: the kiosk's rules for one row over the network (attract, idle, session);
- ``floor``: who holds which row and who waits; plans each tick;
- ``rows``: the frame sources of all rows stepped together (the simulator, or the
  world model's ``WorldSession``);
- ``codec``: frames to bytes (PNG, JPEG, raw);
- ``server``: the aiohttp application: the page, one WebSocket per player, the tick;
- ``bench``: players per machine without a browser or a network (``serve --bench``);
- ``loadtest``: latency and bytes with real WebSocket players on loopback;
- ``codec_bench``: the measurement behind the default frame encoding;
- ``headless``: Debian's chromium over the DevTools protocol (tests, codec bench).

Only ``server``, ``headless``, ``loadtest`` and ``codec_bench`` import aiohttp; the
bench runs where it is missing. ``docs/serve.md`` has the picture and the numbers.
"""
