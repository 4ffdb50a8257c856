"""Errors that the `mmer` command turns into one line on stderr and an exit code.

``UsageError`` (exit 2): the user asked for something malformed (unknown config key, wrong type,
unusable workdir). ``RunError`` (exit 1): a well-formed run failed (NaN loss, empty split).
"""


class MmerError(Exception):
    exit_code = 1


class UsageError(MmerError):
    exit_code = 2


class RunError(MmerError):
    exit_code = 1


class CheckpointError(UsageError):
    """A checkpoint that cannot be read, or does not fit the architecture it claims; the message
    names the file and, where one is at fault, the tensor."""
