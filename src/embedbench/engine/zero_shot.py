"""Whether a result's task is in the model's training data: decided when the result is built, and
recorded in it (`zero_shot`, `training_overlap`, `provenance.training_data_source`), since reports
read results only.

A task's data is named by the mteb task it is (`task_dataset`): an mteb-loaded task by its mteb
name; a local task only where it is built from a dataset mteb names (explicit, below); every other
task (synthetic, ToolRet, BFCL, ConTEB, TREC / BEIR folders) by its own name, which no model's
training list holds, so it is zero-shot unless named here. The model's training datasets come from
mteb's registry or the preset's list (`embedbench.encoders.training_data`); a model neither
describes (a local checkpoint, a plugin) gets `zero_shot = None`, unknown.
"""

from __future__ import annotations

from embedbench.data.spec import TaskSpec
from embedbench.encoders.training_data import TrainingData, in_training, model_training_data

# BERGEN's KILT tasks ask the dev questions of these datasets (options.dataset): a model trained on the
# dataset (its train split) is not zero-shot on them, as mteb counts it. KILT TriviaQA, ASQA and PopQA
# have no mteb task, so they keep their own names.
KILT_DATASETS = {"nq": "NQ", "hotpotqa": "HotpotQA"}
# Every xquad-r mode (paragraph, cross-lingual, Query2Query, RAG, contextual) reads XQuAD-R's questions
# and paragraphs: mteb's XQuADRetrieval data.
XQUAD_DATASET = "XQuADRetrieval"


def task_dataset(spec: TaskSpec) -> str:
    """The task's data as an mteb task name where it is one; else the task's own name."""
    if spec.loader == "mteb":
        return str(spec.options.get("task") or spec.name)
    if spec.loader == "kilt":
        return KILT_DATASETS.get(str(spec.options.get("dataset")), spec.name)
    if spec.loader == "xquad-r":
        return XQUAD_DATASET
    return spec.name


def hub_repo(model_name: str, hub_id: str | None) -> str | None:
    """The hub id mteb would know the model by: a preset's, or the repo of an `hf:ORG/NAME` reference."""
    if hub_id or not model_name.startswith("hf:"):
        return hub_id
    from embedbench.encoders.hf_pooling import parse_hf_ref

    repo, _ = parse_hf_ref(model_name)
    return None if repo.startswith("/") else repo


def run_training_data(model_name: str, hub_id: str | None) -> TrainingData | None:
    return model_training_data(model_name, hub_repo(model_name, hub_id))


def zero_shot_facts(training: TrainingData | None, spec: TaskSpec) -> dict[str, object]:
    """The Result fields: zero_shot (None: unknown) and the training datasets the task's data is in."""
    if training is None:
        return {"zero_shot": None, "training_overlap": []}
    overlap = in_training(task_dataset(spec), training)
    return {"zero_shot": not overlap, "training_overlap": overlap}
