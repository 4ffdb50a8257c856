"""CMU-MOSI builder over the MulT / MMSA feature pickles."""
