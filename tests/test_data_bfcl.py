"""embedbench.data.bfcl: the wheel download (cached), a synthetic wheel, and the real counts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import data_absent

from embedbench.data import bfcl
from embedbench.data.bfcl import BFCL_CATEGORIES, BFCL_REQUIREMENT, ensure_bfcl_wheel, load_bfcl
from embedbench.data.types import RetrievalData
from embedbench.errors import DataError, EmbedbenchError

# Counts of bfcl-eval==2026.3.23 (the suite file quotes them).
EXPECTED_PER_CATEGORY = {
    "simple_python": 400,
    "simple_java": 100,
    "simple_javascript": 50,
    "multiple": 200,
    "parallel": 200,
    "parallel_multiple": 200,
    "live_simple": 258,
    "live_multiple": 1053,
    "live_parallel": 16,
    "live_parallel_multiple": 24,
}
EXPECTED_QUERIES = 2501
EXPECTED_DOCUMENTS = 2101


def _cache_dir() -> Path:
    env = os.environ.get("EMBEDBENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "embedbench"


@pytest.fixture(scope="session")
def bfcl_wheel() -> Path:
    try:
        return ensure_bfcl_wheel(_cache_dir())
    except EmbedbenchError as exc:  # `make setup` fetches it; without it the default suite cannot run either
        data_absent(f"BFCL wheel unavailable (no network?): {exc}")


@pytest.fixture(scope="session")
def bfcl_data(bfcl_wheel: Path) -> RetrievalData:
    return load_bfcl(bfcl_wheel).validate()


# ---------------------------------------------------------------- real wheel


def test_counts(bfcl_data: RetrievalData) -> None:
    assert len(bfcl_data.queries) == EXPECTED_QUERIES
    assert len(bfcl_data.corpus) == EXPECTED_DOCUMENTS
    assert Counter(bfcl_data.extra["category"].values()) == EXPECTED_PER_CATEGORY  # type: ignore[union-attr]
    assert bfcl_data.extra["dropped"] == {c: 0 for c in BFCL_CATEGORIES}


def test_every_query_has_a_relevant_tool(bfcl_data: RetrievalData) -> None:
    assert set(bfcl_data.qrels) == set(bfcl_data.queries)
    for qid, rels in bfcl_data.qrels.items():
        assert rels and all(r == 1 for r in rels.values()), qid
        assert all(did in bfcl_data.corpus for did in rels)


def test_known_item(bfcl_data: RetrievalData) -> None:
    assert bfcl_data.queries["simple_python_1"].text == "Calculate the factorial of 5 using math functions."
    (did,) = bfcl_data.qrels["simple_python_1"]
    assert re.fullmatch(r"math\.factorial@[0-9a-f]{8}", did)
    assert bfcl_data.corpus[did].text.startswith("math.factorial\nCalculate the factorial of a given number.\nnumber (integer, required):")


def test_cached_wheel_is_reused(bfcl_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when the wheel is cached")

    monkeypatch.setattr(bfcl.subprocess, "run", no_pip)
    assert ensure_bfcl_wheel(bfcl_wheel.parent.parent) == bfcl_wheel


# ---------------------------------------------------------------- no network needed


def test_download_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        assert "--no-deps" in cmd and BFCL_REQUIREMENT in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for bfcl-eval\n")

    monkeypatch.setattr(bfcl.subprocess, "run", failing_pip)
    with pytest.raises(EmbedbenchError) as info:
        ensure_bfcl_wheel(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "No matching distribution" in message
    assert f"pip download --no-deps {BFCL_REQUIREMENT} -d {tmp_path / 'wheels'}" in message
    assert not any((tmp_path / "wheels").iterdir())  # no temporary download folder left behind


def _fn(name: str, desc: str = "Does things.") -> dict:
    return {"name": name, "description": desc, "parameters": {"type": "dict", "properties": {}, "required": []}}


def _fake_wheel(path: Path, items: dict[str, list[tuple[dict, list]]], raw: dict[str, str] | None = None) -> Path:
    """A zip with the BFCL layout; items: category -> [(item, ground_truth)]; raw: member -> text."""
    members: dict[str, str] = {}
    for cat in BFCL_CATEGORIES:
        rows = items.get(cat, [])
        members[f"bfcl_eval/data/BFCL_v4_{cat}.json"] = "".join(json.dumps(i) + "\n" for i, _ in rows)
        members[f"bfcl_eval/data/possible_answer/BFCL_v4_{cat}.json"] = "".join(
            json.dumps({"id": i["id"], "ground_truth": gt}) + "\n" for i, gt in rows
        )
    members.update(raw or {})
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def _item(qid: str, functions: list[dict], system: bool = False) -> dict:
    turn = [{"role": "system", "content": "Be brief."}] if system else []
    turn.append({"role": "user", "content": f"question {qid}"})
    return {"id": qid, "question": [turn], "function": functions}


def test_synthetic_mapping_and_drops(tmp_path: Path) -> None:
    wheel = _fake_wheel(
        tmp_path / "fake.whl",
        {
            "simple_python": [
                (_item("simple_python_0", [_fn("math.sqrt")]), [{"math.sqrt": {"x": [4]}}]),
                (_item("simple_python_1", [_fn("other")]), [{"missing_fn": {}}]),  # dropped
            ],
            "multiple": [
                (
                    _item("multiple_0", [_fn("math.sqrt"), _fn("math.pow"), _fn("math.sqrt", "Another.")], system=True),
                    [{"math.sqrt": {}}, {"math.sqrt": {}}],
                ),
            ],
        },
    )
    data = load_bfcl(wheel).validate()
    assert sorted(data.queries) == ["multiple_0", "simple_python_0"]
    assert data.queries["multiple_0"].text == "question multiple_0"  # system message left out
    assert data.extra["dropped"]["simple_python"] == 1  # type: ignore[index]
    assert data.extra["category"] == {"simple_python_0": "simple_python", "multiple_0": "multiple"}
    # (name, description) dedup: 4 distinct tools, the dropped item's tool included
    assert len(data.corpus) == 4
    assert data.qrels["simple_python_0"].keys() < data.qrels["multiple_0"].keys()
    assert len(data.qrels["multiple_0"]) == 2  # both math.sqrt definitions it offers


def test_synthetic_errors(tmp_path: Path) -> None:
    wheel = _fake_wheel(
        tmp_path / "a.whl",
        {"parallel": [(_item("parallel_0", [_fn("f")]), [{"f": {}}])]},
        raw={"bfcl_eval/data/BFCL_v4_live_simple.json": '{"id": "live_simple_0", "question": [[]],\n'},
    )
    with pytest.raises(DataError, match=r"a\.whl!bfcl_eval/data/BFCL_v4_live_simple\.json:1: malformed JSON"):
        load_bfcl(wheel)

    missing = tmp_path / "b.whl"
    with zipfile.ZipFile(missing, "w") as zf:
        zf.writestr("bfcl_eval/__init__.py", "")
    with pytest.raises(DataError, match="possible_answer/BFCL_v4_simple_python.json: missing from the wheel"):
        load_bfcl(missing)

    no_user = _fake_wheel(tmp_path / "c.whl", {"simple_java": [({"id": "simple_java_0", "question": [[]], "function": [_fn("f")]}, [{"f": {}}])]})
    with pytest.raises(DataError, match=r"BFCL_v4_simple_java\.json:1: item 'simple_java_0': the first turn has no user message"):
        load_bfcl(no_user)
