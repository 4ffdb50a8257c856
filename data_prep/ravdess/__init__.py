"""RAVDESS builder."""
