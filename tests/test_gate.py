"""The regression gate: pairing, input errors (exit 2), statistics, verdicts and reports.

Results are synthetic (write_result + fake per-query scores); no model runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from embedbench.errors import EmbedbenchError
from embedbench.gate import holm, main, parse_selector, run_gate, sign_flip_pvalue
from embedbench.gate.stats import bootstrap_ci
from embedbench.results import Provenance, Result, per_query_path, result_path, write_result

METRIC = "ndcg_at_10"


def ndcg_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-query scores shaped like nDCG@10: many 0s and 1s, the rest spread between."""
    kind = rng.random(n)
    return np.where(kind < 0.3, 0.0, np.where(kind < 0.6, 1.0, rng.random(n)))


def put(
    root: Path,
    model: str,
    scores,
    *,
    task: str = "T1",
    suite: str = "default",
    precision: str = "fp32",
    dim: int = 384,
    dataset_hash: str = "data-1",
    variant: dict | None = None,
    revision: str | None = None,
    qids: list[str] | None = None,
    metric: str = METRIC,
) -> Result:
    scores = [float(s) for s in scores]
    qids = qids or [f"q{i}" for i in range(len(scores))]
    mean = float(np.mean(scores)) if scores else 0.0
    result = Result(
        model=model, revision=revision or f"rev-{model}", suite=suite, task=task, split="test", language="en",
        precision=precision, quantization="none", dim=dim, variant=variant or {}, main_score_name=metric,
        main_score=mean, metrics={metric: mean}, n_queries=len(scores), n_docs=1000, bytes_per_vector=4 * dim,
        encode_seconds=0.0, search_seconds=0.0, docs_per_second=None,
        provenance=Provenance(
            embedbench_version="0.1.0", git_commit=None, packages={}, command=["test"], model_fingerprint=model,
            dataset_hash=dataset_hash, device="cpu", batch_size=1, max_length=None, truncated_share={},
            texts_encoded=0, texts_cached=0, created_at="2026-01-01T00:00:00+00:00",
        ),
    )
    write_result(root, result, {metric: dict(zip(qids, scores))})
    return result


def gate_cli(*args: str, capsys) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def base_scores() -> np.ndarray:
    return ndcg_like(np.random.default_rng(1), 200)


# --- verdicts -----------------------------------------------------------------------------------

def test_identical_candidate_passes(tmp_path, base_scores, capsys):
    for task in ("T1", "T2"):
        put(tmp_path / "b", "base", base_scores, task=task)
        put(tmp_path / "c", "cand", base_scores, task=task)
    code, out, err = gate_cli("--baseline", f"results:{tmp_path / 'b'}", "--candidate", f"results:{tmp_path / 'c'}",
                              capsys=capsys)
    assert code == 0, err
    assert "**PASS**" in out
    report = run_gate(f"results:{tmp_path / 'b'}", f"results:{tmp_path / 'c'}")
    assert report.exit_code == 0 and report.verdict == "PASS"
    assert [t.verdict for t in report.tasks] == ["pass", "pass"]
    assert all(t.delta == 0 and t.p_value == 1.0 and t.p_holm == 1.0 for t in report.tasks)


def test_large_drop_on_many_queries_fails(tmp_path, base_scores, capsys):
    rng = np.random.default_rng(2)
    worse = np.where(rng.random(base_scores.size) < 0.8, np.clip(base_scores - 0.3, 0, 1), base_scores)
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", worse)
    code, out, err = gate_cli("--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(tmp_path),
                              capsys=capsys)
    assert code == 1, err
    assert "**FAIL**" in out
    report = run_gate("model=base", "model=cand", results_dir=tmp_path)
    (task,) = report.tasks
    assert task.verdict == "fail" and task.drop > 0.1 and task.p_holm < 0.001
    assert task.ci_high < 0 < task.drop
    assert report.failures and "T1" in report.failures[0]


def test_small_noisy_drop_is_not_a_failure(tmp_path, base_scores):
    rng = np.random.default_rng(3)
    noisy = np.clip(base_scores + rng.normal(-0.004, 0.05, base_scores.size), 0, 1)
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", noisy)
    report = run_gate("model=base", "model=cand", results_dir=tmp_path)
    (task,) = report.tasks
    assert 0 < task.drop < 0.01
    assert task.verdict == "pass" and report.exit_code == 0


