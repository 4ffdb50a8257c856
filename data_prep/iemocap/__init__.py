"""IEMOCAP builder: release (audio, transcripts, optional video) and COSMIC text configs."""
