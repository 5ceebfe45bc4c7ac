"""embedbench.data.squad: a tiny SQuAD file in tmp_path and the real XQuAD-R files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import require_data

from embedbench.data.formats import load_dataset_spec
from embedbench.data.squad import load_squad
from embedbench.errors import DataError


def _qa(qid: str, question: str, answer: str = "x") -> dict:
    return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": 0}]}


TINY = {
    "version": "1.1",
    "data": [
        {
            "title": "A",
            "paragraphs": [
                {"context": "Alpha text.", "qas": [_qa("q1", "What is alpha?", "Alpha")]},
                {"context": "Beta text.", "qas": [_qa("q2", "What is beta?"), _qa("q3", "Beta again?")]},
            ],
        },
        {
            "title": "B",
            "paragraphs": [
                {"context": "Alpha text.", "qas": [_qa("q4", "Alpha, second copy?")]},  # duplicate context
                {"context": "Gamma text.", "qas": []},
            ],
        },
    ],
}


def write(tmp_path: Path, obj: object, name: str = "de.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_tiny_file(tmp_path: Path) -> None:
    data = load_squad(write(tmp_path, TINY)).validate()
    assert sorted(data.corpus) == ["0-0", "0-1", "1-1"]  # "1-0" repeats "0-0"'s context
    assert data.corpus["0-0"].text == "Alpha text."
    assert data.corpus["0-0"].title == ""  # context only, as mteb
    assert data.qrels == {"q1": {"0-0": 1}, "q2": {"0-1": 1}, "q3": {"0-1": 1}, "q4": {"0-0": 1}}
    assert data.extra["answers"] == {"q1": ["Alpha"], "q2": ["x"], "q3": ["x"], "q4": ["x"]}
    assert data.extra["language"] == "de"
    assert data.queries["q1"].language == "de" and data.corpus["0-0"].language == "de"


def test_no_language_for_long_stem(tmp_path: Path) -> None:
    data = load_squad(write(tmp_path, TINY, name="squad-dev.json"))
    assert "language" not in data.extra
    assert data.queries["q1"].language is None


def _bad(mutate) -> dict:  # type: ignore[no-untyped-def]
    obj = json.loads(json.dumps(TINY))
    mutate(obj)
    return obj


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o["data"][1]["paragraphs"][1]["qas"].append(_qa("q2", "dup?")), ["duplicate question id 'q2'"]),
        (lambda o: o["data"][0]["paragraphs"][0]["qas"][0].update(question=" "), ["'q1'", "question"]),
        (lambda o: o["data"][0]["paragraphs"][1].update(context=3), ["article 0", "paragraph 1", "context"]),
        (lambda o: o["data"][0]["paragraphs"][0]["qas"][0].pop("id"), ["article 0", "question 0", "'id'"]),
        (lambda o: o["data"][0]["paragraphs"][0]["qas"][0]["answers"].append({"answer_start": 1}), ["'q1'", "answer"]),
        (lambda o: o.pop("data"), ['"data" list']),
    ],
)
def test_errors_name_file_and_id(tmp_path: Path, mutate, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, _bad(mutate))
    with pytest.raises(DataError) as info:
        load_squad(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message


def test_malformed_json_has_line(tmp_path: Path) -> None:
    path = tmp_path / "en.json"
    path.write_text('{"data": [\n{"title": }\n]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"en\.json:2: malformed JSON"):
        load_squad(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_squad(tmp_path / "xx.json")


def test_real_xquad_en() -> None:
    data_dir = require_data("xquad-r/en.json").parents[1]
    data = load_dataset_spec("squad:xquad-r/en.json", data_dir)
    assert len(data.corpus) == 240  # 240 paragraphs, all contexts distinct
    assert len(data.queries) == 1190
    assert all(len(rels) == 1 for rels in data.qrels.values())
    assert data.extra["language"] == "en"
    answers = data.extra["answers"]
    assert isinstance(answers, dict) and len(answers) == 1190 and all(answers.values())
    assert all(d.title == "" for d in data.corpus.values())


def test_real_xquad_parallel_ids() -> None:
    en = load_squad(require_data("xquad-r/en.json"))
    zh = load_squad(require_data("xquad-r/zh.json"))
    assert en.qrels == zh.qrels  # same question ids point at the same paragraph ids
    assert en.corpus["0-0"].text != zh.corpus["0-0"].text
