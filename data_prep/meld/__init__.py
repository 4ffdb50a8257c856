"""MELD builder: Friends dialogues, 7 emotions + 3 sentiments, text and audio-visual configs."""