def test_drop_above_allowed_but_not_significant_passes_with_warning(tmp_path):
    base = np.full(40, 0.5)
    cand = base + np.array([0.5] * 19 + [-0.5] * 21)  # mean drop 0.025, a coin's worth of evidence
    put(tmp_path, "base", base)
    put(tmp_path, "cand", cand)
    report = run_gate("model=base", "model=cand", results_dir=tmp_path)
    (task,) = report.tasks
    assert task.drop == pytest.approx(0.025) and task.p_holm > 0.3
    assert task.verdict == "pass" and report.exit_code == 0
    assert any("not significant" in w for w in report.warnings)


def test_task_with_three_queries_is_inconclusive_not_failure(tmp_path, base_scores, capsys):
    put(tmp_path / "b", "base", base_scores, task="Big")
    put(tmp_path / "c", "cand", base_scores, task="Big")
    put(tmp_path / "b", "base", [1.0, 1.0, 1.0], task="Tiny")
    put(tmp_path / "c", "cand", [0.0, 0.0, 0.0], task="Tiny")
    code, out, err = gate_cli("--baseline", f"results:{tmp_path / 'b'}", "--candidate", f"results:{tmp_path / 'c'}",
                              capsys=capsys)
    assert code == 0, err
    report = run_gate(f"results:{tmp_path / 'b'}", f"results:{tmp_path / 'c'}")
    tiny = next(t for t in report.tasks if t.task == "Tiny")
    assert tiny.verdict == "inconclusive" and tiny.p_holm is None and tiny.drop == 1.0
    assert any("Tiny" in w and "inconclusive" in w for w in report.warnings)
    assert "inconclusive" in out
    # the flag lowers the bar; then the same task is tested (and, with 3 queries, cannot reach p < 0.05)
    low = run_gate(f"results:{tmp_path / 'b'}", f"results:{tmp_path / 'c'}", min_queries=3)
    tiny = next(t for t in low.tasks if t.task == "Tiny")
    assert tiny.verdict == "pass" and tiny.p_value == pytest.approx(1 / 8)


def test_suite_average_rule(tmp_path):
    rng = np.random.default_rng(4)
    for i, task in enumerate(("A", "B", "C")):
        base = ndcg_like(rng, 300)
        # A drops 0.008 on every query (significant, within the per-task 0.01); B and C unchanged
        cand = base - 0.008 if task == "A" else base
        put(tmp_path / "b", "base", base, task=task)
        put(tmp_path / "c", "cand", cand, task=task)
    sel = (f"results:{tmp_path / 'b'}", f"results:{tmp_path / 'c'}")
    assert run_gate(*sel).exit_code == 0  # no suite rule without max_suite_drop
    report = run_gate(*sel, max_suite_drop=0.002)  # mean drop 0.008 / 3 = 0.0027 > 0.002, A significant
    assert report.exit_code == 1
    (suite,) = report.suites
    assert suite.verdict == "fail" and suite.significant and suite.mean_drop == pytest.approx(0.008 / 3)
    assert all(t.verdict == "pass" for t in report.tasks)
    assert run_gate(*sel, max_suite_drop=0.003).exit_code == 0


def test_precisions_compared_when_selectors_pin_them(tmp_path, base_scores):
    put(tmp_path, "m", base_scores, precision="fp32")
    put(tmp_path, "m", np.clip(base_scores - 0.2, 0, 1), precision="int8")
    report = run_gate("model=m,precision=fp32", "model=m,precision=int8", results_dir=tmp_path)
    (task,) = report.tasks
    assert (task.baseline_precision, task.candidate_precision) == ("fp32", "int8")
    assert task.verdict == "fail"
    assert "fp32->int8" in report.markdown()


def test_plan_thresholds_apply_and_flags_override(tmp_path, base_scores):
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", base_scores - 0.015)  # every query 0.015 lower
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: p\nmodels: [cand]\nsuites: [default]\nprecisions: [fp32]\ngate: {max_task_drop: 0.02}\n")
    by_plan = run_gate("model=base", "model=cand", results_dir=tmp_path, plan=str(plan))
    assert by_plan.exit_code == 0 and by_plan.settings.max_task_drop == 0.02
    assert run_gate("model=base", "model=cand", results_dir=tmp_path, plan=str(plan), max_drop=0.01).exit_code == 1
    assert run_gate("model=base", "model=cand", results_dir=tmp_path).exit_code == 1  # default 0.01


