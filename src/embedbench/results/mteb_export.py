"""Export embedbench results of mteb tasks in mteb's own results layout, written by mteb itself.

``export_mteb_results(results, out_dir)`` groups results by (model, revision, settings, task),
builds one ``mteb.TaskResult`` per group with ``TaskResult.from_task_results`` (scores per split and
hf_subset, mteb's ``languages`` for each subset, ``main_score``, mteb's metric names) and saves it
with ``mteb.ResultCache(out_dir).save_to_cache``, so the files are exactly what ``mteb run`` leaves:

    <out_dir>/results/<model name, "/" -> "__">/<revision>/<TaskName>.json   (+ model_meta.json)

``mteb.ResultCache(out_dir).load_results(...)`` and ``TaskResult.from_disk(path)`` read them back.

- Which results: those whose data came from the mteb loader (``provenance.dataset_source`` starts
  with ``mteb:<TaskName>``); others are skipped (`is_mteb_result` tells them apart).
- Model name: the hub id the result recorded (``minilm-l6`` -> ``sentence-transformers/all-MiniLM-L6-v2``),
  else the model as recorded (a local path keeps its path; so does a result written before results
  recorded ``hub_id``). Nothing here looks at today's presets: the export reads results only.
- Settings: fp32 at the model's full dim with no variant is the plain result. Any other precision,
  MRL dim or variant (``limit_queries``, ...) becomes an mteb *experiment* (``experiment_kwargs``
  {"precision", "dim", variant keys}), stored under ``<revision>/experiments/<name>/``.
- Scores: every embedbench metric under its (mteb) name, ``main_score`` = the mteb task's main
  metric, and mteb's ``accuracy`` (= recall_at_1). mteb-only metrics (hit_rate, naucs) are absent.
  ``evaluation_time`` is the summed encode + search seconds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from embedbench.atomic import atomic_write_bytes
from embedbench.errors import EmbedbenchError
from embedbench.results import Result

SOURCE_PREFIX = "mteb:"


def mteb_task_name(result: Result) -> str | None:
    """The mteb task a result was computed on (from its dataset source), or None."""
    source = result.provenance.dataset_source
    if not source.startswith(SOURCE_PREFIX):
        return None
    return source[len(SOURCE_PREFIX):].split(" ", 1)[0] or None


def is_mteb_result(result: Result) -> bool:
    return mteb_task_name(result) is not None


def mteb_model_names(results: list[Result]) -> dict[tuple[str, str], str]:
    """mteb's name for each (model, revision): the hub id its results recorded (any of them, as results
    written before the field lack it), else the model as given."""
    names = {(r.model, r.revision): r.model for r in results}
    names.update({(r.model, r.revision): r.hub_id for r in results if r.hub_id})
    return names


def _experiment(result: Result, full_dim: int) -> dict[str, str | int | float]:
    kwargs: dict[str, str | int | float] = {}
    if result.precision != "fp32":
        kwargs["precision"] = result.precision
    if result.dim != full_dim:
        kwargs["dim"] = result.dim
    kwargs.update(result.variant)
    return dict(sorted(kwargs.items()))


def _scores(result: Result, main_metric: str, where: str) -> dict[str, float]:
    if main_metric not in result.metrics:
        raise EmbedbenchError(f"{where}: mteb's main score {main_metric!r} was not computed")
    if result.metrics[main_metric] is None:
        raise EmbedbenchError(f"{where}: mteb's main score {main_metric!r} was not measured (its cutoff is past "
                              f"the two-stage rescore depth); export a deeper run")
    # mteb has no "not measured": metrics past a two-stage rescore depth are left out, never written as 0.
    scores = {name: value for name, value in result.metrics.items() if value is not None}
    if "recall_at_1" in scores:
        scores.setdefault("accuracy", scores["recall_at_1"])
    scores["main_score"] = scores[main_metric]
    return scores


def export_mteb_results(results: list[Result], out_dir: Path) -> list[Path]:
    """Write mteb TaskResult files for every mteb-task result; return the task files written."""
    mteb = _import_mteb()
    chosen = [r for r in results if is_mteb_result(r)]
    if not chosen:
        raise EmbedbenchError("no results of mteb tasks to export (run a suite with loader: mteb, "
                              "e.g. --suite mteb-multilingual-v2)")
    tasks = _mteb_tasks(mteb, chosen)
    groups = _group_scores(chosen, tasks)
    return [_save(_task_result(mteb, tasks[key.task], group), _model_meta(key, group), Path(out_dir))
            for key, group in sorted(groups.items())]


def _import_mteb() -> Any:
    try:
        import mteb
    except ImportError:
        raise EmbedbenchError("exporting to mteb's format needs the `mteb` package (pip install 'mteb>=2')") from None
    return mteb


def _mteb_tasks(mteb: Any, results: list[Result]) -> dict[str, Any]:
    """The installed mteb's task object for each task name the results came from."""
    tasks: dict[str, Any] = {}
    for r in results:
        name = mteb_task_name(r)
        assert name is not None
        if name not in tasks:
            try:
                tasks[name] = mteb.get_task(name)
            except KeyError:
                raise EmbedbenchError(f"result {r.task}/{r.language}/{r.split}: the installed mteb has no "
                                      f"task {name!r}") from None
    return tasks


