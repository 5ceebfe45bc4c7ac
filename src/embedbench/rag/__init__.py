"""BERGEN-style RAG evaluation on top of retrieval: answer metrics, generators, generation + scoring.

Retrieval-side RAG scoring (answer-recall@k) needs no generator and lives in `embedbench.scoring.task_metrics`;
this package adds the optional generation step: `load_generator(ref)` gives a Generator,
`generate_and_score(...)` returns per-query `match` / `exact_match` / `f1`.
"""

from embedbench.rag.generators import (
    ChatEndpointGenerator,
    Generator,
    TransformersGenerator,
    build_messages,
    load_generator,
)
from embedbench.rag.metrics import exact_match, match, score_answer, token_f1
from embedbench.rag.run import generate_and_score, top_passages

__all__ = [
    "ChatEndpointGenerator",
    "Generator",
    "TransformersGenerator",
    "build_messages",
    "exact_match",
    "generate_and_score",
    "load_generator",
    "match",
    "score_answer",
    "token_f1",
    "top_passages",
]
