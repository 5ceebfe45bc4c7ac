"""The RAG stage in the runner: retrieval-side answer recall always, generation metrics with a generator."""

from __future__ import annotations

import json

import embedbench


def _squad(path):
    paragraphs = [
        ("The capital of France is Paris.", "What is the capital of France?", "Paris"),
        ("The tallest mountain on Earth is Mount Everest.", "Which mountain is the tallest?", "Mount Everest"),
        ("Water boils at one hundred degrees Celsius.", "At what temperature does water boil?", "one hundred degrees"),
    ]
    data = {"data": [{"title": "t", "paragraphs": [
        {"context": c, "qas": [{"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": c.index(a)}]}]}
        for i, (c, q, a) in enumerate(paragraphs)]}]}
    path.write_text(json.dumps(data))
    return path


class EchoFirstPassage:
    """Answers with the first passage it is given: right exactly when retrieval put the gold passage first."""

    ref = "echo-first"
    fingerprint = "echo-first-v1"

    def __init__(self):
        self.calls = 0

    def generate(self, question, passages):
        self.calls += 1
        return passages[0] if passages else ""


def test_generation_metrics_need_a_generator_and_are_memoized(fake_encoder, tmp_path):
    suite = tmp_path / "rag.yaml"
    (tmp_path / "mini").mkdir()
    _squad(tmp_path / "mini" / "en.json")
    suite.write_text(f"name: rag\ntasks:\n  - name: MiniRAG\n    loader: xquad-r\n    path: {tmp_path / 'mini'}\n"
                     f"    metrics: [answer_recall]\n    main_score: answer_recall_at_1\n"
                     f"    options: {{mode: rag, languages: [en]}}\n")
    plain = embedbench.evaluate(fake_encoder, suite=str(suite), results_dir=tmp_path / "r")[0]
    assert "answer_recall_at_1" in plain.metrics and "match" not in plain.metrics
    assert "generator" not in plain.variant
    gen = EchoFirstPassage()
    results = embedbench.evaluate(fake_encoder, suite=str(suite), precisions="fp32,int8", generator=gen, rag_k=2,
                                  results_dir=tmp_path / "r")
    for r in results:
        assert r.variant["generator"] == "echo-first" and r.variant["rag_k"] == 2
        # the echoed passage contains the gold answer exactly when the top passage holds it
        assert r.metrics["match"] == r.metrics["answer_recall_at_1"]
    assert gen.calls < 2 * 3  # a (question, passages) pair ranked alike by both precisions is answered once
