"""Seeded synthetic retrieval suites: Query2Query (equivalent queries) and Query2Doc (pages stating a fact).

Stand-ins for Perplexity's private PPLXQuery2Query / PPLXQuery2Doc benchmarks: a world of invented
entities and facts (world.py), rendered with native templates in six languages (lang_*.py), with a
corpus-size knob that only adds distractors (common.py), so recall can be compared across sizes.
"""

from embedbench.data.synthetic.common import BLOCK_SIZE, Config
from embedbench.data.synthetic.q2d import build_q2d, iter_q2d_corpus
from embedbench.data.synthetic.q2q import build_q2q, iter_q2q_corpus

__all__ = ["BLOCK_SIZE", "Config", "build_q2d", "build_q2q", "iter_q2d_corpus", "iter_q2q_corpus"]
