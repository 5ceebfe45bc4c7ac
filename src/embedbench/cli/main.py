"""The command line: argument parsing, then one thin call into the library API per subcommand.

Bad input -> one line on stderr, exit 2. Results go to stdout; progress and log lines to stderr
(`cli.logs`, set by -v / -q before or after the subcommand). Heavy modules (the engine, torch, the
report, the gate's statistics) are imported by the subcommand that needs them, so `embedbench --help`
and `embedbench list` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embedbench.cli.logs import DEFAULT, QUIET, VERBOSE, configure_logging
from embedbench.errors import EmbedbenchError

DEFAULT_MODEL = "minilm-l6"


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """One-line errors; `add_later` adds a subcommand's options when that subcommand is used or asked for help,
    so `embedbench --help` and the other subcommands never import its module (the gate's statistics)."""

    def __init__(self, *args: Any, add_later: Callable[[argparse.ArgumentParser], object] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_later = add_later

    def complete(self) -> argparse.ArgumentParser:
        if self._add_later is not None:
            add, self._add_later = self._add_later, None
            add(self)
        return self

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        return super(_Parser, self.complete()).parse_known_args(args, namespace)

    def format_help(self) -> str:
        return super(_Parser, self.complete()).format_help()

    def error(self, message: str) -> None:  # one line, exit 2 (argparse's default prints usage too)
        raise EmbedbenchError(f"{self.prog}: {message}")


MODEL_HELP = (
    f"the model to evaluate (default: {DEFAULT_MODEL}): a preset name (see `embedbench list models`); a local model "
    "folder (sentence-transformers or transformers layout); hf:ORG/NAME[@REV][?pooling=mean|cls|last-token] "
    "(a hub model through transformers); onnx:FOLDER (onnxruntime); http(s)://HOST/... (an embeddings API "
    "endpoint); or a plugin's registered name")
DEVICE_HELP = "where torch models run: cpu (default), cuda, cuda:N (the N-th GPU) or mps (Apple GPUs)"
DTYPE_HELP = ("compute dtype of torch models: auto (default: float32 on cpu, bf16 (else fp16) autocast on a GPU; "
              "sentence-transformers models: the checkpoint's own dtype), fp32, bf16 or fp16 (fp16 needs a GPU); "
              "a dtype other than float32 is recorded in the result's variant")
INDEX_HELP = ("search index(es), each measured on the same vectors: exact (default) or faiss indexes: "
              "hnsw:m=32:ef=256, ivf:nlist=4096:nprobe=32, sq8, ivfpq:nlist=4096:m=64:nprobe=32, binary-hnsw:m=32")


def _add_eval_arguments(ev: argparse.ArgumentParser) -> None:
    ev.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
    ev.add_argument("--plan", help="an eval plan (evals/NAME.yaml): models x suites x precisions x dims")
    ev.add_argument("--suite", action="append", help="suite name or YAML file (repeatable; default: default; "
                    "see `embedbench list suites`)")
    ev.add_argument("--dataset", action="append", metavar="FORMAT:PATH",
                    help="a local dataset: beir:DIR, squad:FILE or trec:DIR (repeatable)")
    ev.add_argument("--data-dir", help="where local datasets are read from (default: $EMBEDBENCH_DATA_DIR)")
    ev.add_argument("--precision", metavar="SPEC[,SPEC...]", help="comma-separated precision specs: fp32, fp16, "
                    "int8, binary, int8:posthoc, binary:posthoc, binary+int8, binary+fp32; default: fp32, or what "
                    "the model serves (an int8 / binary HTTP endpoint)")
    ev.add_argument("--dims", type=_csv_ints, metavar="D[,D...]", help="MRL truncation dims, e.g. 384,128")
    ev.add_argument("--corpus-size", type=_csv_ints, metavar="N[,N...]",
                    help="synthetic suites: corpus sizes, e.g. 1e3,1e4,1e5")
    ev.add_argument("--context", default="auto", choices=["auto", "none", "late-chunking"],
                    help="chunked tasks: encode chunks alone (none) or seeing their document (late-chunking); "
                         "auto: late-chunking for contextual models, else none")
    ev.add_argument("--rescore-depth", type=int, default=100, metavar="N",
                    help="binary+int8 / binary+fp32: how many binary candidates are re-ranked (default: 100)")
    ev.add_argument("--index", metavar="SPEC[,SPEC...]", help=INDEX_HELP)
    ev.add_argument("--rerank-with", metavar="MODEL",
                    help="re-rank the first stage's top documents by a multi-vector model's MaxSim")
    ev.add_argument("--rerank-depth", type=int, default=100, metavar="N",
                    help="with --rerank-with: how many first-stage documents are re-ranked (default: 100)")
    ev.add_argument("--generator", help="RAG tasks: hf:PATH or http(s)://HOST/v1?model=NAME answers from the top "
                    "passages (adds match, exact_match, f1)")
    ev.add_argument("--rag-k", type=int, default=5, metavar="K",
                    help="RAG tasks: passages given to the generator (default: 5)")
    ev.add_argument("--results-dir", default="results", help="where results are written (default: results)")
    ev.add_argument("--limit-queries", type=int, metavar="N", help="evaluate a seeded sample of N queries per task")
    ev.add_argument("--batch-size", type=int, default=32, metavar="N",
                    help="texts per forward pass (default: 32); changes speed and memory, not scores")
    ev.add_argument("--max-length", type=int, metavar="N", help="max tokens per text (default: the model's)")
    ev.add_argument("--device", default="cpu", help=DEVICE_HELP)
    ev.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], help=DTYPE_HELP)
    ev.add_argument("--engine", choices=["local", "ray"],
                    help="local (default): this process; ray: encode with Ray Data actors and search shards as "
                         "Ray tasks (pip install 'embedbench[ray]')")
    ev.add_argument("--shard-size", type=int, metavar="N", help="documents read and searched at a time "
                    "(default: 262144)")
    ev.add_argument("--ray-address", help="--engine ray: the cluster (default: $RAY_ADDRESS, else a local one)")
    ev.add_argument("--workers", type=int, metavar="N", help="--engine ray: encoding actors (default: 2)")
    ev.add_argument("--gpus-per-worker", type=float, metavar="G", help="--engine ray: GPUs per actor (e.g. 1)")
    ev.add_argument("--cpus-per-worker", type=float, metavar="C", help="--engine ray: CPUs per actor (default: 1)")
    ev.add_argument("--trust-remote-code", action="store_true",
                    help="load a pinned preset through its own hub code instead of embedbench's loader")


