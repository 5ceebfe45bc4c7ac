"""One safe writer for every persisted file, results that survive a kill, readers that skip bad files.

The I/O spy records the real calls (``os.fsync`` with the path behind the descriptor, ``os.replace``),
so the checks hold for whatever helper a module uses, as long as it does what a safe write needs:
temp file in the same folder, fsync of the file, ``os.replace``, fsync of the folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embedbench.results.store as results_mod
from embedbench.engine.cache import EmbeddingCache, namespace_id
from embedbench.errors import EmbedbenchError
from embedbench.gate import main as gate_main
from embedbench.results import Provenance, Result, read_per_query, read_results, result_path, write_result

SETTINGS = {"fingerprint": "fake@1", "max_tokens": 64, "pooling": "mean", "prompts": {}}


def make_result(score: float = 0.5, **changes: object) -> Result:
    provenance = Provenance(
        embedbench_version="0", git_commit=None, packages={}, command=["test"], model_fingerprint="f",
        dataset_hash="d", device="cpu", batch_size=8, max_length=None, truncated_share={},
        texts_encoded=0, texts_cached=0, created_at="2026-01-01T00:00:00Z")
    fields = dict(model="m", revision="r", suite="s", task="T", split="test", language="en", precision="fp32",
                  quantization="none", dim=8, main_score_name="ndcg_at_10", main_score=score,
                  metrics={"ndcg_at_10": score}, n_queries=2, n_docs=3, bytes_per_vector=32,
                  encode_seconds=0.0, search_seconds=0.0, docs_per_second=None, provenance=provenance)
    return Result(**{**fields, **changes})


def per_query(score: float) -> dict[str, dict[str, float]]:
    return {"ndcg_at_10": {"q1": score, "q2": 1.0 - score}}


class IOSpy:
    """Records fsync (by path) and replace calls, in order, then does them for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, ...]] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            real_fsync(fd)

        def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
            self.events.append(("replace", str(Path(src).absolute()), str(Path(dst).absolute())))
            real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)

    def assert_safely_written(self, path: Path) -> None:
        path = path.absolute()
        at = next((i for i, e in enumerate(self.events) if e[0] == "replace" and e[2] == str(path)), None)
        assert at is not None, f"{path} was not renamed into place: {self.events}"
        tmp = Path(self.events[at][1])
        assert tmp.parent == path.parent and tmp.name.startswith(".tmp-"), tmp
        assert ("fsync", str(tmp)) in self.events[:at], f"{tmp} not fsynced before the rename"
        assert ("fsync", str(path.parent)) in self.events[at + 1:], f"{path.parent} not fsynced after the rename"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> IOSpy:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the file behind a descriptor")
    return IOSpy(monkeypatch)


# ------------------------------------------------------------------- the writer


def test_atomic_write_fsyncs_replaces_and_fsyncs_the_folder(tmp_path, spy):
    from embedbench.atomic import atomic_write_text

    target = tmp_path / "sub" / "f.json"
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    spy.assert_safely_written(target)
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_write_keeps_the_old_file_and_removes_its_temp_file(tmp_path, error):
    from embedbench.atomic import atomic_write

    target = tmp_path / "f.json"
    target.write_text("old")

    def write(f):
        f.write(b"half of the new")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_written_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    from embedbench.atomic import atomic_write_text

    umask = os.umask(0)
    os.umask(umask)
    assert (atomic_write_text(tmp_path / "f", "x").stat().st_mode & 0o777) == 0o666 & ~umask


def test_cache_writes_every_file_safely(tmp_path, spy):
    cache = EmbeddingCache(tmp_path)
    cache.get_or_encode(SETTINGS, "document", ["a", "b"], lambda texts: np.ones((len(texts), 4)))
    ns = tmp_path / "embeddings" / namespace_id(SETTINGS, "document")
    written = sorted(p for p in ns.iterdir() if p.name != ".lock")
    chunk = next(p for p in written if p.suffix == ".npy").stem
    assert [p.name for p in written] == sorted(["key.json", f"{chunk}.npy", f"{chunk}.keys.json"])
    for path in written:
        spy.assert_safely_written(path)


