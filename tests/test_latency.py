"""Query-side costs: the seeded timing sample, single-query latency percentiles, `embedbench latency`."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytest

from embedbench.cli.latency import add_latency_arguments, latency_command
from embedbench.encoders.protocol import EncoderMeta
from embedbench.encoders.settings import EncodeSettings
from embedbench.engine.latency import measure_latency, page_tokens
from embedbench.engine.timing import latency_rows, latency_summary, time_each
from embedbench.errors import EmbedbenchError
from embedbench.results.latency import read_latencies


def test_latency_rows_are_a_seeded_sorted_sample():
    rows = latency_rows(5000, size=200)
    assert len(rows) == 200 and len(set(rows.tolist())) == 200 and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, latency_rows(5000, size=200)) and not np.array_equal(rows, latency_rows(5000, 200, 1))
    assert latency_rows(7, size=200).tolist() == list(range(7))


def test_time_each_times_every_row_after_untimed_warmup():
    calls = []

    def call(r):
        calls.append(r)
        time.sleep(0.05 if r == 4 else 0)

    seconds = time_each(call, np.array([1, 4, 9]), warmup=2)
    assert calls == [1, 4, 1, 4, 9]  # two warm-up calls on the first rows, then every row once
    assert len(seconds) == 3 and seconds[1] >= 0.05  # the sleeping row, timed once


def test_latency_summary_is_numpys_percentiles_in_milliseconds():
    seconds = np.random.default_rng(0).exponential(0.01, 137)
    got = latency_summary(seconds)
    p50, p99 = np.percentile(seconds * 1000, [50, 99])
    assert got == {"latency_p50_ms": round(p50, 4), "latency_p99_ms": round(p99, 4), "latency_queries": 137,
                   "qps_single": round(137 / seconds.sum(), 2)}
    assert latency_summary(np.zeros(0))["latency_p50_ms"] is None


class WordTokenizer:
    def __call__(self, texts, **kwargs):
        return {"input_ids": [[0, *range(len(t.split())), 1] for t in texts]}


class TokenizedFake:
    meta = EncoderMeta(name="tok", revision="r", fingerprint="tok", dim=4, prompts={"document": "passage: "})
    tokenizer = WordTokenizer()


def test_page_tokens_count_the_document_prompt_and_special_tokens():
    assert page_tokens(TokenizedFake(), ["a b c", "d"]) == (1 + 3 + 2) + (1 + 1 + 2)
    assert page_tokens(object(), ["a"]) is None


def test_latency_of_the_hashing_encoder_is_measured_and_written(tmp_path):
    settings = EncodeSettings(show_progress=False)
    record = measure_latency("hashing", settings, repeats=12, warmup=2, pages=24)
    assert record.repeats == record.latency_queries == 12 and record.warmup == 2 and record.n_pages == 24
    assert 0 < record.latency_p50_ms <= record.latency_p99_ms
    assert record.queries_per_second > 0 and record.pages_per_second > 0
    assert record.tokens_per_page is None  # byte n-grams: no tokenizer, so no token count is invented
    parser = argparse.ArgumentParser()
    add_latency_arguments(parser)
    argv = ["--model", "hashing", "--repeats", "5", "--pages", "8", "--results-dir", str(tmp_path)]
    assert latency_command(parser.parse_args(argv), ["latency", *argv]) == 0
    (stored,) = read_latencies(tmp_path)
    assert stored.model == "hashing" and stored.repeats == 5 and stored.command[:2] == ["embedbench", "latency"]


@pytest.mark.parametrize("bad", [{"repeats": 0}, {"warmup": -1}, {"pages": 0}])
def test_bad_latency_options_raise_one_line(bad):
    with pytest.raises(EmbedbenchError, match="must be an integer"):
        measure_latency("hashing", EncodeSettings(show_progress=False), **bad)