def _add_verbosity(parser: argparse.ArgumentParser, top: bool) -> None:
    """-v / -q before the subcommand, or after it: a subcommand's copy sets nothing unless given."""
    group = parser.add_mutually_exclusive_group()
    unset = {} if top else {"default": argparse.SUPPRESS}
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=VERBOSE, **unset,
                       help="debug output, and the hub's downloads and every HTTP request (retries too)")
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=QUIET, **unset,
                       help="warnings and errors only; no progress lines or bars")
    if top:
        parser.set_defaults(verbosity=DEFAULT)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"embedbench {version('embedbench')}"
    except PackageNotFoundError:  # a source tree on sys.path without an install
        return "embedbench (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="embedbench", description="Evaluate text-embedding models for retrieval.",
                     epilog="Progress and log lines go to stderr, results to stdout. "
                            "Run `embedbench COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    _add_verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    _add_eval_arguments(sub.add_parser("eval", help="evaluate a model on suites or datasets"))

    res = sub.add_parser("results", help="print stored results")
    res.add_argument("--results-dir", default="results", help="where results are read from (default: results)")
    res.add_argument("--format", default="table", choices=["json", "csv", "table", "mteb"],
                     help="table (default), json, csv; mteb: write mteb's TaskResult JSON layout under --out")
    res.add_argument("--out", help="with --format mteb: the folder to write")

    rep = sub.add_parser("report", help="leaderboards, trade-off tables and figures from stored results")
    rep.add_argument("--results-dir", default="results", help="where results are read from (default: results)")
    rep.add_argument("--out", default="reports", help="where tables and figures are written (default: reports)")
    rep.add_argument("--price-per-mtok", type=float, metavar="PRICE",
                     help="price per million tokens of an embedding API: cost.md prices embedding 10^9 pages at the "
                          "tokens/page `embedbench latency` measured (never assumed)")
    rep.add_argument("--gpu-hour-cost", type=float, metavar="PRICE",
                     help="price per hour of the device `embedbench latency` measured on: cost.md prices embedding "
                          "10^9 pages at its pages/s")

    sub.add_parser("gate", help="compare a candidate's results against a baseline's", add_later=_add_gate_arguments)

    ls = sub.add_parser("list", help="list models, suites or tasks")
    ls.add_argument("what", choices=["models", "suites", "tasks"], help="what to list")
    ls.add_argument("--suite", help="with tasks: only the tasks of this suite")
    ls.add_argument("--format", default="table", choices=["table", "json"], help="table (default) or json")

    _add_cache_arguments(sub.add_parser(
        "cache", help="show or prune the embedding cache ($EMBEDBENCH_CACHE_DIR/embeddings)",
        description="The embedding cache keeps every encoded text, one folder (namespace) per model + encode "
                    "settings + role. 'last used' is when a run last wrote into a namespace (reads leave no trace)."))
    sub.add_parser("latency", help="single-query encode latency and batch throughput of a model on this device",
                   add_later=_add_latency_arguments)
    sub.add_parser(
        "data", help="fetch the local suites' datasets (xquad-r, vaswani, codebase-contextual) or list them",
        description="The local suites read their datasets from the data folder ($EMBEDBENCH_DATA_DIR or "
                    "--data-dir). `data fetch NAME` downloads one from its pinned public source, checksums "
                    "verified; `data list` shows which are there.", add_later=_add_data_arguments)
    for child in _subparsers(parser):
        _add_verbosity(child, top=False)
    return parser


