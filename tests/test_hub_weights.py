"""Weights first (embedbench.encoders.weights): a hub preset's weights are checked before any data loads.

The hub is `hub_mirrors.FakeHub`, a real HTTP server on 127.0.0.1 reached through huggingface_hub's own
client (HfApi.model_info, snapshot_download); the Hugging Face cache is a tmp folder. Each way of failing
has its own line: absent and offline, no access (HF_TOKEN), no such revision, not enough disk, other.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
from hub_mirrors import FakeHub, add_snapshot, point_hub_client

from embedbench.cli import main
from embedbench.encoders.loading import load_model
from embedbench.encoders.presets import PRESETS
from embedbench.encoders.settings import EncodeSettings
from embedbench.encoders.weights import check_weights, fetch_weights, plan_download
from embedbench.errors import ModelError

REPO = "org/tiny"
SHA1, SHA2 = hashlib.sha1(b"one").hexdigest(), hashlib.sha1(b"two").hexdigest()
CONFIG = b'{"model_type": "bert"}'
WEIGHTS = bytes(range(256)) * 12  # 3072 bytes, stored with LFS like any *.safetensors on the hub


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-hub"


@pytest.fixture
def hub(cache: Path, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import close_session

    with FakeHub() as fake:
        point_hub_client(monkeypatch, fake.endpoint, cache)
        yield fake
    close_session()


def nothing_listening() -> str:
    """An endpoint on a free port of 127.0.0.1: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def refusal_of(call) -> str:
    with pytest.raises(ModelError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "--model PATH" in message
    return message


def test_an_answering_hub_passes_the_check_then_one_size_line_precedes_the_download(hub, cache, monkeypatch):
    hub.add(REPO, SHA1, {"config.json": CONFIG, "model.safetensors": WEIGHTS, "onnx/model.onnx": b"o" * 5000})
    assert check_weights("tiny", REPO, SHA1) is None  # downloadable, not cached: nothing fetched yet
    assert hub.requests == [("GET", f"/api/models/{REPO}/revision/{SHA1}")]

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    hub.probe = err.getvalue
    folder = fetch_weights("tiny", REPO, SHA1)
    size = len(CONFIG) + len(WEIGHTS)  # the ONNX export is never fetched
    line = f"embedbench: downloading {REPO}@{SHA1[:7]}: {size / 1e3:.2f} kB into {cache}"
    assert err.getvalue().splitlines()[0] == line
    downloads = [i for i, (_, path) in enumerate(hub.requests) if "/resolve/" in path]
    assert downloads and all(hub.probed[i].startswith(line) for i in downloads)  # printed before the first byte
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS and (folder / "config.json").read_bytes() == CONFIG
    assert not (folder / "onnx").exists() and folder == cache / "models--org--tiny" / "snapshots" / SHA1


def test_a_cached_snapshot_uses_no_network(hub, cache, monkeypatch, tmp_path):
    source = tmp_path / "config.json"
    source.write_bytes(CONFIG)
    snapshot = add_snapshot(cache, REPO, SHA1, {"config.json": source})
    hub.add(REPO, SHA1, {"config.json": CONFIG})
    assert check_weights("tiny", REPO, SHA1) == snapshot
    assert fetch_weights("tiny", REPO, SHA1) == snapshot
    assert fetch_weights("tiny", REPO, "main") == snapshot  # a branch, read through refs/main
    assert hub.requests == []
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert check_weights("tiny", REPO, SHA1) == snapshot


@pytest.mark.parametrize("refuse", ["gated-403", "gated-401", "unauthorized-401"])
def test_gated_or_unauthorized_names_hf_token(hub, refuse):
    hub.add(REPO, SHA1, {"config.json": CONFIG})
    if refuse.startswith("gated"):
        hub.gate(REPO, status=int(refuse[-3:]))
    else:
        hub.repos[REPO].refuse = (401, {"X-Error-Message": "Invalid username or password."})
    message = refusal_of(lambda: check_weights("tiny", REPO, SHA1))
    assert f"refuses access to {REPO}" in message and "HF_TOKEN" in message and refuse[-3:] in message
    assert "cannot be reached" not in message and "no revision" not in message


def test_a_revision_the_hub_lacks_is_named(hub):
    hub.add(REPO, SHA1, {"config.json": CONFIG})
    message = refusal_of(lambda: check_weights("tiny", REPO, SHA2))
    assert f"the hub has no revision {SHA2} of {REPO}" in message and "Invalid rev id" in message
    assert "HF_TOKEN" not in message


def test_too_little_disk_names_both_sizes_and_counts_only_what_is_missing(hub, cache, monkeypatch):
    hub.add(REPO, SHA1, {"config.json": CONFIG, "model.safetensors": 8_041_246_720})
    usage = shutil.disk_usage(Path.cwd())
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1_500_000_000))
    message = refusal_of(lambda: check_weights("pplx", REPO, SHA1))
    assert f"{REPO}@{SHA1[:7]} need 8.04 GB but only 1.50 GB is free in {cache}" in message
    # The big blob already in the cache (an interrupted download that finished that file) is not counted again.
    blob = hub.repos[REPO].files["model.safetensors"].etag("model.safetensors")
    (cache / "models--org--tiny" / "blobs").mkdir(parents=True)
    (cache / "models--org--tiny" / "blobs" / blob).write_bytes(b"")
    assert plan_download("pplx", REPO, SHA1).size == len(CONFIG)