def test_result_files_are_written_safely_summary_last(tmp_path, spy):
    summary = write_result(tmp_path, make_result(), per_query(0.5))
    queries = next(summary.parent.glob("*.queries.json*"))
    spy.assert_safely_written(queries)
    spy.assert_safely_written(summary)
    renamed = [Path(e[2]) for e in spy.events if e[0] == "replace"]
    assert renamed == [queries.absolute(), summary.absolute()]


def test_gate_report_files_are_written_safely(tmp_path, spy, capsys):
    for side in ("base", "cand"):
        write_result(tmp_path / side, make_result(), {"ndcg_at_10": {f"q{i}": 0.5 for i in range(40)}})
    out = tmp_path / "out"
    code = gate_main(["--baseline", f"results:{tmp_path / 'base'}", "--candidate", f"results:{tmp_path / 'cand'}",
                      "--json", str(out / "gate.json"), "--markdown", str(out / "gate.md")])
    assert code == 0, capsys.readouterr()
    spy.assert_safely_written(out / "gate.json")
    spy.assert_safely_written(out / "gate.md")
    assert json.loads((out / "gate.json").read_text())


# ---------------------------------------------------------- results: one unit


def test_kill_between_per_query_and_summary_keeps_the_old_pair(tmp_path, monkeypatch):
    old = make_result(0.25)
    write_result(tmp_path, old, per_query(0.25))
    summary = result_path(tmp_path, old)
    real_replace = os.replace

    def killed_at_summary(src, dst):
        if Path(dst) == summary:
            raise KeyboardInterrupt("killed before the summary was renamed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_at_summary)
    with pytest.raises(KeyboardInterrupt):
        write_result(tmp_path, make_result(0.75), per_query(0.75))
    monkeypatch.setattr(os, "replace", real_replace)

    [stored] = read_results(tmp_path)
    assert stored.main_score == 0.25
    assert read_per_query(tmp_path, stored) == per_query(0.25)  # not the new run's scores
    assert not [p for p in summary.parent.iterdir() if p.name.startswith(".tmp-")]


def test_rewrite_leaves_one_per_query_file_and_reads_schema_1(tmp_path):
    result = make_result(0.25)
    summary = result_path(tmp_path, result)
    # A schema-1 result as main wrote it: no per_query_file, per-query file <identity>.queries.json.
    legacy = json.loads(result.model_dump_json(exclude={"per_query_file"}))
    legacy["schema_version"] = 1
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps(legacy))
    summary.with_name(summary.stem + ".queries.json").write_text(json.dumps(per_query(0.25)))
    [stored] = read_results(tmp_path)
    assert stored.schema_version == 1 and read_per_query(tmp_path, stored) == per_query(0.25)

    write_result(tmp_path, make_result(0.5), per_query(0.5))
    write_result(tmp_path, make_result(0.75), per_query(0.75))
    [stored] = read_results(tmp_path)
    files = sorted(p.name for p in summary.parent.iterdir())
    assert files == sorted([summary.name, stored.per_query_file])
    assert stored.schema_version == 2 and stored.per_query_file != summary.stem + ".queries.json"
    assert read_per_query(tmp_path, stored) == per_query(0.75)
    assert read_per_query(tmp_path, make_result(0.75)) == per_query(0.75)  # as evaluate() returns it


def test_metric_none_and_prompts_round_trip(tmp_path):
    result = make_result(metrics={"ndcg_at_10": 0.5, "recall_at_1000": None})
    result.provenance.prompts.update({"query": "query: ", "document": "passage: "})
    path = write_result(tmp_path, result, per_query(0.5))
    raw = json.loads(path.read_text())
    assert raw["metrics"]["recall_at_1000"] is None
    assert raw["schema_version"] == results_mod.SCHEMA_VERSION == 2
    [stored] = read_results(tmp_path)
    assert stored.metrics == {"ndcg_at_10": 0.5, "recall_at_1000": None}
    assert stored.provenance.prompts == {"query": "query: ", "document": "passage: "}
    assert make_result().provenance.prompts == {}


def test_unknown_schema_version_and_escaping_per_query_name_are_refused():
    raw = json.loads(make_result().model_dump_json())
    for bad in ({"schema_version": 3}, {"per_query_file": "../../etc/x.queries.json"}):
        with pytest.raises(ValueError):
            Result.model_validate({**raw, **bad})


