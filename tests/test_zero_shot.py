"""Zero-shot flags (issue 13, item 7): whether a result's task is in the model's training data.

The model's training data comes from mteb's model registry (offline) where mteb knows the model, else
from the preset's own list; a task is matched by its mteb task name (an explicit normalisation of
mteb's variant names, checked against mteb's own similar-task expansion). The flag is decided by the
engine and recorded in the result; results written before it read as unknown.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import mteb
import pytest
from pydantic import ValidationError

from conftest import FakeEncoder, write_beir
from embedbench.data.spec import TaskSpec
from embedbench.data.suites import load_suite
from embedbench.encoders.presets import PRESETS
from embedbench.encoders.training_data import (TRAINING_DATA, TrainingData, dataset_base, in_training,
                                               model_training_data)
from embedbench.engine.runner import evaluate
from embedbench.engine.zero_shot import run_training_data, task_dataset
from embedbench.results import read_results, result_path

MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def fresh_lookups():
    model_training_data.cache_clear()
    yield
    model_training_data.cache_clear()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the training data lookup opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_mteb_registry_decides_for_a_hub_model_it_knows_offline(fresh_lookups, no_network) -> None:
    training = model_training_data(f"hf:{MINILM_HUB}", MINILM_HUB)
    assert training is not None and training.source == f"mteb {mteb.__version__} model registry entry {MINILM_HUB}"
    assert training.datasets == mteb.get_model_meta(MINILM_HUB).get_training_datasets()
    assert in_training("MSMARCO", training) == ["MSMARCO"]
    assert in_training("NQHardNegatives", training) == ["NQ"]  # a version of a training dataset
    assert in_training("MIRACLRetrievalHardNegatives", training) == []  # MiniLM was not trained on MIRACL
    assert in_training("ArguAna", training) == []


def test_a_preset_is_decided_by_its_list_without_importing_mteb(fresh_lookups, monkeypatch) -> None:
    """A run of a preset never pays mteb's import; its list (a copy of mteb's entry) gives mteb's verdicts."""
    monkeypatch.setitem(sys.modules, "mteb", None)
    training = model_training_data("minilm-l6", MINILM_HUB)
    assert training is not None and training.source == "embedbench's training data list for preset minilm-l6"
    assert in_training("MSMARCO", training) == ["MSMARCO"] and in_training("NQHardNegatives", training) == ["NQ"]
    assert in_training("MIRACLRetrievalHardNegatives", training) == [] and in_training("ArguAna", training) == []


