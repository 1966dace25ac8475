"""Encoders: load a model spec into something that embeds images and texts (no metrics here)."""
