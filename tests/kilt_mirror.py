"""A tiny local mirror of BERGEN's hub datasets, in each repo's own layout, columns, configs and splits.

`write_kilt_mirror(root)` writes `<root>/<owner>/<name>/...` for:
- facebook/kilt_wikipedia  2019-08-01/partial-full/000{0,1}.parquet (the hub's parquet export layout),
                           and kilt_knowledgesource.json (KILT's JSON-lines dump, for full-corpus runs)
- facebook/kilt_tasks      README.md `configs` + {nq,hotpotqa,triviaqa_support_only}/validation-00000-of-00001.parquet
- mandarjoshi/trivia_qa    README.md `configs` + unfiltered.nocontext/validation-00000-of-00001.parquet
- din0s/asqa               default/dev/0000.parquet (parquet export layout)
- akariasai/PopQA          test.tsv
so `embedbench.data.kilt` reads it through `datasets.load_dataset` exactly as it reads the hub.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from datasets import Dataset, Features, Value

S, I32 = Value("string"), Value("int32")
WIKI = Features({"kilt_id": S, "wikipedia_id": S, "wikipedia_title": S,
                 "text": {"paragraph": [S]}, "categories": S})
PROVENANCE = {"bleu_score": Value("float32"), "start_character": I32, "start_paragraph_id": I32,
              "end_character": I32, "end_paragraph_id": I32, "section": S, "title": S, "wikipedia_id": S,
              "meta": {"fever_page_id": S, "fever_sentence_id": I32, "annotation_id": S, "yes_no_answer": S,
                       "evidence_span": [S]}}
KILT = Features({"id": S, "input": S,
                 "meta": {"left_context": S, "mention": S, "right_context": S, "obj_surface": [S],
                          "sub_surface": [S], "subj_aliases": [S], "template_questions": [S]},
                 "output": [{"answer": S, "meta": {"score": I32}, "provenance": [PROVENANCE]}]})
ASQA = Features({"ambiguous_question": S,
                 "qa_pairs": [{"context": S, "question": S, "short_answers": [S], "wikipage": S}],
                 "wikipages": [{"title": S, "url": S}],
                 "annotations": [{"knowledge": [{"content": S, "wikipage": S}], "long_answer": S}],
                 "sample_id": S})


def filler(tag: str, n: int) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


# wikipedia_id -> (title, paragraphs). Paragraph 0 is the title line, as in KILT.
PAGES: dict[str, tuple[str, list[str]]] = {
    "12": ("Paris", ["Paris\n", "Paris is the capital of France. " + filler("pa", 120) + "\n",
                     "Section::::History.\n", "BULLET::::- Lutetia was its Roman name\n",
                     "The city grew on the Seine. " + filler("pb", 30) + "\n"]),
    "20": ("Hamlet", ["Hamlet\n", filler("ha", 95) + "\n",
                      "The tragedy was written by William Shakespeare around 1600.\n"]),
    "31": ("George Rankin", ["George Rankin\n", "George Rankin was an Australian soldier and politician.\n"]),
    "40": ("Moon landing", ["Moon landing\n", filler("mo", 150) + "\n",
                            "BULLET::::- Apollo 11 landed in 1969\n"]),
}
for n in range(5):
    PAGES[str(100 + n)] = (f"Filler {n}", [f"Filler {n}\n", filler(f"f{n}x", 180) + "\n"])


def _prov(wid: str, first: int, last: int) -> dict:
    return {"bleu_score": 1.0, "start_character": 0, "start_paragraph_id": first, "end_character": 10,
            "end_paragraph_id": last, "section": "Section::::Abstract", "title": PAGES.get(wid, ("?",))[0],
            "wikipedia_id": wid, "meta": {"fever_page_id": "", "fever_sentence_id": -1, "annotation_id": "-1",
                                          "yes_no_answer": "", "evidence_span": []}}


def _kilt_row(qid: str, text: str, outputs: list[tuple[str, list[dict]]]) -> dict:
    meta = {"left_context": "", "mention": "", "right_context": "", "obj_surface": [], "sub_surface": [],
            "subj_aliases": [], "template_questions": []}
    return {"id": qid, "input": text, "meta": meta,
            "output": [{"answer": a, "meta": {"score": 0}, "provenance": p} for a, p in outputs]}


NQ = [
    _kilt_row("nq1", "what is the capital of france", [("Paris", [_prov("12", 1, 1)])]),
    _kilt_row("nq2", "who wrote hamlet", [("William Shakespeare", []), ("Shakespeare", [_prov("20", 2, 2)])]),
    _kilt_row("nq3", "a question with only provenance", [("", [_prov("12", 1, 1)])]),
    _kilt_row("nq4", "a question about a page outside the corpus", [("Nowhere", [_prov("999", 1, 1)])]),
    _kilt_row("nq5", "when did apollo 11 land", [("1969", [_prov("40", 2, 2)])]),
]
HOTPOT = [_kilt_row("5a8b57f25542995d1e6f1371", "which city on the seine is the capital of france",
                    [("Paris", [_prov("12", 1, 1)]), ("", [_prov("20", 2, 2)])])]
TRIVIA = [_kilt_row("tc_1", "", [("Paris", [_prov("12", 1, 1)])]),
          _kilt_row("tc_2", "", [("Shakespeare", [_prov("20", 2, 2)])]),
          _kilt_row("tc_3", "", [("Nobody", [_prov("20", 1, 1)])])]  # not in trivia_qa: no question text
TRIVIA_TEXT = [{"question": "Which city is the capital of France?", "question_id": "tc_1", "question_source": "x"},
               {"question": "Who wrote Hamlet?", "question_id": "tc_2", "question_source": "x"}]
ASQA_ROWS = [{"ambiguous_question": "Who wrote the play Hamlet?", "sample_id": "-4417",
              "qa_pairs": [{"context": "", "question": "Who wrote Hamlet?", "short_answers": ["William Shakespeare",
                                                                                                "Shakespeare"],
                            "wikipage": "Hamlet"}],
              "wikipages": [{"title": "Hamlet", "url": "https://en.wikipedia.org/wiki/Hamlet"}],
              "annotations": [{"knowledge": [], "long_answer": "Shakespeare wrote it."}]}]
POPQA_HEADER = ["id", "subj", "prop", "obj", "subj_id", "prop_id", "obj_id", "s_aliases", "o_aliases", "s_uri",
                "o_uri", "s_wiki_title", "o_wiki_title", "s_pop", "o_pop", "question", "possible_answers"]
POPQA_ROWS = [[4222362, "George Rankin", "occupation", "politician", 1, 22, 2, "[]", "[]", "http://x", "http://y",
               "George Rankin", "Politician", 142, 25692, "What is George Rankin's occupation?",
               json.dumps(["politician", "political leader"])],
              [1, "Unknown", "occupation", "x", 1, 22, 2, "[]", "[]", "u", "v", "Not A Page", "x", 1, 1,
               "What does Unknown do?", json.dumps(["nothing"])]]


def _readme(path: Path, configs: dict[str, dict[str, str]]) -> None:
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {pattern}" for split, pattern in splits.items()]
    path.write_text("\n".join(lines + ["---", "# mirror"]) + "\n", encoding="utf-8")


def _parquet(rows: list[dict], features: Features | None, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(path))


def write_kilt_mirror(root: Path) -> Path:
    wiki = [{"kilt_id": wid, "wikipedia_id": wid, "wikipedia_title": t, "text": {"paragraph": ps}, "categories": ""}
            for wid, (t, ps) in PAGES.items()]
    base = root / "facebook" / "kilt_wikipedia" / "2019-08-01" / "partial-full"
    _parquet(wiki[:4], WIKI, base / "0000.parquet")
    _parquet(wiki[4:], WIKI, base / "0001.parquet")
    # KILT's own knowledge source (what a full-corpus run reads): JSON lines, `text` a list of strings.
    with (root / "facebook" / "kilt_wikipedia" / "kilt_knowledgesource.json").open("w", encoding="utf-8") as fh:
        for page in wiki:
            fh.write(json.dumps({"_id": page["kilt_id"], "wikipedia_id": page["wikipedia_id"],
                                 "wikipedia_title": page["wikipedia_title"], "text": page["text"]["paragraph"],
                                 "anchors": [], "categories": ""}) + "\n")
    tasks = root / "facebook" / "kilt_tasks"
    for config, rows in (("nq", NQ), ("hotpotqa", HOTPOT), ("triviaqa_support_only", TRIVIA)):
        _parquet(rows, KILT, tasks / config / "validation-00000-of-00001.parquet")
    _readme(tasks / "README.md", {c: {"validation": f"{c}/validation-*"}
                                  for c in ("nq", "hotpotqa", "triviaqa_support_only")})
    trivia = root / "mandarjoshi" / "trivia_qa"
    _parquet(TRIVIA_TEXT, None, trivia / "unfiltered.nocontext" / "validation-00000-of-00001.parquet")
    _readme(trivia / "README.md", {"unfiltered.nocontext": {"validation": "unfiltered.nocontext/validation-*"}})
    _parquet(ASQA_ROWS, ASQA, root / "din0s" / "asqa" / "default" / "dev" / "0000.parquet")
    popqa = root / "akariasai" / "PopQA"
    popqa.mkdir(parents=True, exist_ok=True)
    with (popqa / "test.tsv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(POPQA_HEADER)
        writer.writerows(POPQA_ROWS)
    return root
