"""Loaders for the synthetic suites (LOADERS "synthetic-q2q" and "synthetic-q2d").

Task options (all optional): seed (int), languages (list of codes), n_queries (judged queries),
corpus_size (total corpus items when --corpus-size is not given), by_language (one subset per query
language, all searching the same mixed-language corpus; default false: one subset "mul").
The subset's variant is {"corpus_size": N}, so results at different sizes never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Callable

from embedbench.data.spec import SyntheticOptions, TaskSpec
from embedbench.data.tasks import LoadContext, TaskData
from embedbench.data.types import RetrievalData
from embedbench.errors import EmbedbenchError
from embedbench.data.synthetic.common import Config
from embedbench.data.synthetic.q2d import build_q2d
from embedbench.data.synthetic.q2q import build_q2q
from embedbench.data.synthetic.templates import LANGUAGES


OPTIONS = tuple(SyntheticOptions.model_fields)  # the schema a suite file is checked against
DEFAULTS = {"q2q": {"n_queries": 1200, "corpus_size": 50_000}, "q2d": {"n_queries": 600, "corpus_size": 10_000}}


def _int(value: object, what: str, minimum: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EmbedbenchError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_options(spec: TaskSpec, suite: str, corpus_size: int | None) -> tuple[Config, int, bool]:
    """(generator config, corpus size, by_language) from the task's options and --corpus-size."""
    opts = dict(spec.options)
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise EmbedbenchError(f"task {spec.name!r}: unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
    langs = opts.get("languages", list(LANGUAGES))
    if isinstance(langs, str):
        langs = [c.strip() for c in langs.split(",") if c.strip()]
    if not isinstance(langs, list) or not all(isinstance(c, str) for c in langs):
        raise EmbedbenchError(f"task {spec.name!r}: languages must be a list of codes like [en, de]")
    cfg = Config(
        seed=_int(opts.get("seed", 0), f"task {spec.name!r}: seed", 0),
        languages=tuple(langs),
        n_queries=_int(opts.get("n_queries", DEFAULTS[suite]["n_queries"]), f"task {spec.name!r}: n_queries", 1),
    )
    size = corpus_size if corpus_size is not None else opts.get("corpus_size", DEFAULTS[suite]["corpus_size"])
    by_language = opts.get("by_language", False)
    if not isinstance(by_language, bool):
        raise EmbedbenchError(f"task {spec.name!r}: by_language must be true or false")
    return cfg, _int(size, f"task {spec.name!r}: corpus_size", 1), by_language


def default_corpus_size(spec: TaskSpec) -> int:
    """The corpus size a synthetic task runs at without --corpus-size: its option, else the loader's default."""
    return parse_options(spec, spec.loader.removeprefix("synthetic-"), None)[1]


def _subsets(spec: TaskSpec, data: RetrievalData, cfg: Config, size: int, by_language: bool) -> list[TaskData]:
    variant: dict[str, str | int | float] = {"corpus_size": size}
    if not by_language:
        code = cfg.languages[0] if len(cfg.languages) == 1 else "mul"
        return [TaskData(code, spec.split, data, variant)]
    out = []
    for code in cfg.languages:
        qids = [q for q, query in data.queries.items() if query.language == code]
        sub = RetrievalData(corpus=data.corpus, queries={q: data.queries[q] for q in qids},
                            qrels={q: data.qrels[q] for q in qids}, source=f"{data.source}[{code}]",
                            extra=dict(data.extra))
        out.append(TaskData(code, spec.split, sub.validate(), dict(variant)))
    return out


def _load(spec: TaskSpec, ctx: LoadContext, suite: str,
          build: Callable[[Config, int], RetrievalData]) -> list[TaskData]:
    cfg, size, by_language = parse_options(spec, suite, ctx.corpus_size)
    return _subsets(spec, build(cfg, size), cfg, size, by_language)


def load_q2q_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    """Synthetic Query2Query: relevant = the other members of the query's cluster."""
    return _load(spec, ctx, "q2q", build_q2q)


def load_q2d_task(spec: TaskSpec, ctx: LoadContext) -> list[TaskData]:
    """Synthetic Query2Doc: relevant = the pages stating the asked fact."""
    return _load(spec, ctx, "q2d", build_q2d)
