"""Using a trained run outside training: prediction from files, an HTTP server, export."""
