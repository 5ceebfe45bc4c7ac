"""embedbench.data.beir (tiny BEIR folders in tmp_path) and the FORMAT:PATH spec dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedbench.data.beir import load_beir
from embedbench.data.formats import load_dataset_spec
from embedbench.errors import DataError, EmbedbenchError

CORPUS = [
    {"_id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
    {"_id": 2, "title": "", "text": "Berlin is the capital of Germany."},
    {"_id": "d3", "title": "Only a title", "text": ""},
]
QUERIES = [
    {"_id": "q1", "text": "capital of France"},
    {"_id": "q2", "text": "capital of Germany"},
    {"_id": "q3", "text": "a query nobody judged"},
]
QRELS = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\t2\t2", "q2\td3\t0"]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_beir(
    root: Path,
    corpus: str | None = None,
    queries: str | None = None,
    qrels: str | None = None,
    split: str = "test",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    (root / "corpus.jsonl").write_text(_jsonl(CORPUS) if corpus is None else corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text(_jsonl(QUERIES) if queries is None else queries, encoding="utf-8")
    (root / "qrels" / f"{split}.tsv").write_text(
        "\n".join(QRELS) + "\n" if qrels is None else qrels, encoding="utf-8"
    )
    return root


def test_good_folder(tmp_path: Path) -> None:
    data = load_beir(write_beir(tmp_path / "ds")).validate()
    assert sorted(data.corpus) == ["2", "d1", "d3"]  # integer ids become strings
    assert data.corpus["d1"].full_text == "Paris Paris is the capital of France."
    assert data.corpus["d3"].full_text == "Only a title"  # empty text is fine when there is a title
    assert sorted(data.queries) == ["q1", "q2"]  # q3 has no qrels: dropped
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"2": 2, "d3": 0}}
    assert data.source.startswith("beir:")


def test_other_split_and_no_header(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds", qrels="q1\td1\t1\n", split="dev")
    data = load_beir(root, split="dev")
    assert list(data.queries) == ["q1"]


def test_missing_split_lists_present_ones(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds")
    with pytest.raises(DataError, match=r"dev\.tsv: file not found \(qrels splits present: test\)"):
        load_beir(root, split="dev")


def test_missing_corpus_file(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds")
    (root / "corpus.jsonl").unlink()
    with pytest.raises(DataError, match=r"corpus\.jsonl: file not found"):
        load_beir(root)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="folder not found"):
        load_beir(tmp_path / "nope")


def _corpus_with(line2: str) -> str:
    return json.dumps(CORPUS[0]) + "\n" + line2 + "\n" + json.dumps(CORPUS[2]) + "\n"


BAD_CASES = {
    # name: (which file, content, substrings the message must contain)
    "malformed json": ("corpus", _corpus_with('{"_id": "2", "text": '), ["corpus.jsonl:2:", "malformed JSON"]),
    "not an object": ("corpus", _corpus_with('["2", "x"]'), ["corpus.jsonl:2:", "JSON object"]),
    "missing _id": ("corpus", _corpus_with('{"text": "x"}'), ["corpus.jsonl:2:", "'_id'"]),
    "missing text": ("corpus", _corpus_with('{"_id": "2", "title": "t"}'), ["corpus.jsonl:2:", "'2'", "'text'"]),
    "bad id type": ("corpus", _corpus_with('{"_id": 1.5, "text": "x"}'), ["corpus.jsonl:2:", "1.5"]),
    "duplicate doc": ("corpus", _corpus_with('{"_id": "d1", "text": "x"}'), ["corpus.jsonl:2:", "duplicate", "'d1'", "line 1"]),
    "empty doc text": ("corpus", _corpus_with('{"_id": "2", "title": "", "text": "  "}'), ["corpus.jsonl:2:", "'2'", "empty"]),
    "non-string doc text": ("corpus", _corpus_with('{"_id": "2", "text": 7}'), ["corpus.jsonl:2:", "'2'", "not a string"]),
    "non-string title": ("corpus", _corpus_with('{"_id": "2", "title": 3, "text": "x"}'), ["corpus.jsonl:2:", "'title'"]),
    "duplicate query": (
        "queries",
        _jsonl([QUERIES[0], QUERIES[1], {"_id": "q1", "text": "again"}]),
        ["queries.jsonl:3:", "duplicate", "'q1'"],
    ),
    "empty query text": ("queries", _jsonl([QUERIES[0], {"_id": "q2", "text": ""}]), ["queries.jsonl:2:", "'q2'", "empty"]),
    "non-string query": ("queries", _jsonl([{"_id": "q1", "text": ["a"]}]), ["queries.jsonl:1:", "'q1'", "not a string"]),
    "missing query text": ("queries", _jsonl([{"_id": "q1", "txt": "a"}]), ["queries.jsonl:1:", "'q1'", "'text'"]),
    "float score": ("qrels", "query-id\tcorpus-id\tscore\nq1\td1\t1.5\n", ["test.tsv:2:", "'1.5'", "'q1'", "not an integer"]),
    "unknown doc": ("qrels", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n", ["test.tsv:3:", "unknown document", "'d9'"]),
    "unknown query": ("qrels", "q9\td1\t1\n", ["test.tsv:1:", "unknown query", "'q9'"]),
    "two columns": ("qrels", "q1\td1\n", ["test.tsv:1:", "3 tab-separated columns"]),
    "duplicate judgement": ("qrels", "q1\td1\t1\nq1\td1\t0\n", ["test.tsv:2:", "duplicate", "'d1'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_error_names_file_line_and_id(tmp_path: Path, case: str) -> None:
    which, content, expected = BAD_CASES[case]
    root = write_beir(tmp_path / "ds", **{which: content})
    with pytest.raises(DataError) as info:
        load_beir(root)
    message = str(info.value)
    for part in expected:
        assert part in message, f"{case}: {part!r} not in {message!r}"
    assert "\n" not in message


# ---------------------------------------------------------------- formats.load_dataset_spec


def test_spec_relative_to_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_beir(tmp_path / "data" / "tiny")
    monkeypatch.chdir(tmp_path)
    data = load_dataset_spec("beir:tiny", tmp_path / "data")
    assert len(data.queries) == 2
    # as given (relative to the current directory) wins
    assert len(load_dataset_spec("beir:data/tiny", None).corpus) == 3


def test_spec_absolute(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "tiny")
    assert len(load_dataset_spec(f"beir:{root}", None).corpus) == 3


def test_spec_unknown_format_lists_known() -> None:
    with pytest.raises(EmbedbenchError, match="known formats: beir, squad, trec"):
        load_dataset_spec("csv:foo", None)
    with pytest.raises(EmbedbenchError, match="known formats"):
        load_dataset_spec("just-a-path", None)


def test_spec_missing_path(tmp_path: Path) -> None:
    with pytest.raises(EmbedbenchError, match="not found") as info:
        load_dataset_spec("beir:nowhere", tmp_path)
    assert str(tmp_path / "nowhere") in str(info.value)


def test_spec_validates(tmp_path: Path) -> None:
    # every judgement is 0: loads, but validate() rejects it
    write_beir(tmp_path / "zero", qrels="q1\td1\t0\n")
    with pytest.raises(EmbedbenchError, match="no query has a relevant document"):
        load_dataset_spec(f"beir:{tmp_path / 'zero'}", None)
