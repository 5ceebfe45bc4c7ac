"""Scoring: precision transforms (vectors in, vectors or codes out), search, IR and task metrics, statistics.

Pure functions over arrays and rankings: nothing here loads a model or reads a suite, and nothing
here imports encoders, engine, data or rag (they import scoring).

    precision     the spec table, dims check, float vectors -> stored vectors / codes (Encoded)
    search        exact top-k kernels: blocked dense inner product, Hamming
    retrieval     top-k of an Encoded: the kernel per kind, two-stage re-ranking, exact overlap
    metrics       trec_eval's ranking metrics, top-k overlap
    task_metrics  comprehensiveness, answer recall
    answers       gold-answer normalization
    stats         the bootstrap CI shared by report and gate
"""
