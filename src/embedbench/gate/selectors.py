"""Selecting the results one side of a gate compares.

A selector is either

* ``results:DIR`` -- every result stored under DIR (optionally narrowed: ``results:DIR,precision=fp32``), or
* comma-separated filters over ``--results-dir``: ``model=minilm-l6,precision=fp32,dim=384``.

Filter keys are the keys of ``Result.record()`` (what ``embedbench results --format json`` prints,
``dataset_hash`` included) plus ``variant.NAME`` for one variant setting (an empty value matches a
result without that setting, e.g. ``variant.limit_queries=`` selects full runs). Values compare as
strings. Filters on different keys must all hold; a key given twice accepts either value
(``precision=int8,precision=binary``). Unknown keys and selectors that match nothing are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from embedbench.errors import EmbedbenchError
from embedbench.results import Result, per_query_path
from embedbench.results import scan_results as scan_result_files

DIR_PREFIX = "results:"


def record_keys() -> list[str]:
    """The keys a filter may name (besides variant.NAME)."""
    return Result.record_keys()


@dataclass(frozen=True)
class Selector:
    text: str
    directory: Path | None = None
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def matches(self, result: Result) -> bool:
        record = result.record()
        for key, values in self.filters.items():
            if key.startswith("variant."):
                raw = result.variant.get(key.removeprefix("variant."))
                value = "" if raw is None else str(raw)
            else:
                value = str(record[key])
            if value not in values:
                return False
        return True


@dataclass(frozen=True)
class Selected:
    """A result and the file it was read from (its per-query scores lie beside it)."""

    result: Result
    path: Path

    @property
    def per_query_path(self) -> Path:
        return per_query_path(self.path, self.result)  # the file the summary names (schema 2) or schema 1's


def parse_selector(text: str) -> Selector:
    """Parse a selector string; bad syntax or unknown keys raise a one-line EmbedbenchError."""
    text = text.strip()
    if not text:
        raise EmbedbenchError("empty selector: use results:DIR or filters like model=NAME,precision=fp32")
    directory: Path | None = None
    rest = text
    if text.startswith(DIR_PREFIX):
        body = text[len(DIR_PREFIX):].strip()
        if Path(body).is_dir() or "," not in body:  # a folder whose name has commas still works
            head, rest = body, ""
        else:
            head, rest = (part.strip() for part in body.split(",", 1))
        if not head:
            raise EmbedbenchError(f"selector {text!r}: results: needs a folder, e.g. results:results/baselines")
        directory = Path(head)
    filters: dict[str, list[str]] = {}
    valid = record_keys()
    for token in (t.strip() for t in rest.split(",")):
        if not token:
            if rest.strip():
                raise EmbedbenchError(f"selector {text!r}: empty filter between commas")
            continue
        if "=" not in token:
            raise EmbedbenchError(f"selector {text!r}: expected key=value, got {token!r}")
        key, value = (part.strip() for part in token.split("=", 1))
        if not (key in valid or (key.startswith("variant.") and len(key) > len("variant."))):
            raise EmbedbenchError(
                f"selector {text!r}: unknown key {key!r} (valid keys: {', '.join(valid)}, variant.NAME)"
            )
        filters.setdefault(key, []).append(value)
    if directory is None and not filters:
        raise EmbedbenchError(f"selector {text!r}: use results:DIR or filters like model=NAME,precision=fp32")
    return Selector(text=text, directory=directory, filters={k: tuple(v) for k, v in filters.items()})


def scan_results(root: Path) -> list[Selected]:
    """Every result under `root` with its path, read by the results reader in strict mode: a file
    that is not a readable result stops the gate (a verdict must not quietly leave one out)."""
    return [Selected(result, path) for path, result in scan_result_files(root, strict=True)]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _nested(root: Path, others: tuple[Path, ...]) -> list[Path]:
    """The folders of `others` strictly inside `root`: they belong to the other side, never this one."""
    return [f for f in others if _inside(f, root) and f.resolve() != root.resolve()]


def select(
    selector: Selector, results_dir: Path, side: str, exclude: tuple[Path, ...] = ()
) -> list[Selected]:
    """The results `selector` picks for `side` ("baseline" / "candidate").

    `exclude` holds the other side's ``results:DIR``. A folder of it that lies inside this side's
    folder (``results:DIR`` or, for filters, `results_dir`) is left out, so candidate
    ``results:results`` next to baseline ``results:results/baselines`` never takes the baselines.
    Equal folders are not left out: both sides then select the same files, which the gate refuses.
    """
    root = selector.directory if selector.directory is not None else results_dir
    pool = scan_results(root)
    others = _nested(root, exclude)
    pool = [s for s in pool if not any(_inside(s.path, folder) for folder in others)]
    chosen = [s for s in pool if selector.matches(s.result)]
    where = f"{root}" + (f" outside the other side's {', '.join(map(str, others))}" if others else "")
    if not chosen:
        if not pool:
            raise EmbedbenchError(f"{side} selector {selector.text!r}: no results in {where}")
        models = sorted({s.result.model for s in pool})
        shown = ", ".join(models[:8]) + (f", ... ({len(models)} models)" if len(models) > 8 else "")
        raise EmbedbenchError(
            f"{side} selector {selector.text!r} matched none of the {len(pool)} results in {where} (models: {shown})"
        )
    return chosen
