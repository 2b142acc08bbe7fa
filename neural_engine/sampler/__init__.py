"""Samplers: the noise schedule, the streaming KV cache, and the Rolling Forcing stream
(with its baselines) that turns actions into clean latent frames, tick by tick."""