def test_without_mteb_the_preset_list_decides(fresh_lookups, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mteb", None)  # how Python reports a package that is not installed
    training = model_training_data("pplx-embed-v1-0.6b", "perplexity-ai/pplx-embed-v1-0.6b")
    assert training is not None and training.source == "embedbench's training data list for preset pplx-embed-v1-0.6b"
    assert in_training("MIRACLRetrievalHardNegatives", training) == ["MIRACLRetrieval"]
    assert in_training("FiQA-PL", training) == ["FiQA2018"] and in_training("SCIDOCS", training) == []


def test_the_preset_list_decides_where_mteb_does_not_know_the_model(fresh_lookups) -> None:
    """pplx-embed-context is not in mteb 2.26's registry: its card's six datasets decide."""
    training = model_training_data("pplx-embed-context-v1-0.6b", "perplexity-ai/pplx-embed-context-v1-0.6b")
    assert training is not None and training.source.startswith("embedbench's training data list")
    assert training.datasets == {"MSMARCO", "MIRACLRetrieval", "NQ", "FiQA2018", "FEVER", "HotpotQA"}
    assert model_training_data("checkpoints/step-1000", None) is None  # a local checkpoint: unknown
    assert model_training_data("bm25", None) == TrainingData(frozenset(),  # trained on nothing: zero-shot
                                                             "embedbench's training data list for preset bm25")


def mteb_entries() -> dict[str, object]:
    """mteb's registry entry of each preset it knows together with the model's training data."""
    entries = {}
    for preset in PRESETS:
        try:
            meta = mteb.get_model_meta(preset.hub_id) if preset.hub_id else None
        except KeyError:  # not in mteb's registry
            continue
        if meta is not None and meta.training_datasets is not None:
            entries[preset.name] = meta
    return entries


def test_preset_lists_copy_mteb_for_the_presets_it_knows() -> None:
    """So an install without mteb gives the same answers as one with it (mteb >= 2.26's entries)."""
    entries = mteb_entries()
    assert {"minilm-l6", "pplx-embed-v1-0.6b", "pplx-embed-v1-4b", "qwen3-embedding-0.6b", "qwen3-embedding-4b",
            "bge-m3", "multilingual-e5-small"} <= set(entries)
    assert not any(name.startswith("pplx-embed-context") for name in entries)  # the card's list decides for these
    for name, meta in entries.items():
        assert TRAINING_DATA[name] == meta.training_datasets, name


@pytest.mark.parametrize(("name", "base"), [
    ("MIRACLRetrievalHardNegatives", "MIRACLRetrieval"), ("MIRACLRetrievalHardNegatives.v2", "MIRACLRetrieval"),
    ("MIRACLReranking", "MIRACLRetrieval"), ("MSMARCOHardNegatives", "MSMARCO"), ("MSMARCO-FaHardNegatives", "MSMARCO"),
    ("NQ-PL", "NQ"), ("NanoNQRetrieval", "NQ"), ("MultilingualNanoNQRetrieval", "NQ"), ("NanoNQ-VN", "NQ"),
    ("FiQA2018-Fa.v2", "FiQA2018"), ("FiQA-PL", "FiQA2018"), ("NanoFiQA2018Retrieval", "FiQA2018"),
    ("FEVERHardNegatives.v2", "FEVER"), ("HotpotQA-NL", "HotpotQA"),
    # not versions of another dataset: their own name
    ("ClimateFEVER", "ClimateFEVER"), ("MSMARCOv2", "MSMARCOv2"), ("NQTablesRetrieval", "NQTablesRetrieval"),
    ("mMARCO-NL", "mMARCO"), ("SCIDOCS", "SCIDOCS"), ("BERGEN-KILT-TriviaQA", "BERGEN-KILT-TriviaQA"),
])
def test_dataset_base_normalises_mtebs_version_names(name: str, base: str) -> None:
    assert dataset_base(name) == base


def test_matching_flags_nothing_mteb_calls_zero_shot(fresh_lookups) -> None:
    """For every preset mteb knows and every mteb task, our verdict is mteb's (`is_zero_shot_on` is
    membership in `get_training_datasets()`): the normalisation adds no overlap mteb would not count."""
    names = sorted({t.metadata.name for t in mteb.get_tasks()})
    for name, meta in mteb_entries().items():
        expanded = meta.get_training_datasets()
        training = model_training_data(name, meta.name)  # the preset's list (a copy of mteb's raw entry)
        assert [n for n in names if bool(in_training(n, training)) != (n in expanded)] == [], name


def test_suite_tasks_are_named_by_their_mteb_dataset() -> None:
    by_name = {t.name: t for s in ("mteb-multilingual-v2", "bergen", "xquad-r", "default") for t in load_suite(s).tasks}
    assert task_dataset(by_name["MIRACLRetrievalHardNegatives"]) == "MIRACLRetrievalHardNegatives"
    assert task_dataset(by_name["BERGEN-KILT-NQ"]) == "NQ"
    assert task_dataset(by_name["BERGEN-KILT-HotpotQA"]) == "HotpotQA"
    assert task_dataset(by_name["BERGEN-KILT-TriviaQA"]) == "BERGEN-KILT-TriviaQA"
    assert task_dataset(by_name["XQuADRCrossLingual"]) == "XQuADRetrieval"
    assert task_dataset(by_name["BFCLToolRetrieval"]) == "BFCLToolRetrieval"
    pplx = TrainingData(TRAINING_DATA["pplx-embed-context-v1-4b"], "card")
    mteb_suite = load_suite("mteb-multilingual-v2").tasks
    assert [t.name for t in mteb_suite if in_training(task_dataset(t), pplx)] == ["MIRACLRetrievalHardNegatives"]
    bergen = load_suite("bergen").tasks
    assert [t.name for t in bergen if in_training(task_dataset(t), pplx)] == ["BERGEN-KILT-NQ", "BERGEN-KILT-HotpotQA"]
    e5 = TrainingData(TRAINING_DATA["multilingual-e5-small"], "mteb")
    assert all(in_training(task_dataset(t), e5) == ["XQuADRetrieval"] for t in load_suite("xquad-r").tasks)
    assert not any(in_training(task_dataset(t), e5) for t in load_suite("default").tasks)


def test_hf_references_are_looked_up_by_their_hub_repo(fresh_lookups) -> None:
    assert run_training_data(f"hf:{MINILM_HUB}?pooling=mean", None).source.endswith(MINILM_HUB)
    assert run_training_data("hf:/models/ckpt", None) is None


def test_the_engine_records_the_flag_and_old_results_read_as_unknown(tmp_path: Path, fresh_lookups) -> None:
    """An encoder named like a preset gets that preset's hub id, so mteb's registry entry decides: the
    dataset folder named NQ is in MiniLM's training data, the other is not."""
    nq, other = write_beir(tmp_path / "NQ", 20, 6), write_beir(tmp_path / "scifact-mini", 20, 6)
    results = evaluate(FakeEncoder(name="minilm-l6"), dataset=[f"beir:{nq}", f"beir:{other}"],
                       results_dir=tmp_path / "r")
    by_task = {r.task: r for r in results}
    assert (by_task["NQ"].zero_shot, by_task["NQ"].training_overlap) == (False, ["NQ"])
    assert (by_task["scifact-mini"].zero_shot, by_task["scifact-mini"].training_overlap) == (True, [])
    assert by_task["NQ"].provenance.training_data_source == "embedbench's training data list for preset minilm-l6"
    assert by_task["NQ"].record()["training_overlap"] == "NQ" and by_task["NQ"].record()["zero_shot"] is False
    (plain,) = evaluate(FakeEncoder(name="my-checkpoint"), dataset=f"beir:{nq}", write=False)
    assert (plain.zero_shot, plain.training_overlap, plain.provenance.training_data_source) == (None, [], "")
    # a result file written before the fields existed
    path = result_path(tmp_path / "r", by_task["NQ"])
    data = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("zero_shot", "training_overlap")}
    data["provenance"].pop("training_data_source")
    path.write_text(json.dumps(data))
    assert {r.task: r.zero_shot for r in read_results(tmp_path / "r")} == {"NQ": None, "scifact-mini": True}


def test_a_flag_must_agree_with_its_overlap(tmp_path: Path) -> None:
    (result,) = evaluate(FakeEncoder(), dataset=f"beir:{write_beir(tmp_path / 'd', 10, 3)}", write=False)
    with pytest.raises(ValidationError, match="disagrees"):
        result.model_validate({**result.model_dump(), "zero_shot": False})
    with pytest.raises(ValidationError, match="disagrees"):
        result.model_validate({**result.model_dump(), "zero_shot": True, "training_overlap": ["NQ"]})
