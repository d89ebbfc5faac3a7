"""Low-level utilities shared by networks, training and metrics (StyleGAN2-ADA compatible module paths)."""
