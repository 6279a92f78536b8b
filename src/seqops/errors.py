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


#: The most characters of a user's value an error message quotes (`quote`).
QUOTE_LIMIT = 80


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)` for an error message, at most `limit` characters: a message stays one
    short line whatever the user wrote (a 10 MB cell, a deeply nested list). Containers are
    abbreviated before they are formatted (`reprlib`), so a huge one costs no more than a
    small one."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxdict, short.maxlist, short.maxtuple = 3, 6, 6, 6
    short.maxset = short.maxfrozenset = short.maxdeque = short.maxarray = 6
    short.maxstring = short.maxother = short.maxlong = limit
    try:
        text = short.repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4300-digit str limit, ...
        text = f"<{type(value).__name__} too large to show>"
    return clip(text, limit)
