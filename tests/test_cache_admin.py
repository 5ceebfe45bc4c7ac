"""`embedbench cache info|prune` on real cache folders written by EmbeddingCache."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from embedbench.cli import main
from embedbench.engine.cache import EmbeddingCache, namespace_id, namespace_locked
from embedbench.engine.cache_admin import parse_age, prune, scan

DIM = 8
MODEL_A = {"fingerprint": "org/model-a@1111111111111111111111111111111111111111", "max_tokens": 128,
           "pooling": "mean", "prompts": {}}
MODEL_B = {"fingerprint": "org/model-b@rev2", "max_tokens": 256, "pooling": "cls", "prompts": {"query": "q: "}}
TEXTS_A = [f"alpha text {i}" for i in range(5)]
TEXTS_B = [f"beta text {i}" for i in range(3)]
DAY = 86400


def fake_vectors(texts: list[str]) -> np.ndarray:
    return np.stack([np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
                     .standard_normal(DIM).astype(np.float32) for t in texts])


def must_not_encode(texts: list[str]) -> np.ndarray:
    raise AssertionError(f"re-encoded {len(texts)} texts that should be cached")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A cache with two models: A (5 documents in 3 chunks), B (3 documents in 1 chunk)."""
    root = tmp_path / "cache"
    cache = EmbeddingCache(root)
    cache.get_or_encode(MODEL_A, "document", TEXTS_A, fake_vectors, chunk_size=2)
    cache.get_or_encode(MODEL_B, "document", TEXTS_B, fake_vectors)
    return root


def ns(root: Path, settings: dict, role: str = "document") -> Path:
    return root / "embeddings" / namespace_id(settings, role)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def age_namespace(path: Path, days: float) -> None:
    stamp = time.time() - days * DAY
    for f in path.iterdir():
        os.utime(f, (stamp, stamp))


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


HOLDER = """
import sys
from embedbench.engine.cache import namespace_lock
with namespace_lock(sys.argv[1]) as held:
    print("held" if held else "not held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


@contextmanager
def lock_held_elsewhere(path: Path) -> Iterator[None]:
    """Another process holds the namespace lock (as a running eval does) for the block."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held", proc.stderr.read()
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)  # only a guard against a hang


# ----------------------------------------------------------------------------------------- info


