"""Show control, beside the game loop: what runs a show around it.

``director`` plays a scenario pack (its starts, timeline and captions) through the
loop's ``Director`` hooks; ``kiosk`` is the director of an unattended machine (attract
loop, idle resets, sessions); ``watchdog`` restarts the game when it crashes or hangs
and ties the game's life to its own. The loop (``runtime.loop``) knows only the
``Director`` protocol; nothing here draws or steps a model.
"""