def test_offline_with_an_empty_cache_sends_nothing_and_says_how_to_download(hub, monkeypatch):
    hub.add(REPO, SHA1, {"config.json": CONFIG})
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    message = refusal_of(lambda: fetch_weights("tiny", REPO, SHA1))
    assert "HF_HUB_OFFLINE is set" in message and f"hf download {REPO} --revision {SHA1}" in message
    assert "not in the local Hugging Face cache" in message and hub.requests == []


def test_an_unreachable_hub_fails_in_seconds_with_the_connection_error(cache, monkeypatch):
    point_hub_client(monkeypatch, nothing_listening(), cache)
    start = time.monotonic()
    message = refusal_of(lambda: check_weights("tiny", REPO, SHA1))
    assert time.monotonic() - start < 5
    assert "the hub cannot be reached (ConnectError" in message and f"hf download {REPO} --revision {SHA1}" in message


def test_any_other_answer_keeps_the_hubs_words(hub):
    hub.add(REPO, SHA1, {"config.json": CONFIG})
    hub.repos[REPO].refuse = (500, {"X-Error-Message": "Internal Error - We're working hard to fix this"})
    message = refusal_of(lambda: check_weights("tiny", REPO, SHA1))
    assert "cannot get the weights" in message and "500 Internal Error - We're working hard" in message


def test_a_pinned_preset_downloads_through_the_hub_client_and_loads(hub, cache, tmp_path, capsys):
    from pplx_fixtures import make_tiny_pplx

    preset = next(p for p in PRESETS if p.name == "pplx-embed-v1-0.6b")
    tiny = make_tiny_pplx(tmp_path / "tiny")
    hub.add(preset.hub_id, preset.revision, {str(p.relative_to(tiny)): p.read_bytes() for p in tiny.rglob("*")
                                             if p.is_file()})
    enc = load_model(preset.name, EncodeSettings(batch_size=4, show_progress=False))
    assert f"embedbench: downloading {preset.hub_id}@{preset.revision[:7]}:" in capsys.readouterr().err
    assert enc.meta.revision == preset.revision and enc.encode_queries(["a cat"]).shape[0] == 1


@pytest.mark.parametrize("offline", [True, False])
def test_cli_eval_of_an_absent_hub_preset_stops_before_any_data_loads(cache, tmp_path, monkeypatch, capsys, offline):
    import embedbench.engine.plan as engine_plan

    point_hub_client(monkeypatch, nothing_listening(), cache, offline=offline)
    loaded = []
    monkeypatch.setattr(engine_plan, "load_task_data", lambda *a, **k: loaded.append(a) or [])
    results = tmp_path / "results"
    code = main(["eval", "--model", "pplx-embed-v1-4b", "--dataset", f"beir:{tmp_path / 'no-such-dir'}",
                 "--results-dir", str(results)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and loaded == [] and not results.exists()  # the weights were checked first
    assert len(err) == 1, err
    assert "hf download perplexity-ai/pplx-embed-v1-4b --revision 964a2aafe021f2bbda88ba17eb326eb849922435" in err[0]
    assert ("HF_HUB_OFFLINE is set" if offline else "cannot be reached") in err[0]
