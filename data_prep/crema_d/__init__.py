"""CREMA-D builder."""