def _add_data_arguments(data: argparse.ArgumentParser) -> None:
    from embedbench.cli.data import add_data_arguments  # reads the data layer: only when `data` is used

    add_data_arguments(data)


def _add_latency_arguments(latency: argparse.ArgumentParser) -> None:
    from embedbench.cli.latency import add_latency_arguments

    add_latency_arguments(latency)


def _add_gate_arguments(gate: argparse.ArgumentParser) -> None:
    from embedbench.gate import add_gate_arguments

    add_gate_arguments(gate)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones (cache info / prune) included."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                out += [child, *_subparsers(child)]
    return out


def _add_cache_arguments(cache: argparse.ArgumentParser) -> None:
    what = cache.add_subparsers(dest="cache_command", required=True, parser_class=_Parser, metavar="{info,prune}")
    dir_help = "the cache root (default: $EMBEDBENCH_CACHE_DIR, else ~/.cache/embedbench)"
    info = what.add_parser(
        "info", help="one row per namespace: model, revision, role, settings, texts, size, last used",
        description="One row per cache namespace: model (hub id or fingerprint), revision, role, dim, texts, size "
                    "on disk, last used (when a run last wrote into it), whether a running eval holds it, settings; "
                    "then totals.")
    info.add_argument("--cache-dir", help=dir_help)
    info.add_argument("--format", default="table", choices=["table", "json"],
                      help="json: full settings, sizes in bytes")
    prune = what.add_parser(
        "prune", help="remove namespaces by model and/or age, or leftovers of killed runs",
        description="Remove the namespaces matching every filter given. A namespace a running eval holds (its lock) "
                    "is never removed: it is skipped with a message. Removal takes the lock, renames the folder "
                    "away atomically, then deletes it.")
    prune.add_argument("--model", metavar="M", help="a preset name, hub id (any revision), fingerprint or glob "
                       "(e.g. 'Qwen/*'), matched against what key.json records")
    prune.add_argument("--older-than", metavar="AGE", help="last used (last written) more than AGE ago: Nd or Nh, "
                       "e.g. 30d or 12h")
    prune.add_argument("--all", action="store_true", help="every namespace (not with --model / --older-than)")
    prune.add_argument("--orphans", action="store_true", help="also (or only) remove leftovers of killed runs: "
                       ".tmp-* files, half-written chunks, trash folders of an interrupted prune")
    prune.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    prune.add_argument("--cache-dir", help=dir_help)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        configure_logging(args.verbosity)
        return COMMANDS[args.command](args, argv)
    except EmbedbenchError as exc:
        print(f"embedbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("embedbench: interrupted", file=sys.stderr)
        return 130


def eval_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.results.table import format_results

    results = _evaluate_plan(args, argv) if args.plan is not None else _evaluate_model(args, argv)
    print(format_results(results, "table"))
    if not args.generator and any(k.startswith("answer_recall_at_") for r in results for k in r.metrics):
        logging.getLogger("embedbench.cli").info(
            "note: no --generator given: RAG tasks report retrieval-side metrics only (answer_recall_at_k)")
    return 0


def _eval_settings(args: argparse.Namespace, argv: list[str]) -> dict[str, object]:
    """The `evaluate` arguments a plan's runs share with a single run."""
    # Only what was given: a plan's own setting (its engine, ...) stands unless the command line names one.
    given = {"engine": args.engine, "shard_size": args.shard_size, "ray_address": args.ray_address,
             "workers": args.workers, "gpus_per_worker": args.gpus_per_worker, "cpus_per_worker": args.cpus_per_worker,
             "dtype": args.dtype, "index": args.index, "rerank_with": args.rerank_with,
             "corpus_sizes": args.corpus_size}
    return dict(results_dir=args.results_dir, data_dir=args.data_dir, batch_size=args.batch_size,
                max_length=args.max_length, device=args.device, trust_remote_code=args.trust_remote_code,
                context=args.context, rescore_depth=args.rescore_depth,
                rerank_depth=args.rerank_depth, generator=args.generator, rag_k=args.rag_k, command=["embedbench", *argv],
                **{k: v for k, v in given.items() if v is not None})


def _evaluate_model(args: argparse.Namespace, argv: list[str]) -> list:
    from embedbench.engine.runner import evaluate

    return evaluate(args.model or DEFAULT_MODEL, suite=args.suite, dataset=args.dataset, precisions=args.precision,
                    dims=args.dims, limit_queries=args.limit_queries, **_eval_settings(args, argv))


def _evaluate_plan(args: argparse.Namespace, argv: list[str]) -> list:
    if args.model or args.suite or args.dataset:
        raise EmbedbenchError("--plan names its own models and suites; drop --model/--suite/--dataset")
    if args.precision is not None or args.dims is not None:
        # A plan's precisions and dims are what its gate compares; a flag would be silently ignored.
        raise EmbedbenchError("--plan names its own precisions and dims; drop --precision/--dims "
                              "(or edit the plan)")
    from embedbench.engine.plans import evaluate_plan
    from embedbench.plans import load_plan

    return evaluate_plan(load_plan(args.plan), limit_queries=args.limit_queries, **_eval_settings(args, argv))


def results_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.results import read_results
    from embedbench.results.table import format_results

    results = read_results(Path(args.results_dir))
    if args.format == "mteb":
        return _export_mteb(results, args.out)
    print(format_results(results, args.format))
    return 0


def _export_mteb(results: list, out: str | None) -> int:
    from embedbench.results.mteb_export import export_mteb_results, is_mteb_result

    if not out:
        raise EmbedbenchError("--format mteb needs --out DIR")
    exportable = [r for r in results if is_mteb_result(r)]
    if not exportable:
        raise EmbedbenchError("no result came from an mteb task (suite mteb-multilingual-v2); nothing to export")
    for path in export_mteb_results(exportable, Path(out)):
        print(path)
    if len(exportable) < len(results):
        print(f"skipped {len(results) - len(exportable)} results that are not mteb tasks", file=sys.stderr)
    return 0


def report_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.report import build_report

    for path in build_report(Path(args.results_dir), Path(args.out), price_per_mtok=args.price_per_mtok,
                             gpu_hour_cost=args.gpu_hour_cost):
        print(path)
    return 0


def gate_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.gate import gate_main

    return gate_main(args)


def list_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.cli.listing import format_rows, list_rows

    print(format_rows(list_rows(args.what, args.suite), args.format))
    return 0


def cache_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.engine.cache_admin import run_info, run_prune

    if args.cache_command == "info":
        return run_info(args.cache_dir, args.format)
    return run_prune(args.cache_dir, model=args.model, older_than=args.older_than, everything=args.all,
                     orphans=args.orphans, dry_run=args.dry_run)


def latency_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.cli.latency import latency_command as run_latency

    return run_latency(args, argv)


def data_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.cli.data import data_command as run_data

    return run_data(args, argv)


COMMANDS: dict[str, Callable[[argparse.Namespace, list[str]], int]] = {
    "eval": eval_command, "results": results_command, "report": report_command, "gate": gate_command,
    "list": list_command, "cache": cache_command, "data": data_command,
    "latency": latency_command,
}
