"""Logging for the command line, set once from -v / -q: one handler, on stderr (stdout holds the results).

default  embedbench at INFO (a line per task), third-party libraries at WARNING, progress bars on.
-v       embedbench at DEBUG; huggingface_hub and httpx at INFO, so downloads and an HTTP API's
         requests and retries show.
-q       WARNING and above only, no progress bars (the engine shows bars only while the embedbench
         logger is at INFO or below: `embedbench.engine.progress`).

The library itself never configures logging: a Python caller of `evaluate` keeps its own setup.
"""

from __future__ import annotations

import logging
import sys

QUIET, DEFAULT, VERBOSE = -1, 0, 1
# Loggers -v opens up to INFO: the hub client (downloads) and httpx (every HTTP request, so retries show).
CHATTY = ("huggingface_hub", "httpx")
# Libraries that print through their own handler; passing their records on as well would print them twice.
OWN_HANDLER = ("huggingface_hub", "transformers")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (tests and progress bars swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _not_self_printed(record: logging.LogRecord) -> bool:
    return record.name.partition(".")[0] not in OWN_HANDLER


def configure_logging(verbosity: int = DEFAULT) -> None:
    """Route log records to stderr at the level `verbosity` asks for; calling it again replaces the setup."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.addFilter(_not_self_printed)
    verbose = verbosity >= VERBOSE
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(asctime)s %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    level = logging.DEBUG if verbose else logging.WARNING if verbosity <= QUIET else logging.INFO
    logging.getLogger("embedbench").setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.NOTSET)
    if verbose or verbosity <= QUIET:
        _configure_hub(verbose)


def _configure_hub(verbose: bool) -> None:
    """The hub client sets its own level and bars when first imported, so import it first (cheap) and set them."""
    from huggingface_hub import utils as hub_utils

    if verbose:
        hub_utils.logging.set_verbosity_info()
    else:
        hub_utils.disable_progress_bars()
