"""The command line: argument parsing, then one thin call into the library API per subcommand.

Bad input -> one line on stderr, exit 2. Heavy modules (the engine, torch, the report) are imported
by the subcommand that needs them, so `embedbench --help` and `embedbench list` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from embedbench.errors import EmbedbenchError

DEFAULT_MODEL = "minilm-l6"


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's default prints usage too)
        raise EmbedbenchError(f"{self.prog}: {message}")


def _add_eval_arguments(ev: argparse.ArgumentParser) -> None:
    ev.add_argument("--model", help=f"preset name, plugin name or local model folder (default: {DEFAULT_MODEL})")
    ev.add_argument("--plan", help="an eval plan (evals/NAME.yaml): models x suites x precisions x dims")
    ev.add_argument("--suite", action="append", help="suite name or YAML file (repeatable; default: default)")
    ev.add_argument("--dataset", action="append", help="FORMAT:PATH with FORMAT beir, squad or trec (repeatable)")
    ev.add_argument("--data-dir", help="where local datasets are read from (default: $EMBEDBENCH_DATA_DIR)")
    ev.add_argument("--precision", help="comma-separated precision specs (fp32,int8,binary,...); "
                    "default: fp32, or what the model serves (an int8 / binary HTTP endpoint)")
    ev.add_argument("--dims", type=_csv_ints, help="MRL truncation dims, e.g. 384,128")
    ev.add_argument("--corpus-size", type=_csv_ints, help="synthetic suites: corpus sizes, e.g. 1e3,1e4,1e5")
    ev.add_argument("--context", default="auto", choices=["auto", "none", "late-chunking"],
                    help="chunked tasks: encode chunks alone (none) or seeing their document (late-chunking)")
    ev.add_argument("--rescore-depth", type=int, default=100,
                    help="binary+int8 / binary+fp32: how many binary candidates are re-ranked")
    ev.add_argument("--generator", help="RAG tasks: hf:PATH or http(s)://HOST/v1?model=NAME answers from the top passages")
    ev.add_argument("--rag-k", type=int, default=5, help="RAG tasks: passages given to the generator")
    ev.add_argument("--results-dir", default="results")
    ev.add_argument("--limit-queries", type=int, help="evaluate a seeded sample of N queries")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--max-length", type=int, help="max tokens per text (default: the model's)")
    ev.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ev.add_argument("--engine", choices=["local", "ray"],
                    help="local (default): this process; ray: encode with Ray Data actors and search shards as "
                         "Ray tasks (pip install 'embedbench[ray]')")
    ev.add_argument("--shard-size", type=int, help="documents read and searched at a time (default 262144)")
    ev.add_argument("--ray-address", help="--engine ray: the cluster (default $RAY_ADDRESS, else a local one)")
    ev.add_argument("--workers", type=int, help="--engine ray: encoding actors (default: 2)")
    ev.add_argument("--gpus-per-worker", type=float, help="--engine ray: GPUs per actor (e.g. 1)")
    ev.add_argument("--cpus-per-worker", type=float, help="--engine ray: CPUs per actor (default 1)")
    ev.add_argument("--trust-remote-code", action="store_true",
                    help="load a pinned preset through its own hub code instead of embedbench's loader")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="embedbench", description="Evaluate text-embedding models for retrieval.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_eval_arguments(sub.add_parser("eval", help="evaluate a model on suites or datasets"))

    res = sub.add_parser("results", help="print stored results")
    res.add_argument("--results-dir", default="results")
    res.add_argument("--format", default="table", choices=["json", "csv", "table", "mteb"],
                     help="mteb: write mteb's TaskResult JSON layout under --out")
    res.add_argument("--out", help="with --format mteb: the folder to write")

    rep = sub.add_parser("report", help="leaderboards, trade-off tables and figures from stored results")
    rep.add_argument("--results-dir", default="results")
    rep.add_argument("--out", default="reports")

    from embedbench.gate import add_gate_arguments

    add_gate_arguments(sub.add_parser("gate", help="compare a candidate's results against a baseline's"))

    ls = sub.add_parser("list", help="list models, suites or tasks")
    ls.add_argument("what", choices=["models", "suites", "tasks"])
    ls.add_argument("--suite", help="only the tasks of this suite")
    ls.add_argument("--format", default="table", choices=["table", "json"])

    _add_cache_arguments(sub.add_parser(
        "cache", help="show or prune the embedding cache ($EMBEDBENCH_CACHE_DIR/embeddings)",
        description="The embedding cache keeps every encoded text, one folder (namespace) per model + encode "
                    "settings + role. 'last used' is when a run last wrote into a namespace (reads leave no trace)."))
    return parser


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
        print("note: no --generator given: RAG tasks report retrieval-side metrics only (answer_recall_at_k)",
              file=sys.stderr)
    return 0


def _eval_settings(args: argparse.Namespace, argv: list[str]) -> dict[str, object]:
    """The `evaluate` arguments a plan's runs share with a single run."""
    given = {"engine": args.engine, "shard_size": args.shard_size, "ray_address": args.ray_address,
             "workers": args.workers, "gpus_per_worker": args.gpus_per_worker, "cpus_per_worker": args.cpus_per_worker}
    return dict(results_dir=args.results_dir, data_dir=args.data_dir, batch_size=args.batch_size,
                max_length=args.max_length, device=args.device, trust_remote_code=args.trust_remote_code,
                corpus_sizes=args.corpus_size, context=args.context, rescore_depth=args.rescore_depth,
                generator=args.generator, rag_k=args.rag_k, command=["embedbench", *argv],
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

    for path in build_report(Path(args.results_dir), Path(args.out)):
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


COMMANDS: dict[str, Callable[[argparse.Namespace, list[str]], int]] = {
    "eval": eval_command, "results": results_command, "report": report_command, "gate": gate_command,
    "list": list_command, "cache": cache_command,
}
