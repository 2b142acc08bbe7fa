"""The world model: autoencoder (frames ↔ latents) and denoiser (a DiT over latent
patches), their configurations, and their weights on disk."""
