"""Reports, exports and the gate depend on results only: not on today's suite files, data loaders or presets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import from_suite, make_result

from embedbench.report import build_report
from embedbench.results import Result, read_results, write_result

# The default suite as a result run from it records it: {task: (type, corpus size its suite gives it)}.
DEFAULT = {"BFCLToolRetrieval": ("ToolRetrieval", None), "SyntheticQuery2Query": ("Query2Query", 6000),
           "SyntheticQuery2Doc": ("Query2Doc", 2000)}


def default_suite_results(root: Path) -> Path:
    """Model a with every default task (Q2D also at a larger --corpus-size), model b without Q2D."""
    runs = [("BFCLToolRetrieval", None), ("SyntheticQuery2Query", 6000), ("SyntheticQuery2Doc", 2000),
            ("SyntheticQuery2Doc", 20_000)]
    for model, precision, (task, size) in [(m, p, run) for m in "ab" for p in ("fp32", "int8") for run in runs]:
        if model == "b" and task == "SyntheticQuery2Doc":
            continue
        result, per_query = make_result(model, precision, 64, task)
        if size:
            result = result.model_copy(update={"variant": {"corpus_size": size}, "language": "mul"})
        write_result(root, from_suite(result, "default", DEFAULT), per_query)
    return root


def report_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_report_is_byte_identical_without_the_suites_folder(tmp_path, monkeypatch):
    results = default_suite_results(tmp_path / "results")
    build_report(results, tmp_path / "with")
    import embedbench.data.suites

    monkeypatch.setattr(embedbench.data.suites, "suites_dir", lambda: tmp_path / "suites-moved-away")
    monkeypatch.chdir(tmp_path)  # no ./suites either
    build_report(results, tmp_path / "without")
    assert report_bytes(tmp_path / "without") == report_bytes(tmp_path / "with")
    md = (tmp_path / "with" / "leaderboard.md").read_text(encoding="utf-8")
    assert "default mean over types" in md  # the task types came from the results
    assert "no result for SyntheticQuery2Doc (n=2,000)" in md  # b's row lacks a task the results recorded


def test_suite_mean_counts_a_sized_task_at_its_recorded_suite_size(tmp_path):
    from embedbench.report import build_grid

    results = default_suite_results(tmp_path / "results")
    grid = build_grid(read_results(results), results)
    row = next(r for r in grid.rows if r.key.model == "a" and r.precision == "fp32")
    by_task = {(t.task, t.size): r.main_score for t, r in row.cells.items()}
    mean, why = grid.suite_mean(row, "default")
    assert why == "" and mean == pytest.approx((by_task[("BFCLToolRetrieval", 0)] + by_task[("SyntheticQuery2Query", 6000)]
                                                + by_task[("SyntheticQuery2Doc", 2000)]) / 3)


FORBIDDEN = ("embedbench.data", "embedbench.encoders", "embedbench.engine")

_SCRIPT = """
import json, sys
from embedbench.cli.main import main
codes = [main(command) for command in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "modules": sorted(m for m in sys.modules if m.startswith("embedbench"))}))
"""


def loaded_modules(*commands: list[str]) -> tuple[list[int], list[str]]:
    """The exit codes of embedbench `commands` run in a fresh interpreter, and the embedbench modules it loaded."""
    done = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                          check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["codes"], answer["modules"]


def test_report_results_and_gate_never_load_data_encoders_or_the_engine(tmp_path):
    results = tmp_path / "results"
    for model in "ab":
        for task in ("T1", "T2"):
            write_result(results, *make_result(model, "fp32", 64, task))
    codes, modules = loaded_modules(
        ["report", "--results-dir", str(results), "--out", str(tmp_path / "out")],
        ["results", "--results-dir", str(results), "--format", "csv"],
        ["gate", "--baseline", f"results:{results},model=a", "--candidate", f"results:{results},model=b"])
    assert codes[:2] == [0, 0] and codes[2] in (0, 1)  # the gate ran to a verdict
    assert {"embedbench.report.figures", "embedbench.gate.core"} <= set(modules)
    assert [m for m in modules if m.startswith(FORBIDDEN)] == []


def mteb_result(model: str, hub_id: str | None) -> tuple[Result, dict[str, dict[str, float]]]:
    result, per_query = make_result(model, "fp32", 64, "SCIDOCS")
    provenance = result.provenance.model_copy(update={"dataset_source": "mteb:SCIDOCS test"})
    return result.model_copy(update={"provenance": provenance, "hub_id": hub_id}), per_query


def test_mteb_export_names_the_model_by_its_recorded_hub_id_and_loads_no_preset(tmp_path):
    pytest.importorskip("mteb")
    results = tmp_path / "results"
    write_result(results, *mteb_result("minilm-l6", "sentence-transformers/all-MiniLM-L6-v2"))
    write_result(results, *mteb_result("old-result", None))  # written before results recorded hub_id
    codes, modules = loaded_modules(
        ["results", "--results-dir", str(results), "--format", "mteb", "--out", str(tmp_path / "mteb")])
    assert codes == [0] and "embedbench.results.mteb_export" in modules
    assert [m for m in modules if m.startswith(FORBIDDEN)] == []
    folders = sorted(p.name for p in (tmp_path / "mteb" / "results").iterdir())
    assert folders == ["old-result", "sentence-transformers__all-MiniLM-L6-v2"]
