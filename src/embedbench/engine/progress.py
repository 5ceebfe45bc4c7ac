"""What a run tells the user while it works: a log line per task, progress bars on stderr.

Everything goes through the `embedbench` logger (the CLI sends it to stderr; stdout holds the results
table). Bars follow the same logger: they show unless it is set above INFO, which is what
`embedbench -q` does and what a Python caller does with
`logging.getLogger("embedbench").setLevel(logging.WARNING)`.
"""

from __future__ import annotations

import logging

log = logging.getLogger("embedbench.run")


def progress_bars() -> bool:
    """True unless the embedbench logger is explicitly set above INFO (an unset logger shows bars)."""
    level = logging.getLogger("embedbench").level
    return level == logging.NOTSET or level <= logging.INFO


def describe_task(name: str, language: str | None, split: str, n_docs: int, n_queries: int) -> str:
    """`MLQARetrieval (de, dev, 12,000 docs, 1,200 queries)`: what is known before encoding starts."""
    parts = [p for p in (language, split) if p] + [f"{n_docs:,} docs", f"{n_queries:,} queries"]
    return f"{name} ({', '.join(parts)})"
