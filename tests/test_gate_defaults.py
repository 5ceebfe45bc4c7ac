"""Gates that work by default: the committed baseline, `make gate`'s selectors and pairing on every variant key.

Each case goes through the CLI (`embedbench gate` as `main()` in-process, `make gate` as a subprocess)."""

from __future__ import annotations

import gzip
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedbench.gate import main
from embedbench.gate.selectors import scan_results
from embedbench.results import Provenance, Result, load_per_query_file, write_result
from embedbench.data.suites import load_suite

REPO = Path(__file__).resolve().parents[1]
BASELINES = REPO / "results" / "baselines"
MODEL = "minilm-l6"
METRIC = "ndcg_at_10"


def put(root: Path, scores, *, model: str = MODEL, task: str = "T1", precision: str = "fp32",
        variant: dict | None = None) -> None:
    """One result plus its per-query file, written the way the runner writes them."""
    scores = [float(s) for s in scores]
    mean = float(np.mean(scores))
    result = Result(
        model=model, revision="content-hash-1", suite="default", task=task, split="test", language="en",
        precision=precision, quantization="none", dim=384, variant=variant or {}, main_score_name=METRIC,
        main_score=mean, metrics={METRIC: mean}, n_queries=len(scores), n_docs=1000, bytes_per_vector=1536,
        encode_seconds=0.0, search_seconds=0.0, docs_per_second=None,
        provenance=Provenance(
            embedbench_version="0.1.0", git_commit=None, packages={}, command=["test"], model_fingerprint=model,
            dataset_hash="data-1", device="cpu", batch_size=1, max_length=None, truncated_share={},
            texts_encoded=0, texts_cached=0, created_at="2026-01-01T00:00:00+00:00",
        ),
    )
    write_result(root, result, {METRIC: {f"q{i}": s for i, s in enumerate(scores)}})


def scores(seed: int, n: int = 200) -> np.ndarray:
    """nDCG-like per-query scores: many 0s and 1s, the rest between."""
    rng = np.random.default_rng(seed)
    kind = rng.random(n)
    return np.where(kind < 0.3, 0.0, np.where(kind < 0.6, 1.0, rng.random(n)))


