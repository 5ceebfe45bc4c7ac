"""`embedbench gate`: arguments and entry point (wire with add_gate_arguments + gate_main)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from embedbench.atomic import atomic_write_text
from embedbench.errors import EmbedbenchError
from embedbench.gate.core import run_gate
from embedbench.gate.report import GateReport


def add_gate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the gate's options to `parser` (a subparser of the embedbench CLI)."""
    parser.add_argument("--baseline", required=True, help="results:DIR or filters like model=NAME,precision=fp32")
    parser.add_argument("--candidate", required=True, help="results:DIR or filters like model=NAME,precision=fp32")
    parser.add_argument("--eval", dest="eval_plan", metavar="PLAN", help="eval plan (evals/NAME.yaml) with gate thresholds")
    parser.add_argument("--results-dir", default="results", help="where filter selectors look (default: results)")
    parser.add_argument("--max-drop", type=float, help="allowed absolute drop per task (default: plan or 0.01)")
    parser.add_argument("--max-suite-drop", type=float, help="allowed drop of a suite's task average (default: plan)")
    parser.add_argument("--alpha", type=float, help="family-wise error rate, Holm over tasks (default: plan or 0.05)")
    parser.add_argument("--min-queries", type=int, help="fewer queries: inconclusive (default: plan or 30)")
    parser.add_argument("--metric", help="metric to gate on (default: plan or each task's main score)")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="also write the JSON report here")
    parser.add_argument("--markdown", dest="markdown_path", metavar="PATH", help="also write the markdown summary here")
    parser.add_argument("--format", dest="stdout_format", default="markdown", choices=["markdown", "json"],
                        help="what to print on stdout (default: markdown)")
    return parser


def gate_main(args: argparse.Namespace) -> int:
    """Run the gate for parsed `args`; 0 pass, 1 regression. Bad input raises EmbedbenchError (exit 2).

    Prints the markdown summary (or JSON with --format json), writes --json / --markdown files and
    appends the summary to $GITHUB_STEP_SUMMARY when that is set. Nothing is written on bad input.
    """
    report: GateReport = run_gate(
        args.baseline,
        args.candidate,
        plan=args.eval_plan,
        results_dir=args.results_dir,
        max_drop=args.max_drop,
        max_suite_drop=getattr(args, "max_suite_drop", None),
        alpha=args.alpha,
        min_queries=args.min_queries,
        metric=getattr(args, "metric", None),
    )
    markdown, as_json = report.markdown(), report.model_dump_json(indent=2)
    try:
        if args.json_path:
            atomic_write_text(Path(args.json_path), as_json + "\n")
        if args.markdown_path:
            atomic_write_text(Path(args.markdown_path), markdown)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(markdown + "\n")
    except OSError as exc:
        raise EmbedbenchError(f"cannot write the gate report: {exc}") from None
    fmt = getattr(args, "stdout_format", "markdown")
    sys.stdout.write(as_json + "\n" if fmt == "json" else markdown)
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    """`python -m embedbench.gate ...`: the same as `embedbench gate ...` (one-line errors, exit 2)."""
    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:
            raise EmbedbenchError(f"{self.prog}: {message}")

    parser = add_gate_arguments(_Parser(prog="embedbench gate", description="Regression gate over stored results."))
    try:
        return gate_main(parser.parse_args(sys.argv[1:] if argv is None else argv))
    except EmbedbenchError as exc:
        print(f"embedbench: error: {exc}", file=sys.stderr)
        return 2
