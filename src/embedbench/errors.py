"""Errors the CLI turns into one line on stderr and exit code 2."""


class EmbedbenchError(Exception):
    """Bad usage or bad input: the message is shown to the user as one line."""


class DataError(EmbedbenchError):
    """A dataset file is malformed; the message names the file, line and id."""

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


class ModelError(EmbedbenchError):
    """A model cannot be found, loaded or produced bad vectors."""
