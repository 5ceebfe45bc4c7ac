"""The command line: argument parsing and `list`; each subcommand is a thin call into the library API."""

from embedbench.cli.main import main

__all__ = ["main"]