def gate(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--format", "json", *args])
    out, err = capsys.readouterr()
    return code, out, err


def default_args(root: Path) -> list[str]:
    """What `make gate RESULTS=root` passes (BASELINE / CANDIDATE defaults of the Makefile)."""
    return ["--baseline", f"results:{root / 'baselines'}", "--candidate", f"results:{root},model={MODEL}",
            "--results-dir", str(root)]


# --- folder selectors: a side's folder never takes the other side's ---------------------------------

def test_results_folder_holding_baselines_and_a_fresh_run_pairs_and_passes(tmp_path, capsys):
    # the fresh run of an unchanged model has the baseline's identity (same file names) in results/
    for task in ("A", "B"):
        for root in (tmp_path / "baselines", tmp_path):
            put(root, scores(ord(task)), task=task)
    for candidate in (f"results:{tmp_path}", f"results:{tmp_path},model={MODEL}"):
        code, out, err = gate(capsys, "--baseline", f"results:{tmp_path / 'baselines'}", "--candidate", candidate)
        assert code == 0, err
        report = json.loads(out)
        assert [t["task"] for t in report["tasks"]] == ["A", "B"]
        assert report["baseline"]["n_results"] == report["candidate"]["n_results"] == 2
    # the other way round too: a baseline folder holding the candidate's folder leaves it out
    code, out, err = gate(capsys, "--baseline", f"results:{tmp_path}", "--candidate", f"results:{tmp_path / 'baselines'}")
    assert code == 0 and json.loads(out)["baseline"]["n_results"] == 2, err


def test_degraded_candidate_fails_on_the_numbers(tmp_path, capsys):
    base = scores(1)
    put(tmp_path / "baselines", base, task="A")
    put(tmp_path / "baselines", scores(2), task="B")
    put(tmp_path, np.clip(base - 0.2, 0, 1), task="A")  # every query of A lower
    put(tmp_path, scores(2), task="B")
    code, out, err = gate(capsys, *default_args(tmp_path))
    assert code == 1, err
    verdicts = {t["task"]: t["verdict"] for t in json.loads(out)["tasks"]}
    assert verdicts == {"A": "fail", "B": "pass"}


def test_the_same_files_on_both_sides_stay_refused(tmp_path, capsys):
    put(tmp_path / "baselines", scores(1))
    put(tmp_path, scores(1))
    same = [
        (f"results:{tmp_path}", f"results:{tmp_path}"),
        (f"results:{tmp_path / 'baselines'}", f"results:{tmp_path / 'baselines'},precision=fp32"),
        (f"model={MODEL}", f"results:{tmp_path}"),  # filters search --results-dir, the candidate's folder
    ]
    for baseline, candidate in same:
        code, out, err = gate(capsys, "--baseline", baseline, "--candidate", candidate, "--results-dir", str(tmp_path))
        assert code == 2 and "same result file" in err and len(err.strip().splitlines()) == 1, (baseline, err)
    # ...while the nested layout of `make gate` is not "the same files"
    assert gate(capsys, *default_args(tmp_path))[0] == 0


# --- pairing: every variant key the runner writes ---------------------------------------------------

def test_toolret_instruction_modes_pair_within_their_own_mode(tmp_path, capsys):
    # ToolRet writes one result per mode; with and without score differently, and only "with" regresses
    base = {"with": scores(3), "without": scores(4) * 0.5}
    cand = {"with": np.clip(base["with"] - 0.2, 0, 1), "without": base["without"]}
    for mode in ("with", "without"):
        put(tmp_path / "b", base[mode], task="ToolRet-web", variant={"instruction": mode})
        put(tmp_path / "c", cand[mode], task="ToolRet-web", variant={"instruction": mode})
    code, out, err = gate(capsys, "--baseline", f"results:{tmp_path / 'b'}", "--candidate", f"results:{tmp_path / 'c'}")
    assert code == 1, err
    rows = {t["variant"]: t for t in json.loads(out)["tasks"]}
    assert set(rows) == {"instruction=with", "instruction=without"}
    for mode, row in rows.items():
        mode = mode.removeprefix("instruction=")
        assert row["baseline"] == pytest.approx(base[mode].mean(), abs=1e-12)
        assert row["candidate"] == pytest.approx(cand[mode].mean(), abs=1e-12)
    assert rows["instruction=with"]["verdict"] == "fail" and rows["instruction=without"]["verdict"] == "pass"


def test_context_modes_pair_like_with_like(tmp_path, capsys):
    # a chunked task run both ways lands twice in each folder; late chunking regresses, none does not
    base = {"none": scores(5) * 0.6, "late-chunking": scores(6)}
    cand = {"none": base["none"], "late-chunking": np.clip(base["late-chunking"] - 0.2, 0, 1)}
    for mode in base:
        put(tmp_path / "baselines", base[mode], task="ConTEB-Insurance", variant={"context": mode})
        put(tmp_path, cand[mode], task="ConTEB-Insurance", variant={"context": mode})
    code, out, err = gate(capsys, *default_args(tmp_path))
    assert code == 1, err
    rows = {t["variant"]: t for t in json.loads(out)["tasks"]}
    assert rows["context=late-chunking"]["verdict"] == "fail" and rows["context=none"]["verdict"] == "pass"
    assert rows["context=none"]["baseline"] == pytest.approx(base["none"].mean(), abs=1e-12)
    assert rows["context=late-chunking"]["candidate"] == pytest.approx(cand["late-chunking"].mean(), abs=1e-12)


def test_every_variant_key_separates_results(tmp_path, capsys):
    # keys the runner writes today, keys other items add (max_length, dtype) and keys the old gate
    # dropped as "model-specific" (prompt_name, context_mode): each one keeps its results apart
    variants = [{}, {"instruction": "with"}, {"max_length": 128}, {"dtype": "bfloat16"}, {"rescore_depth": 200},
                {"prompt_name": "query"}, {"context_mode": "late-chunking"}]
    for i, variant in enumerate(variants):
        put(tmp_path / "b", scores(10 + i), variant=variant)
        put(tmp_path / "c", scores(10 + i) if i % 2 else np.clip(scores(10 + i) + 0.05, 0, 1), variant=variant)
    code, out, err = gate(capsys, "--baseline", f"results:{tmp_path / 'b'}", "--candidate", f"results:{tmp_path / 'c'}")
    assert code == 0, err
    rows = {t["variant"]: t for t in json.loads(out)["tasks"]}
    assert set(rows) == {",".join(f"{k}={v}" for k, v in variant.items()) for variant in variants}
    for i, variant in enumerate(variants):  # each paired with its own twin: the candidate is 0.05 better or equal
        row = rows[",".join(f"{k}={v}" for k, v in variant.items())]
        assert row["baseline"] == pytest.approx(scores(10 + i).mean(), abs=1e-12)
        assert row["delta"] >= 0 and (row["delta"] > 0) == (i % 2 == 0)
    # a setting only one side has is not paired with the other side's default
    put(tmp_path / "solo", scores(10))
    for variant in variants[1:]:
        ((key, value),) = variant.items()
        code, _, err = gate(capsys, "--baseline", f"results:{tmp_path / 'solo'}",
                            "--candidate", f"results:{tmp_path / 'c'},variant.{key}={value}")
        assert code == 2 and "mismatched task sets" in err, (key, err)


def test_comparing_generators_frees_their_revisions(tmp_path, capsys):
    for name, rev, s in (("gen-a", "sha-a", scores(7)), ("gen-b", "sha-b", np.clip(scores(7) - 0.2, 0, 1))):
        put(tmp_path, s, variant={"generator": name, "generator_revision": rev, "rag_k": 5})
    code, out, err = gate(capsys, "--baseline", "variant.generator=gen-a", "--candidate", "variant.generator=gen-b",
                          "--results-dir", str(tmp_path))
    assert code == 1, err
    assert json.loads(out)["tasks"][0]["variant"] == "rag_k=5"


# --- the committed baseline and `make gate` ---------------------------------------------------------

def test_committed_baseline_is_the_default_suite_at_three_precisions():
    found = scan_results(BASELINES) if BASELINES.is_dir() else []
    assert found, "no baseline committed under results/baselines"
    tasks = {t.name for t in load_suite("default").tasks}
    got = {(s.result.model, s.result.suite, s.result.task, s.result.precision) for s in found}
    assert got == {(MODEL, "default", t, p) for t in tasks for p in ("fp32", "int8", "binary")}
    assert len(found) == len(got)  # one result per identity: nothing stale left in the folder
    assert all(s.per_query_path.is_file() for s in found)
    assert all(not s.result.variant.get("limit_queries") for s in found)  # a gate needs every query


def test_committed_baseline_is_of_todays_data():
    """A fresh `make eval` pairs with the baseline only on the same dataset hash: a change to a loader or to
    how a dataset is hashed must come with a regenerated baseline (else `make eval && make gate` exits 2)."""
    from embedbench.data.locations import default_cache_dir, default_data_dir
    from embedbench.engine.plan import plan_evaluation

    planned = plan_evaluation(MODEL, "default", None, default_data_dir(), default_cache_dir(), None, False)
    today = {(t.spec.name, t.subset.language): t.subset.data.content_hash() for t in planned}
    committed = {(s.result.task, s.result.language): s.result.provenance.dataset_hash for s in scan_results(BASELINES)}
    assert committed == today


def make_gate(root: Path) -> subprocess.CompletedProcess:
    """`make gate` with the Makefile's own defaults, in a checkout whose results/ is `root`/results."""
    # -o: take setup (.venv) as done; -n: print the command instead of running it
    dry = subprocess.run(["make", "-n", "-o", ".venv/.installed", "-f", str(REPO / "Makefile"), "gate"], cwd=root,
                         capture_output=True, text=True, check=True)
    (line,) = [ln for ln in dry.stdout.splitlines() if " gate " in f" {ln} " and "embedbench" in ln]
    argv = shlex.split(line)
    assert argv[0].endswith("bin/embedbench") and argv[1] == "gate", line
    cmd = [sys.executable, "-c", "import sys; from embedbench.cli import main; sys.exit(main())", *argv[1:]]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)


