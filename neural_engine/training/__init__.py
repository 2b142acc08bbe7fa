"""Training: the autoencoder, the diffusion-forcing teacher and Rolling Forcing
distillation, each a stage run by one shared, resumable, time-boxed loop."""