def test_info_lists_both_models_with_counts_and_bytes(root, capsys):
    spaces, trash = scan(root)
    assert trash == []
    by_model = {s.model: s for s in spaces}
    assert set(by_model) == {"org/model-a", "org/model-b"}
    a, b = by_model["org/model-a"], by_model["org/model-b"]
    assert (a.revision, a.role, a.texts, a.chunks, a.dim) == ("1" * 40, "document", 5, 3, DIM)
    assert (b.revision, b.role, b.texts, b.chunks, b.dim) == ("rev2", "document", 3, 1, DIM)
    assert a.bytes == folder_bytes(ns(root, MODEL_A)) and b.bytes == folder_bytes(ns(root, MODEL_B))
    assert a.settings == MODEL_A and not a.locked and a.orphans == []
    newest = max(f.stat().st_mtime for f in ns(root, MODEL_A).glob("*.keys.json"))
    assert a.last_used == newest

    code, out, _ = cli(capsys, "cache", "info", "--cache-dir", str(root), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert {r["model"]: r["texts"] for r in doc["namespaces"]} == {"org/model-a": 5, "org/model-b": 3}
    assert doc["totals"]["texts"] == 8 and doc["totals"]["bytes"] == a.bytes + b.bytes
    assert {r["namespace"] for r in doc["namespaces"]} == {ns(root, MODEL_A).name, ns(root, MODEL_B).name}

    code, out, _ = cli(capsys, "cache", "info", "--cache-dir", str(root))
    assert code == 0
    header, row_a, row_b, total = out.splitlines()[:4]
    assert header.split()[:4] == ["namespace", "model", "revision", "role"]
    assert "org/model-a" in row_a and "111111111111 " in row_a and " 5 " in row_a and "max_tokens=128" in row_a
    assert "org/model-b" in row_b and "prompts=query" in row_b
    assert total.startswith("total: 2 namespaces, 8 texts")
    assert "last written" in out or "last wrote" in out


def test_info_uses_the_cache_dir_from_the_environment(root, capsys, monkeypatch):
    monkeypatch.setenv("EMBEDBENCH_CACHE_DIR", str(root))
    code, out, _ = cli(capsys, "cache", "info", "--format", "json")
    assert code == 0 and len(json.loads(out)["namespaces"]) == 2


def test_info_of_an_empty_cache(tmp_path, capsys):
    code, out, _ = cli(capsys, "cache", "info", "--cache-dir", str(tmp_path / "none"))
    assert code == 0 and "no embedding cache" in out


# ----------------------------------------------------------------------------------------- prune


@pytest.mark.parametrize("model", ["org/model-a", "org/model-a@" + "1" * 40, "org/*-a"])
def test_prune_by_model_removes_one_and_leaves_the_other_readable(root, capsys, model):
    code, out, err = cli(capsys, "cache", "prune", "--model", model, "--cache-dir", str(root))
    assert code == 0, err
    assert not ns(root, MODEL_A).exists()
    assert ns(root, MODEL_A).name in out and "removed" in out and "freed" in out
    assert sorted(p.name for p in (root / "embeddings").iterdir()) == [ns(root, MODEL_B).name]  # no trash left
    got = EmbeddingCache(root).get_or_encode(MODEL_B, "document", TEXTS_B, must_not_encode)
    np.testing.assert_array_equal(got, fake_vectors(TEXTS_B))
    # The removed model encodes again from scratch, into a fresh namespace.
    again = EmbeddingCache(root).get_or_encode(MODEL_A, "document", TEXTS_A, fake_vectors)
    np.testing.assert_array_equal(again, fake_vectors(TEXTS_A))


def test_prune_by_preset_name_matches_its_hub_fingerprint(tmp_path, capsys):
    root = tmp_path / "cache"
    bge = {"fingerprint": "BAAI/bge-m3@5617a9f61b028005a4858fdac845db406aefb181", "max_tokens": 8192}
    EmbeddingCache(root).get_or_encode(bge, "query", ["q"], fake_vectors)
    EmbeddingCache(root).get_or_encode(MODEL_B, "query", ["q"], fake_vectors)
    assert cli(capsys, "cache", "prune", "--model", "bge-m3", "--cache-dir", str(root))[0] == 0
    assert not ns(root, bge, "query").exists() and ns(root, MODEL_B, "query").exists()


def test_dry_run_lists_and_removes_nothing(root, capsys):
    code, out, _ = cli(capsys, "cache", "prune", "--all", "--dry-run", "--cache-dir", str(root))
    assert code == 0
    assert out.count("would remove") == 2 and "would free" in out
    assert ns(root, MODEL_A).exists() and ns(root, MODEL_B).exists()


def test_older_than_compares_the_last_write(root, capsys):
    age_namespace(ns(root, MODEL_A), days=40)
    code, out, _ = cli(capsys, "cache", "prune", "--older-than", "50d", "--cache-dir", str(root))
    assert code == 0 and "nothing to prune" in out and "--older-than 50d" in out
    assert ns(root, MODEL_A).exists()

    code, out, _ = cli(capsys, "cache", "prune", "--older-than", "30d", "--cache-dir", str(root))
    assert code == 0
    assert not ns(root, MODEL_A).exists() and ns(root, MODEL_B).exists()
    # Filters combine: B is recent, so an age filter keeps it even though its model matches.
    code, out, _ = cli(capsys, "cache", "prune", "--model", "org/*", "--older-than", "1h", "--cache-dir", str(root))
    assert code == 0 and "nothing to prune" in out and ns(root, MODEL_B).exists()


def test_a_locked_namespace_is_never_removed(root, capsys):
    held = ns(root, MODEL_A)
    with lock_held_elsewhere(held):
        assert namespace_locked(held)
        code, out, _ = cli(capsys, "cache", "info", "--cache-dir", str(root), "--format", "json")
        assert {r["model"]: r["locked"] for r in json.loads(out)["namespaces"]} == {"org/model-a": True,
                                                                                   "org/model-b": False}
        code, out, err = cli(capsys, "cache", "prune", "--all", "--cache-dir", str(root))
        assert code == 0
        assert f"skipped {held.name}" in err and "in use by a running eval" in err
        assert held.exists() and not ns(root, MODEL_B).exists()
        got = EmbeddingCache(root).vectors(MODEL_A, "document", EmbeddingCache.text_keys(TEXTS_A))
        np.testing.assert_array_equal(got, fake_vectors(TEXTS_A))  # every chunk is still there

        code, out, err = cli(capsys, "cache", "prune", "--model", "org/model-a", "--cache-dir", str(root))
        assert code == 0 and "nothing pruned" in out and "skipped" in err and held.exists()
    # Released: now it goes.
    assert cli(capsys, "cache", "prune", "--model", "org/model-a", "--cache-dir", str(root))[0] == 0
    assert not held.exists()


def test_nothing_to_prune_exits_0_and_says_so(root, tmp_path, capsys):
    code, out, err = cli(capsys, "cache", "prune", "--model", "no/such-model", "--cache-dir", str(root))
    assert code == 0 and err == ""
    assert out.startswith("nothing to prune") and "org/model-a" in out  # names the models there are
    code, out, _ = cli(capsys, "cache", "prune", "--all", "--cache-dir", str(tmp_path / "empty"))
    assert code == 0 and "nothing to prune: the embedding cache is empty" in out
    code, out, _ = cli(capsys, "cache", "prune", "--orphans", "--cache-dir", str(root))
    assert code == 0 and "nothing to prune" in out
    assert len(scan(root)[0]) == 2


@pytest.mark.parametrize("age", ["30", "30m", "-1d", "1.5d", "d", "thirty days", ""])
def test_bad_older_than_is_one_line_exit_2(root, capsys, age):
    code, out, err = cli(capsys, "cache", "prune", f"--older-than={age}", "--cache-dir", str(root))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--older-than" in err and "30d" in err
    assert len(scan(root)[0]) == 2


@pytest.mark.parametrize("args, needle", [
    ([], "say what to prune"),
    (["--all", "--model", "x"], "--all"),
    (["--model"], "expected one argument"),
])
def test_prune_usage_errors_are_one_line_exit_2(root, capsys, args, needle):
    code, _out, err = cli(capsys, "cache", "prune", *args, "--cache-dir", str(root))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert len(scan(root)[0]) == 2


def test_parse_age():
    assert parse_age("30d") == 30 * DAY and parse_age("12h") == 12 * 3600 and parse_age("0h") == 0


def test_orphans_are_removed_and_complete_chunks_kept(root, capsys):
    folder = ns(root, MODEL_A)
    (folder / ".tmp-abc123.npy").write_bytes(b"half")
    np.save(folder / f"{'f' * 32}.npy", np.zeros((2, DIM), np.float32))  # data whose keys file never came
    trash = root / "embeddings" / ".trash-0123-dead"  # a prune killed while deleting
    trash.mkdir()
    (trash / "x.npy").write_bytes(b"12345")
    before = {s.model: s for s in scan(root)[0]}["org/model-a"]
    assert before.texts == 5 and sorted(before.orphans) == [".tmp-abc123.npy", f"{'f' * 32}.npy"]
    code, out, _ = cli(capsys, "cache", "info", "--cache-dir", str(root))
    assert "leftovers of killed runs: 2 files, 1 trash folders" in out

    code, out, _ = cli(capsys, "cache", "prune", "--orphans", "--cache-dir", str(root))
    assert code == 0 and "removed 3 leftover" in out
    assert not trash.exists() and not (folder / ".tmp-abc123.npy").exists()
    after = {s.model: s for s in scan(root)[0]}["org/model-a"]
    assert after.orphans == [] and after.texts == 5 and after.chunks == 3
    np.testing.assert_array_equal(EmbeddingCache(root).get_or_encode(MODEL_A, "document", TEXTS_A, must_not_encode),
                                  fake_vectors(TEXTS_A))


def test_orphans_of_a_locked_namespace_are_left_alone(root, capsys):
    folder = ns(root, MODEL_A)
    (folder / ".tmp-live.npy").write_bytes(b"a run is writing this")
    with lock_held_elsewhere(folder):
        code, out, err = cli(capsys, "cache", "prune", "--orphans", "--cache-dir", str(root))
        assert code == 0 and "skipped leftovers" in err
        assert (folder / ".tmp-live.npy").exists()


def test_prune_api_reports_what_it_did(root):
    report = prune(root, model="org/model-b", dry_run=True)
    assert [s.model for s in report.removed] == ["org/model-b"] and ns(root, MODEL_B).exists()
    report = prune(root, model="org/model-b")
    assert [s.model for s in report.removed] == ["org/model-b"] and report.freed > 0
    assert not ns(root, MODEL_B).exists()


# ----------------------------------------------------------------------------------------- help


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedbench.cli", *args], capture_output=True, text=True, timeout=300)


def test_cache_help_texts():
    top = run_cli("--help")
    assert top.returncode == 0 and "cache" in top.stdout
    done = run_cli("cache", "--help")
    assert done.returncode == 0
    assert "info" in done.stdout and "prune" in done.stdout and "last used" in done.stdout
    info = run_cli("cache", "info", "--help")
    assert info.returncode == 0 and "--format" in info.stdout and "--cache-dir" in info.stdout
    assert "last wrote" in info.stdout
    pr = run_cli("cache", "prune", "--help")
    assert pr.returncode == 0
    for option in ("--model", "--older-than", "--all", "--orphans", "--dry-run", "--cache-dir"):
        assert option in pr.stdout
    assert "30d" in pr.stdout and "lock" in pr.stdout
    missing = run_cli("cache")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
