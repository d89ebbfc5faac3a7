"""Evaluation metrics (FID, KID, PR, IS, PPL) and their registry."""
