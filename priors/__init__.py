"""Real-data priors for StyleGAN2-ADA training (placeholder; the lead replaces this file)."""