def test_plan_scope_leaves_out_other_precisions(tmp_path, base_scores):
    for model in ("base", "cand"):
        put(tmp_path, model, base_scores, precision="fp32")
        put(tmp_path, model, base_scores, precision="fp16")
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: p\nmodels: [cand]\nprecisions: [fp32]\n")
    report = run_gate("model=base", "model=cand", results_dir=tmp_path, plan=str(plan))
    assert [t.baseline_precision for t in report.tasks] == ["fp32"]
    assert any("outside plan" in w for w in report.warnings)


def test_report_is_deterministic(tmp_path, base_scores):
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", np.clip(base_scores + np.random.default_rng(5).normal(0, 0.1, base_scores.size), 0, 1))
    a = run_gate("model=base", "model=cand", results_dir=tmp_path)
    b = run_gate("model=base", "model=cand", results_dir=tmp_path)
    assert a.model_dump() == b.model_dump()


# --- reports --------------------------------------------------------------------------------------

def test_markdown_json_files_and_step_summary(tmp_path, base_scores, capsys, monkeypatch):
    results = tmp_path / "results"
    put(results, "base", base_scores, task="T|1")
    put(results, "cand", base_scores, task="T|1")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = gate_cli("--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(results),
                              "--json", str(tmp_path / "out" / "gate.json"), "--markdown", str(tmp_path / "gate.md"),
                              capsys=capsys)
    assert code == 0, err
    assert "| task | baseline | candidate | Δ | 95% CI | p (Holm) | verdict |" in out
    row = next(line for line in out.splitlines() if "T\\|1" in line)  # a | in a name must not break the table
    assert row.count(" | ") == 6 and "pass" in row
    assert (tmp_path / "gate.md").read_text() == out
    assert summary.read_text().startswith("earlier step\n") and out in summary.read_text()
    data = json.loads((tmp_path / "out" / "gate.json").read_text())
    assert data["verdict"] == "PASS" and data["exit_code"] == 0
    assert data["tasks"][0]["task"] == "T|1" and data["tasks"][0]["p_holm"] == 1.0
    assert data["settings"]["resamples"] >= 10_000
    code, out, _ = gate_cli("--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(results),
                            "--format", "json", capsys=capsys)
    assert json.loads(out)["tasks"][0]["n_queries"] == 200


# --- bad input: exit 2, one line, nothing written -------------------------------------------------

