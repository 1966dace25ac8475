"""Data sets: turn a data set spec into a PairSet of matched image-text pairs (no models here)."""
