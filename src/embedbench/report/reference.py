"""Numbers Perplexity published for pplx-embed (company-reported, not measured by embedbench).

Shown in the reports as "reported by authors", in their own table: never averaged with measured
results, never a candidate for a "best" mark. Values are percentages exactly as published in the
paper and model cards `SOURCE` names (each number is quoted from there, not measured or derived).
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ('Perplexity AI, "Diffusion-Pretrained Dense and Contextual Embeddings", arXiv:2602.11151 (2026), '
          "https://arxiv.org/abs/2602.11151, and the pplx-embed model cards "
          "(https://huggingface.co/perplexity-ai/pplx-embed-v1-4b, "
          "https://huggingface.co/perplexity-ai/pplx-embed-context-v1-4b)")


@dataclass(frozen=True)
class ReportedScore:
    benchmark: str
    metric: str
    model: str
    precision: str  # as the authors state it; "not stated" when they don't
    value: float    # percent, as published
    note: str = ""
    source: str = SOURCE


_MTEB = "MTEB(Multilingual, v2) retrieval avg"
_CONTEB = "ConTEB avg"
_Q2Q = "PPLXQuery2Query"
_Q2D = "PPLXQuery2Doc"

REPORTED: tuple[ReportedScore, ...] = (
    ReportedScore(_MTEB, "nDCG@10", "pplx-embed-v1-4b", "int8", 69.66),
    ReportedScore(_MTEB, "nDCG@10", "Qwen3-Embedding-4B", "not stated", 69.60),
    ReportedScore(_MTEB, "nDCG@10", "gemini-embedding-001", "not stated", 67.71),
    ReportedScore(_CONTEB, "nDCG@10", "pplx-embed-context-v1-4b", "int8", 81.96),
    ReportedScore(_CONTEB, "nDCG@10", "voyage-context-3", "not stated", 79.45),
    ReportedScore(_CONTEB, "nDCG@10", "pplx-embed-context-v1-0.6b", "not stated", 76.53),
    ReportedScore(_CONTEB, "nDCG@10", "Anthropic contextual retrieval", "not stated", 72.4),
    ReportedScore(_Q2Q, "Recall@10", "pplx-embed-v1-4b", "not stated", 73.5, "2.4M-document corpus"),
    ReportedScore(_Q2Q, "Recall@10", "Qwen3-Embedding-4B", "not stated", 67.9, "2.4M-document corpus"),
    ReportedScore(_Q2Q, "Recall@10", "pplx-embed-v1-0.6b", "not stated", 71.1, "2.4M-document corpus"),
    ReportedScore(_Q2Q, "Recall@10", "BGE-M3", "not stated", 61.8, "2.4M-document corpus"),
    ReportedScore(_Q2Q, "Recall@10", "Qwen3-Embedding-0.6B", "not stated", 55.1, "2.4M-document corpus"),
    ReportedScore(_Q2D, "Recall@1000", "pplx-embed-v1-4b", "not stated", 91.7, "30M-document corpus"),
    ReportedScore(_Q2D, "Recall@1000", "Qwen3-Embedding-4B", "not stated", 88.6, "30M-document corpus"),
)

NOTES: tuple[str, ...] = (
    "Binary vs INT8 (authors): under 1.6 points lost at 4B, 2-4 points at 0.6B.",
)

COLUMNS = ["benchmark", "metric", "model", "precision", "value_percent", "note"]


def reference_records() -> list[dict[str, object]]:
    return [{"benchmark": r.benchmark, "metric": r.metric, "model": r.model, "precision": r.precision,
             "value_percent": r.value, "note": r.note} for r in REPORTED]
