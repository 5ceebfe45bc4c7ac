"""embedbench.data.trec: tiny TREC folders in tmp_path and the real vaswani collection."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_data

from embedbench.data.formats import load_dataset_spec
from embedbench.data.trec import find_trec_files, load_trec
from embedbench.errors import DataError

DOCS = """<DOC>
<DOCNO>1</DOCNO>
first   document
about <B>bold</B> things
</DOC>
<DOC><DOCNO> 2 </DOCNO> second document </DOC>
<DOC>
<DOCNO>3</DOCNO>
third document
</DOC>
"""
# classic TREC topics: no close tags for num / title / desc
TOPICS = """<top>
<num> Number: 051
<title> Topic: Airbus Subsidies

<desc> Description:
Document will discuss government assistance to Airbus.
</top>

<top>
<num>52</num><title>
SECOND TOPIC
</title>
</top>
<top>
<num>53</num><title>unjudged topic</title>
"""
QRELS = "051 0 1 1\n051 0 3 0\n52 0 2 2\n"


def write_trec(root: Path, docs: str = DOCS, topics: str = TOPICS, qrels: str = QRELS, names: tuple[str, str, str] = ("doc-text.trec", "query-text.trec", "qrels")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in zip(names, (docs, topics, qrels)):
        (root / name).write_text(text, encoding="utf-8")
    (root / "README.md").write_text("<DOC> not a data file", encoding="utf-8")
    return root


def test_tiny_collection(tmp_path: Path) -> None:
    data = load_trec(write_trec(tmp_path / "c")).validate()
    assert data.corpus["1"].text == "first document about bold things"
    assert data.corpus["2"].text == "second document"
    assert {qid: q.text for qid, q in data.queries.items()} == {"051": "Airbus Subsidies", "52": "SECOND TOPIC"}
    assert data.qrels == {"051": {"1": 1, "3": 0}, "52": {"2": 2}}  # topic 53 has no qrels: dropped


def test_files_found_by_content(tmp_path: Path) -> None:
    root = write_trec(tmp_path / "c", names=("collection.sgml", "t.txt", "judgements.txt"))
    files = find_trec_files(root)
    assert {k: v.name for k, v in files.items()} == {
        "documents": "collection.sgml",
        "topics": "t.txt",
        "qrels": "judgements.txt",
    }
    assert len(load_trec(root).queries) == 2


def test_two_candidate_files(tmp_path: Path) -> None:
    root = write_trec(tmp_path / "c")
    (root / "qrels.old").write_text(QRELS, encoding="utf-8")
    with pytest.raises(DataError, match="more than one qrels file: qrels, qrels.old"):
        load_trec(root)


def test_missing_qrels_file(tmp_path: Path) -> None:
    root = write_trec(tmp_path / "c")
    (root / "qrels").unlink()
    with pytest.raises(DataError, match="no qrels file found"):
        load_trec(root)


@pytest.mark.parametrize(
    ("which", "content", "expected"),
    [
        ("docs", DOCS + "<DOC>\n<DOCNO>2</DOCNO>\nagain\n</DOC>\n", ["doc-text.trec:11:", "duplicate DOCNO '2'", "line 6"]),
        ("docs", DOCS + "<DOC>\n<DOCNO>4</DOCNO>\nno end\n", ["doc-text.trec:11:", "without a matching </DOC>"]),
        ("docs", DOCS + "<DOC>\n<DOCNO>4</DOCNO>\n</DOC>\n", ["doc-text.trec:11:", "'4'", "no text"]),
        ("docs", DOCS + "<DOC>\nno docno\n</DOC>\n", ["doc-text.trec:11:", "no <DOCNO>"]),
        ("docs", DOCS + "stray words\n", ["doc-text.trec:11:", "outside <DOC>"]),
        ("topics", TOPICS + "<top><num>52</num><title>dup</title></top>\n", ["query-text.trec:16:", "duplicate topic number '52'", "line 9"]),
        ("topics", TOPICS + "<top><num>54</num><desc>no title</desc></top>\n", ["query-text.trec:16:", "'54'", "<title>"]),
        ("qrels", QRELS + "52 0 99 1\n", ["qrels:4:", "unknown document '99'"]),
        ("qrels", QRELS + "60 0 1 1\n", ["qrels:4:", "unknown topic '60'"]),
        ("qrels", QRELS + "52 0 1 high\n", ["qrels:4:", "'high'", "'52'", "not an integer"]),
        ("qrels", QRELS + "52 1 1\n", ["qrels:4:", "4 columns"]),
        ("qrels", QRELS + "52 0 2 1\n", ["qrels:4:", "duplicate judgement", "'52'", "'2'"]),
    ],
)
def test_errors_name_file_line_and_id(tmp_path: Path, which: str, content: str, expected: list[str]) -> None:
    root = write_trec(tmp_path / "c", **{which: content})
    with pytest.raises(DataError) as info:
        load_trec(root)
    for part in expected:
        assert part in str(info.value), str(info.value)


def test_real_vaswani() -> None:
    data_dir = require_data("vaswani/qrels").parents[1]
    data = load_dataset_spec("trec:vaswani", data_dir)
    assert len(data.corpus) == 11_429
    assert len(data.queries) == 93
    assert sum(len(r) for r in data.qrels.values()) == 2_083
    assert data.queries["1"].text == "MEASUREMENT OF DIELECTRIC CONSTANT OF LIQUIDS BY THE USE OF MICROWAVE TECHNIQUES"
    assert data.corpus["1"].text.startswith("compact memories have flexible capacities a digital data storage")