def place_fresh_run(results: Path, tmp: Path, drop: float = 0.0) -> None:
    """What `make eval` writes into results/ for an unchanged model: the baseline's files (its int8
    per-query main scores lowered by `drop`, to stand for a regression)."""
    fresh = tmp / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(BASELINES, fresh)
    for sel in scan_results(fresh):
        if drop and sel.result.precision == "int8":
            per_query = load_per_query_file(sel.per_query_path)
            metric = sel.result.main_score_name
            per_query[metric] = {q: max(0.0, v - drop) for q, v in per_query[metric].items()}
            sel.per_query_path.write_bytes(gzip.compress(json.dumps(per_query).encode()))
    shutil.copytree(fresh, results, dirs_exist_ok=True)


def test_make_gate_compares_a_fresh_run_with_the_committed_baseline(tmp_path):
    assert BASELINES.is_dir(), "results/baselines is not committed"
    results = tmp_path / "checkout" / "results"
    shutil.copytree(BASELINES, results / "baselines")
    place_fresh_run(results, tmp_path)
    done = make_gate(results.parent)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "**PASS**" in done.stdout and "BFCLToolRetrieval" in done.stdout
    place_fresh_run(results, tmp_path, drop=0.2)
    done = make_gate(results.parent)
    assert done.returncode == 1, done.stderr + done.stdout
    assert "**FAIL**" in done.stdout and "int8" in done.stdout
