"""Any folder of labelled audio as a corpus."""
