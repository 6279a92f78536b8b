"""The one exception type for errors a user can cause (bad params, bad data, bad input).

The CLI turns it into a one-line message on stderr and exit status 2; anything else is a
bug and keeps its traceback.
"""


class SeqopsError(Exception):
    """A user-facing error: the message names the file, key or column and what was expected."""


class ConfigError(SeqopsError):
    """`params.yaml` (or an override) is invalid."""


class DataError(SeqopsError):
    """Input data is missing, empty or malformed."""


class ExportError(SeqopsError):
    """The exported model broke the contract, failed parity, or was not quantized."""
