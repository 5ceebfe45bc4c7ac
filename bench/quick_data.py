"""Tiny slices of the real datasets (XQuAD-R en, Vaswani) in their own formats, for `--quick` runs."""

from __future__ import annotations

import json
from pathlib import Path

from embedbench.data.trec import load_trec


def squad_slice(src: Path, dst: Path, paragraphs: int = 4, questions: int = 1) -> Path:
    """The first `paragraphs` paragraphs of the first article, `questions` questions each."""
    root = json.loads(src.read_text(encoding="utf-8"))
    article = dict(root["data"][0])
    article["paragraphs"] = [dict(p, qas=p["qas"][:questions]) for p in article["paragraphs"][:paragraphs]]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps({"version": root.get("version", "1.1"), "data": [article]}), encoding="utf-8")
    return dst


def trec_slice(src: Path, dst: Path, queries: int = 2, extra_docs: int = 10) -> Path:
    """The first `queries` topics, their relevant documents and `extra_docs` others, as a TREC folder."""
    data = load_trec(src)
    qids = sorted(data.qrels, key=lambda q: int(q) if q.isdigit() else q)[:queries]
    keep = {d for q in qids for d in data.qrels[q]}
    keep |= set(sorted(set(data.corpus) - keep)[:extra_docs])
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "doc-text.trec").write_text("".join(
        f"<DOC>\n<DOCNO>{d}</DOCNO>\n{data.corpus[d].text}\n</DOC>\n" for d in sorted(keep)), encoding="utf-8")
    (dst / "query-text.trec").write_text("".join(
        f"<top>\n<num>{q}</num>\n<title>{data.queries[q].text}</title>\n</top>\n" for q in qids), encoding="utf-8")
    (dst / "qrels").write_text("".join(
        f"{q} 0 {d} {r}\n" for q in qids for d, r in sorted(data.qrels[q].items()) if d in keep), encoding="utf-8")
    return dst


def write(data_dir: Path, dst: Path) -> tuple[tuple[str, str, str], ...]:
    """The sweep's DATASETS tuple for the slices, with absolute paths."""
    squad = squad_slice(data_dir / "xquad-r" / "en.json", dst / "xquad-r-en-slice.json")
    trec = trec_slice(data_dir / "vaswani", dst / "vaswani-slice")
    return (("xquad-r-en-slice", "squad", str(squad)), ("vaswani-slice", "trec", str(trec)))
