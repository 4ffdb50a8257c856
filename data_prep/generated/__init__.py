"""A generated audio-visual-text emotion corpus (``generated_emotion``); see ``generated.py``."""
