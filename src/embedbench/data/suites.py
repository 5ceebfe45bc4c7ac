"""Suite definitions: YAML files validated by pydantic models that forbid unknown keys.

A suite is a named list of tasks (`embedbench.data.spec.TaskSpec`); each task's loader options are
checked here, when the file is read, before any data is loaded. The project's suites/ folder ships
inside the package as ``embedbench/suites`` (package data; a link to ../../suites in the source tree),
so ``pip install .`` has every suite; ./suites/NAME.yaml in the working folder adds a suite, or
replaces the shipped one of that name.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from embedbench.data.spec import TaskSpec, check_options
from embedbench.errors import EmbedbenchError


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    tasks: list[TaskSpec]

    def model_post_init(self, _context: object) -> None:
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate task names: {', '.join(dupes)}")
        if not self.tasks:
            raise ValueError("a suite needs at least one task")


def suites_dir() -> Path:
    """The shipped suites: the package's data folder (the checkout's suites/ in an editable install)."""
    return Path(str(resources.files("embedbench") / "suites")).resolve()


def available_suites() -> dict[str, Path]:
    """Suite files by name: the shipped ones, then ./suites/*.yaml, which win on a shared name."""
    found = {p.stem: p for folder in (suites_dir(), Path.cwd() / "suites") for p in sorted(folder.glob("*.yaml"))}
    return dict(sorted(found.items()))


def load_suite(name_or_file: str) -> Suite:
    """A suite by name (./suites/NAME.yaml, else the shipped one) or by file path; errors name the file and the key."""
    path = _suite_file(name_or_file)
    suite = _validate_suite(_read_mapping(path), path)
    for i, task in enumerate(suite.tasks):
        try:
            check_options(task)
        except EmbedbenchError as exc:
            raise EmbedbenchError(f"{path}: tasks.{i}: {exc}") from None
    return suite


def _suite_file(name_or_file: str) -> Path:
    """An existing .yaml path as given, else the shipped suite of that name (a miss lists the known ones)."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    known = available_suites()
    if name_or_file not in known:
        close = difflib.get_close_matches(name_or_file, list(known), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise EmbedbenchError(f"unknown suite {name_or_file!r}{hint} (known: {', '.join(known)})")
    return known[name_or_file]


def _read_mapping(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise EmbedbenchError(f"{path}{line}: malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise EmbedbenchError(f"{path}: a suite file must be a mapping with name and tasks")
    return raw


def _validate_suite(raw: dict, path: Path) -> Suite:
    """The pydantic model of a suite; its first error as one line naming the file and the key."""
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        kind = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise EmbedbenchError(f"{path}: {where}: {kind}") from None
