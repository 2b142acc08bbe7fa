"""Data: clips of play from the batched simulator, made on the fly for training and
evaluation (``clips.py``), and how fast a simulator makes them (``throughput.py``)."""
