"""The engine: plan -> encode (through the embedding cache) -> score -> write; the cache and provenance.

The only layer that knows about models, data and results together; `cli` calls into it, and
`report` and `gate` never import it (checked by import-linter, see pyproject.toml).

    runner.py     evaluate(): the steps below, in order
    plan.py       task references and loaded task data, checked before anything is encoded
    context.py    the loaded model and what it is measured at (precisions, dims, context mode)
    queries.py    what one task evaluates: queries, their texts, its variant
    dense.py      encode once through the cache, then per dim x precision: transform, search, score
    lexical.py    models that rank the corpus themselves (BM25)
    score.py      per-query metrics of a ranking
    write.py      provenance, the Result (with the facts reports need), writing
    plans.py      eval plans: checked whole, then run model x suite
    encoding.py   encoding through the cache (queries, documents, chunks in context)
    cache.py      the embedding cache;  provenance.py  code and environment versions
"""
