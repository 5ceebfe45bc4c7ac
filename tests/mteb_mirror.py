"""Write tiny local copies of mteb's hub retrieval datasets in each repo's own layout (test helper).

mteb 2.x reads a retrieval dataset with ``datasets.load_dataset(repo, config, split=...)`` per
part, so a local folder laid out like the hub repo goes through exactly the same code. Layouts
(read off the hub repos at the revisions mteb 2.26 pins):

- ``mteb/WikipediaRetrievalMultilingual`` (one subset per language): configs ``<lang>-corpus``
  (id, text, title), ``<lang>-queries`` (id, text), ``<lang>-qrels`` (query-id, corpus-id,
  score int64), split ``test``, files ``<config>/test-00000-of-00001.parquet``, and a README.md
  whose YAML ``configs:`` maps each config to ``<config>/test-*``.
- ``mteb/arguana`` @ c22ab2a (one subset): JSON lines; config ``default`` = qrels
  (``qrels/test.jsonl``: query-id, corpus-id, score float64, split ``test``), ``corpus``
  (``corpus.jsonl``: _id, title, text, split ``corpus``), ``queries`` (``queries.jsonl``:
  _id, text, split ``queries``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

Rows = list[dict[str, object]]
WIKI_REPO = "mteb/WikipediaRetrievalMultilingual"
ARGUANA_REPO = "mteb/arguana"


def _readme(configs: list[tuple[str, str, str]], title: str) -> str:
    lines = ["---", "configs:"]
    for config, split, path in configs:
        lines += [f"- config_name: {config}", "  data_files:", f"  - split: {split}", f"    path: {path}"]
    return "\n".join([*lines, "---", "", f"# {title} (local test copy)", ""])


def write_wikipedia_multilingual(folder: Path, subsets: dict[str, tuple[Rows, Rows, Rows]]) -> Path:
    """subsets: {lang: (corpus rows, query rows, qrels rows)} -> the hub repo's parquet layout."""
    folder.mkdir(parents=True, exist_ok=True)
    configs = []
    for lang, (corpus, queries, qrels) in subsets.items():
        schemas = {
            "corpus": pa.schema([("id", pa.string()), ("text", pa.string()), ("title", pa.string())]),
            "queries": pa.schema([("id", pa.string()), ("text", pa.string())]),
            "qrels": pa.schema([("query-id", pa.string()), ("corpus-id", pa.string()), ("score", pa.int64())]),
        }
        for part, rows in (("corpus", corpus), ("queries", queries), ("qrels", qrels)):
            config = f"{lang}-{part}"
            (folder / config).mkdir(exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=schemas[part]),
                           folder / config / "test-00000-of-00001.parquet")
            configs.append((config, "test", f"{config}/test-*"))
    (folder / "README.md").write_text(_readme(configs, WIKI_REPO), encoding="utf-8")
    return folder


def write_arguana(folder: Path, corpus: Rows, queries: Rows, qrels: Rows) -> Path:
    """corpus rows {_id, title, text}, query rows {_id, text}, qrels {query-id, corpus-id, score}."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for path, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries), ("qrels/test.jsonl", qrels)):
        with (folder / path).open("w", encoding="utf-8") as fh:
            for row in rows:
                if "score" in row:
                    row = {**row, "score": float(row["score"])}  # the hub file stores float64 scores
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    configs = [("default", "test", "qrels/test.jsonl"), ("corpus", "corpus", "corpus.jsonl"),
               ("queries", "queries", "queries.jsonl")]
    (folder / "README.md").write_text(_readme(configs, ARGUANA_REPO), encoding="utf-8")
    return folder


def xquad_rows(path: Path, n_paragraphs: int, prefix: str) -> tuple[Rows, Rows, Rows]:
    """Corpus (paragraphs, article title as title), queries and qrels from one XQuAD-R file."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    corpus: Rows = []
    queries: Rows = []
    qrels: Rows = []
    for article in data:
        for p in article["paragraphs"]:
            if len(corpus) == n_paragraphs:
                return corpus, queries, qrels
            did = f"{prefix}-p{len(corpus)}"
            corpus.append({"id": did, "text": p["context"], "title": article["title"]})
            for qa in p["qas"]:
                qid = f"{prefix}-{qa['id']}"
                queries.append({"id": qid, "text": qa["question"]})
                qrels.append({"query-id": qid, "corpus-id": did, "score": 1})
    return corpus, queries, qrels
