"""EmoDB (Berlin Database of Emotional Speech) builder."""
