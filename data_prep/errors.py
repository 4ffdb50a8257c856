"""The error a build raises for a usage problem (``mmer data build`` reports it without a
traceback). Its own module so that ``data_prep.build`` and ``data_prep._common`` both use it
without importing each other."""


class BuildError(RuntimeError):
    """A corpus could not be built; the message names the corpus, file or directory at fault."""