def assert_exit_2(capsys, needles, *args: str, tmp_path: Path | None = None) -> str:
    extra = ["--json", str(tmp_path / "never.json")] if tmp_path else []
    code, out, err = gate_cli(*args, *extra, capsys=capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    if tmp_path:
        assert not (tmp_path / "never.json").exists()
    return err


def test_mismatched_task_sets_name_the_missing_tasks(tmp_path, base_scores, capsys):
    for task in ("T1", "T2", "Extra"):
        put(tmp_path / "b", "base", base_scores, task=task)
    put(tmp_path / "c", "cand", base_scores, task="T1")
    assert_exit_2(capsys, ["mismatched task sets", "T2", "Extra", "candidate lacks 2"],
                  "--baseline", f"results:{tmp_path / 'b'}", "--candidate", f"results:{tmp_path / 'c'}",
                  tmp_path=tmp_path)


def test_different_dataset_hashes(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores, dataset_hash="aaaa")
    put(tmp_path, "cand", base_scores, dataset_hash="bbbb")
    assert_exit_2(capsys, ["dataset_hash", "T1"], "--baseline", "model=base", "--candidate", "model=cand",
                  "--results-dir", str(tmp_path), tmp_path=tmp_path)


def test_partial_vs_full(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", base_scores[:50], variant={"limit_queries": 50})
    assert_exit_2(capsys, ["partial vs full", "limit_queries=50", "all queries"],
                  "--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(tmp_path))


def test_different_query_counts(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", base_scores[:150])
    assert_exit_2(capsys, ["partial vs full", "200", "150"],
                  "--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(tmp_path))


def test_different_query_ids(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", base_scores, qids=[f"x{i}" for i in range(base_scores.size)])
    assert_exit_2(capsys, ["different query ids"],
                  "--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(tmp_path))


def test_missing_per_query_file(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores)
    cand = put(tmp_path, "cand", base_scores)
    path = result_path(tmp_path, cand)
    per_query_path(path, Result.model_validate_json(path.read_text())).unlink()  # the file the summary names
    assert_exit_2(capsys, ["per-query scores are missing"],
                  "--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(tmp_path))


def test_missing_results(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores)
    assert_exit_2(capsys, ["candidate selector", "model=nope", "matched none", "base"],
                  "--baseline", "model=base", "--candidate", "model=nope", "--results-dir", str(tmp_path))
    (tmp_path / "empty").mkdir()
    assert_exit_2(capsys, ["no results in"], "--baseline", "model=base", "--candidate",
                  f"results:{tmp_path / 'empty'}", "--results-dir", str(tmp_path))
    assert_exit_2(capsys, ["does not exist"], "--baseline", "model=base", "--candidate",
                  f"results:{tmp_path / 'absent'}", "--results-dir", str(tmp_path))


def test_two_results_on_one_side_are_ambiguous(tmp_path, base_scores, capsys):
    put(tmp_path / "b", "base-a", base_scores)
    put(tmp_path / "b", "base-b", base_scores)
    put(tmp_path / "c", "cand", base_scores)
    assert_exit_2(capsys, ["ambiguous baseline", "base-a", "base-b", "T1"],
                  "--baseline", f"results:{tmp_path / 'b'}", "--candidate", f"results:{tmp_path / 'c'}")
    # narrowing the folder with a filter resolves it
    assert run_gate(f"results:{tmp_path / 'b'},model=base-a", f"results:{tmp_path / 'c'}").exit_code == 0


def test_same_result_on_both_sides_is_refused(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores)
    assert_exit_2(capsys, ["same result"], "--baseline", "model=base", "--candidate", "precision=fp32",
                  "--results-dir", str(tmp_path))


def test_baseline_folder_is_not_scanned_twice(tmp_path, base_scores):
    # results/baselines holds an older result of the same model path: the candidate filter over
    # results/ must not see it (it would be ambiguous), because the baseline side names that folder
    put(tmp_path / "baselines", "checkpoints/latest", base_scores, revision="old")
    put(tmp_path, "checkpoints/latest", base_scores, revision="new")
    report = run_gate(f"results:{tmp_path / 'baselines'}", "model=checkpoints/latest", results_dir=tmp_path)
    assert report.exit_code == 0
    assert report.candidate.models == ["checkpoints/latest@new"]


def test_bad_flags_and_plan(tmp_path, base_scores, capsys):
    put(tmp_path, "base", base_scores)
    put(tmp_path, "cand", base_scores)
    common = ["--baseline", "model=base", "--candidate", "model=cand", "--results-dir", str(tmp_path)]
    assert_exit_2(capsys, ["--alpha"], *common, "--alpha", "1.5")
    assert_exit_2(capsys, ["--min-queries"], *common, "--min-queries", "0")
    assert_exit_2(capsys, ["no such eval plan"], *common, "--eval", str(tmp_path / "nope.yaml"))
    assert_exit_2(capsys, ["ndcg_at_3", "available: ndcg_at_10"], *common, "--metric", "ndcg_at_3")
    assert_exit_2(capsys, ["--baseline"], "--candidate", "model=cand")


# --- selectors ------------------------------------------------------------------------------------

def test_selector_parsing():
    sel = parse_selector("model=minilm-l6,precision=fp32,dim=384")
    assert sel.directory is None and sel.filters == {"model": ("minilm-l6",), "precision": ("fp32",), "dim": ("384",)}
    sel = parse_selector("precision=int8,precision=binary,variant.limit_queries=")
    assert sel.filters == {"precision": ("int8", "binary"), "variant.limit_queries": ("",)}
    sel = parse_selector("results:results/baselines,model=bm25")
    assert sel.directory == Path("results/baselines") and sel.filters == {"model": ("bm25",)}
    assert parse_selector("results:some/dir").filters == {}


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty selector"),
        ("modle=minilm-l6", "unknown key 'modle' (valid keys: schema_version, model"),
        ("model", "expected key=value"),
        ("model=a,,dim=3", "empty filter"),
        ("results:", "needs a folder"),
        ("variant.=3", "unknown key"),
    ],
)
def test_selector_errors(text, needle):
    with pytest.raises(EmbedbenchError) as info:
        parse_selector(text)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_selector_error_through_cli(tmp_path, capsys):
    err = assert_exit_2(capsys, ["unknown key 'precison'", "dataset_hash", "variant.NAME"],
                        "--baseline", "precison=fp32", "--candidate", "model=x", "--results-dir", str(tmp_path))
    assert "precision" in err


def test_filters_compare_as_strings(tmp_path, base_scores):
    put(tmp_path, "base", base_scores, dim=128, variant={"corpus_size": 1000})
    put(tmp_path, "cand", base_scores, dim=128, variant={"corpus_size": 1000})
    report = run_gate("model=base,dim=128,variant.corpus_size=1000", "model=cand,variant=corpus_size=1000",
                      results_dir=tmp_path)
    assert report.tasks[0].variant == "corpus_size=1000"


# --- statistics -----------------------------------------------------------------------------------

def test_holm_matches_hand_computed_example():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> max 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1, monotone
    assert holm([0.02]) == [0.02]
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([0.1, float("nan")])


def test_gate_applies_holm_across_tasks(tmp_path):
    rng = np.random.default_rng(6)
    for task, shift in (("A", 0.0), ("B", 0.03), ("C", 0.0)):
        base = ndcg_like(rng, 100)
        put(tmp_path / "b", "base", base, task=task)
        put(tmp_path / "c", "cand", np.clip(base - shift + rng.normal(0, 0.1, 100), 0, 1), task=task)
    report = run_gate(f"results:{tmp_path / 'b'}", f"results:{tmp_path / 'c'}")
    raw = [t.p_value for t in report.tasks]
    assert [t.p_holm for t in report.tasks] == pytest.approx(holm(raw))
    assert all(t.p_holm >= t.p_value for t in report.tasks)


def test_sign_flip_exact_small_sample():
    # d = (-1, -2, +0.5): 8 sign patterns; sums <= observed (-2.5): (-1,-2,-0.5) = -3.5 and observed -> 2/8
    assert sign_flip_pvalue([-1.0, -2.0, 0.5]) == pytest.approx(2 / 8)
    assert sign_flip_pvalue([0.0, 0.0]) == 1.0
    assert sign_flip_pvalue([1.0, 2.0, 3.0]) == 1.0  # better everywhere: all 8 sums <= 6
    # zeros do not dilute the test
    assert sign_flip_pvalue([-1.0, -1.0, -1.0, 0.0, 0.0]) == pytest.approx(1 / 8)


def test_sign_flip_monte_carlo_agrees_with_exact_and_normal():
    rng = np.random.default_rng(7)
    d = rng.normal(-0.1, 1.0, 400)
    p = sign_flip_pvalue(d, 20_000, np.random.default_rng(0))
    z = d.sum() / math.sqrt((d ** 2).sum())  # the normal approximation of the sign-flip distribution
    p_normal = 0.5 * math.erfc(-z / math.sqrt(2))
    assert abs(p - p_normal) < 0.02


def test_bootstrap_ci_covers_the_mean():
    d = np.random.default_rng(8).normal(-0.05, 0.2, 500)
    low, high = bootstrap_ci(d, 10_000, np.random.default_rng(0))
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert low < d.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_false_alarm_rate_with_zero_allowed_drop(tmp_path):
    """200 gates (1 task, 60 queries) where both sides are iid draws from the same score
    distribution: with max drop 0 a failure is exactly a false alarm. Its rate must stay at or
    below alpha = 0.05, allowing a binomial margin of 3 standard errors of 200 Bernoulli(0.05)
    trials: 0.05 + 3 * sqrt(0.05 * 0.95 / 200) = 0.096, i.e. at most 19 of 200."""
    gates, alpha = 200, 0.05
    failures = 0
    for seed in range(gates):
        rng = np.random.default_rng(1000 + seed)
        root = tmp_path / f"g{seed}"
        put(root / "b", "base", ndcg_like(rng, 60))
        put(root / "c", "cand", ndcg_like(rng, 60))
        report = run_gate(f"results:{root / 'b'}", f"results:{root / 'c'}", max_drop=0.0, alpha=alpha)
        failures += report.exit_code
    margin = alpha + 3 * math.sqrt(alpha * (1 - alpha) / gates)
    assert failures / gates <= margin, f"false-alarm rate {failures / gates:.3f} > {margin:.3f}"