class _GroupKey(NamedTuple):
    """One mteb result file: a model revision at one setting (experiment) on one task."""

    model: str
    revision: str
    experiment: str  # repr of the experiment kwargs, so keys sort and compare
    task: str


@dataclass
class _Group:
    model_name: str
    experiment: dict[str, str | int | float]
    dim: int
    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=lambda: defaultdict(dict))
    seconds: float = 0.0


def _group_scores(results: list[Result], tasks: dict[str, Any]) -> dict[_GroupKey, _Group]:
    """Each result's scores under its group's split and hf_subset; two results for one slot are refused."""
    full_dim: dict[tuple[str, str], int] = defaultdict(int)
    for r in results:
        full_dim[(r.model, r.revision)] = max(full_dim[(r.model, r.revision)], r.dim)
    names = mteb_model_names(results)
    groups: dict[_GroupKey, _Group] = {}
    for r in results:
        name = mteb_task_name(r)
        assert name is not None
        meta = tasks[name].metadata
        subset = r.language if meta.is_multilingual else "default"
        where = f"{r.model} {name} {subset}/{r.split} {r.precision}"
        if subset not in meta.hf_subsets_to_langscripts:
            raise EmbedbenchError(f"{where}: mteb task {name} has no hf_subset {subset!r}")
        exp = _experiment(r, full_dim[(r.model, r.revision)])
        key = _GroupKey(r.model, r.revision, repr(exp), name)
        if key not in groups:
            groups[key] = _Group(names[(r.model, r.revision)], exp, r.dim)
        group = groups[key]
        if subset in group.scores[r.split]:
            raise EmbedbenchError(f"{where}: two results for the same split and subset (suites "
                                  f"differ?); export one suite at a time")
        group.scores[r.split][subset] = _scores(r, meta.main_score, where)
        group.seconds += r.encode_seconds + r.search_seconds
    return groups


def _task_result(mteb: Any, task: Any, group: _Group) -> Any:
    return mteb.TaskResult.from_task_results(
        task, {split: dict(subsets) for split, subsets in group.scores.items()},
        evaluation_time=round(group.seconds, 3))


def _model_meta(key: _GroupKey, group: _Group) -> Any:
    from mteb.models.model_meta import ModelMeta

    return ModelMeta.create_empty({
        "name": group.model_name, "revision": key.revision, "embed_dim": group.dim,
        "experiment_kwargs": group.experiment or None,
    })


def _save(task_result: Any, model_meta: Any, out_dir: Path) -> Path:
    """mteb's own writer into a staging folder, then each file into place through embedbench.atomic,
    so a killed export never leaves a half-written mteb file; returns the task result's path."""
    import mteb

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".tmp-") as tmp:
        stage = Path(tmp)
        staged = mteb.ResultCache(stage).get_task_result_path(task_result.task_name, model_meta)
        final = out_dir / staged.relative_to(stage)
        if (final.parent / "run_settings.jsonl").exists():  # mteb merges new run settings into it
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(final.parent / "run_settings.jsonl", staged.parent / "run_settings.jsonl")
        mteb.ResultCache(stage).save_to_cache(task_result, model_meta)
        for path in sorted(staged.parent.iterdir(), key=lambda p: p == staged):  # the task result last
            atomic_write_bytes(final.parent / path.name, path.read_bytes())
    return final
