"""HTTP endpoints that serve int8 or binary codes are recorded at that precision (issue 10, item 7).

An int8 endpoint's result is precision int8, quantization native (the server quantized), d bytes per
vector; a binary endpoint's is binary, ceil(d/8) bytes. A precision finer than what is served (fp32,
fp16, binary+fp32 on int8 codes; anything but binary on bits) is refused: scored on the codes it
would be the int8 number under an fp32 label and a 4·d-byte cost.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from http_fakes import fake_api_server, float_vector, int8_codes  # noqa: F401  (fixture)

from embedbench.cli import main
from embedbench.data.formats import load_dataset_spec
from embedbench.errors import EmbedbenchError
from embedbench.scoring.metrics import mean_metrics, per_query_metrics
from embedbench.engine.runner import evaluate

DIM = 24


def _ref(server, fmt: str) -> str:
    return f"{server.url}?model=m&format={fmt}&max_retries=0"


def _ndcg10(beir_dir, code, normalize: bool = True) -> float:
    """The oracle: ndcg@10 of the cosine of each text's served codes, ranked in float64 (+-1 vectors all
    have norm sqrt(d): their integer dot products keep Hamming ties exact, as trec_eval then breaks them)."""
    data = load_dataset_spec(f"beir:{beir_dir}", None)
    qids, dids = sorted(data.queries), sorted(data.corpus)
    q = np.stack([code(data.queries[i].text) for i in qids]).astype(np.float64)
    d = np.stack([code(data.corpus[i].full_text) for i in dids]).astype(np.float64)
    if normalize:
        q, d = q / np.linalg.norm(q, axis=1, keepdims=True), d / np.linalg.norm(d, axis=1, keepdims=True)
    scores = q @ d.T
    run = {qid: dict(zip(dids, row.tolist())) for qid, row in zip(qids, scores)}
    return mean_metrics(per_query_metrics({k: data.qrels[k] for k in qids}, run))["ndcg_at_10"]


def test_an_int8_endpoint_is_recorded_as_native_int8(fake_api_server, beir_dir, tmp_path):
    server = fake_api_server(dim=DIM)
    (r,) = evaluate(_ref(server, "base64_int8"), dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r")
    assert (r.precision, r.quantization, r.dim, r.bytes_per_vector) == ("int8", "native", DIM, DIM)
    assert r.pages_per_gb == (1 << 30) // DIM
    assert r.main_score == pytest.approx(_ndcg10(beir_dir, lambda t: int8_codes(float_vector(t, DIM))), abs=1e-6)


def test_a_binary_endpoint_is_recorded_as_native_binary(fake_api_server, beir_dir, tmp_path):
    server = fake_api_server(dim=DIM)
    (r,) = evaluate(_ref(server, "base64_binary"), dataset=f"beir:{beir_dir}", results_dir=tmp_path / "r")
    assert (r.precision, r.quantization, r.dim, r.bytes_per_vector) == ("binary", "native", DIM, DIM // 8)
    # Hamming ranking = cosine of the +-1 vectors.
    signs = lambda t: np.where(float_vector(t, DIM) >= 0, 1.0, -1.0)  # noqa: E731
    assert r.main_score == pytest.approx(_ndcg10(beir_dir, signs, normalize=False), abs=1e-6)


def test_coarser_precisions_of_an_int8_endpoint_are_recorded_as_what_they_are(fake_api_server, beir_dir, tmp_path):
    server = fake_api_server(dim=DIM)
    results = evaluate(_ref(server, "base64_int8"), dataset=f"beir:{beir_dir}",
                       precisions="int8,binary,binary+int8", rescore_depth=40, write=False)
    got = {r.precision: (r.quantization, r.bytes_per_vector) for r in results}
    assert got == {"int8": ("native", DIM), "binary": ("native", DIM // 8), "binary+int8": ("native", DIM + DIM // 8)}


@pytest.mark.parametrize("fmt, asked, served", [
    ("base64_int8", "fp32", "int8"),
    ("base64_int8", "int8,fp16", "int8"),
    ("base64_int8", "binary+fp32", "int8"),
    ("base64_binary", "int8", "binary"),
    ("base64_binary", "binary+int8", "binary"),
])
def test_a_precision_finer_than_served_is_one_line_and_exit_2(fake_api_server, beir_dir, tmp_path, capsys,
                                                               fmt, asked, served):
    server = fake_api_server(dim=DIM)
    code = main(["eval", "--model", _ref(server, fmt), "--dataset", f"beir:{beir_dir}", "--precision", asked,
                 "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"serves {served} codes, not floats" in err and ("use int8," if served == "int8" else "use binary,") in err
    assert not (tmp_path / "r").exists() and server.posts() == []  # refused before anything was encoded


def test_the_cli_default_is_what_the_endpoint_serves(fake_api_server, beir_dir, tmp_path, capsys):
    server = fake_api_server(dim=DIM)
    assert main(["eval", "--model", _ref(server, "base64_int8"), "--dataset", f"beir:{beir_dir}",
                 "--results-dir", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main(["results", "--results-dir", str(tmp_path / "r"), "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert (record["precision"], record["quantization"], record["bytes_per_vector"]) == ("int8", "native", DIM)


def test_a_float_endpoint_stays_fp32(fake_api_server, beir_dir, tmp_path):
    server = fake_api_server(dim=DIM)
    (r,) = evaluate(_ref(server, "base64"), dataset=f"beir:{beir_dir}", write=False)
    assert (r.precision, r.quantization, r.bytes_per_vector) == ("fp32", "none", 4 * DIM)
    assert r.main_score == pytest.approx(_ndcg10(beir_dir, lambda t: float_vector(t, DIM)), abs=1e-6)


def test_an_encoder_object_serving_int8_is_checked_too(fake_api_server, beir_dir, tmp_path):
    from embedbench.encoders.http_api import from_url

    enc = from_url(_ref(fake_api_server(dim=DIM), "base64_int8"))
    with pytest.raises(EmbedbenchError, match="serves int8 codes"):
        evaluate(enc, dataset=f"beir:{beir_dir}", precisions="fp32", results_dir=tmp_path / "r")
