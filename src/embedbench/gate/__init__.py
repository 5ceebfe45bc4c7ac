"""Regression gate: compare a candidate's stored results with a baseline's, per query, with statistics.

Reads results only (never runs a model). See `embedbench.gate.core` for the procedure.

    from embedbench.gate import run_gate
    report = run_gate("results:results/baselines", "model=checkpoints/latest", plan="evals/checkpoint-gate.yaml")
    print(report.markdown()); raise SystemExit(report.exit_code)
"""

from embedbench.gate.cli import add_gate_arguments, gate_main, main
from embedbench.gate.core import run_gate
from embedbench.gate.report import GateReport, GateSettings, Side, SuiteCheck, TaskComparison
from embedbench.gate.selectors import Selector, parse_selector
from embedbench.gate.stats import bootstrap_ci, holm, sign_flip_pvalue

__all__ = [
    "GateReport", "GateSettings", "Side", "SuiteCheck", "TaskComparison",
    "Selector", "add_gate_arguments", "bootstrap_ci", "gate_main", "holm", "main", "parse_selector",
    "run_gate", "sign_flip_pvalue",
]