# ------------------------------------------------------------ unreadable files


def write_bad_files(root: Path) -> list[Path]:
    good = write_result(root, make_result(0.5), per_query(0.5))
    truncated = good.with_name("0123456789abcdef.json")
    truncated.write_text(good.read_text()[:100])  # a copy cut short
    stranger = root / "notes" / "other.json"
    stranger.parent.mkdir()
    stranger.write_text('{"hello": 1}')
    return [truncated, stranger]


def test_scan_results_skips_unreadable_files_with_one_warning_each(tmp_path, caplog):
    bad = write_bad_files(tmp_path)
    found = results_mod.scan_results(tmp_path)
    assert [(p, r.main_score) for p, r in found] == [(result_path(tmp_path, make_result()), 0.5)]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and not any("\n" in m for m in messages)
    for path in bad:
        assert len([m for m in messages if str(path) in m]) == 1, messages


def eb(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMBEDBENCH_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "embedbench.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_results_and_report_cli_skip_a_corrupt_file_with_one_line(tmp_path):
    root = tmp_path / "results"
    bad = write_bad_files(root)
    proc = eb("results", "--results-dir", str(root), "--format", "json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["main_score"] for r in json.loads(proc.stdout)] == [0.5]
    lines = proc.stderr.splitlines()
    for path in bad:
        assert len([line for line in lines if str(path) in line]) == 1, proc.stderr
    assert len(lines) == 2, proc.stderr

    proc = eb("report", "--results-dir", str(root), "--out", str(tmp_path / "reports"), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert all(len([line for line in proc.stderr.splitlines() if str(p) in line]) == 1 for p in bad), proc.stderr
    assert (tmp_path / "reports" / "index.md").exists()


# -------------------------------------------------------------- --results-dir


def test_check_results_dir(tmp_path):
    check = results_mod.check_results_dir
    a_file = tmp_path / "results.json"
    a_file.write_text("{}")
    with pytest.raises(EmbedbenchError) as info:
        check(a_file)
    assert str(info.value) == f"--results-dir {a_file} is a file, not a folder"
    with pytest.raises(EmbedbenchError, match="cannot be created"):
        check(a_file / "sub")
    check(tmp_path)
    check(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_without_a_folder_lock_the_pair_stays_right_and_old_files_stay(tmp_path, monkeypatch):
    def refused(folder):
        raise OSError(9, "Bad file descriptor")  # NFS refuses flock on a folder opened read-only

    write_result(tmp_path, make_result(0.25), per_query(0.25))
    monkeypatch.setattr(results_mod, "exclusive_lock", refused)
    write_result(tmp_path, make_result(0.75), per_query(0.75))
    [stored] = read_results(tmp_path)
    assert stored.main_score == 0.75 and read_per_query(tmp_path, stored) == per_query(0.75)
    assert len(list(tmp_path.rglob("*.queries.json*"))) == 2


def test_concurrent_writers_and_a_reader_of_one_identity_always_see_a_pair(tmp_path):
    """Two runs rewrite one identity while a reader reads it: no reader sees a summary paired with
    another write's per-query file, and the folder ends with one pair."""
    import threading

    stop, errors = threading.Event(), []
    summary = result_path(tmp_path, make_result())

    def writer(score: float) -> None:
        for i in range(40):  # encode_seconds makes every summary's bytes unique
            write_result(tmp_path, make_result(score, encode_seconds=float(i)), per_query(score))

    def reader() -> None:
        while not stop.is_set():
            try:
                before = summary.read_bytes()
                got = read_per_query(tmp_path, Result.model_validate_json(before))
                if summary.read_bytes() == before:  # no write in between: the pair must match
                    assert got == per_query(json.loads(before)["main_score"])
            except Exception as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                return

    write_result(tmp_path, make_result(0.5, encode_seconds=-1.0), per_query(0.5))
    threads = [threading.Thread(target=writer, args=(s,)) for s in (0.25, 0.75)]
    watcher = threading.Thread(target=reader)
    for t in [watcher, *threads]:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    watcher.join(60)
    assert errors == []
    [stored] = read_results(tmp_path)
    assert read_per_query(tmp_path, stored) == per_query(stored.main_score)
    assert len(list(tmp_path.rglob("*.queries.json*"))) == 1
