"""CMU-MOSEI builder over the MulT / MMSA feature pickles."""
