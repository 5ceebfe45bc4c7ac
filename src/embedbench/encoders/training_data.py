"""What a model was trained on, so a result can say whether its task is zero-shot (mteb's notion).

`model_training_data(name, hub_id)` gives the model's training datasets as mteb task names, and where
that list came from:

1. mteb's model registry, where mteb is installed and knows the hub id and the model's training data
   (`ModelMeta.get_training_datasets()`: the datasets the entry names plus the variants mteb knows of
   each -- hard-negative, Nano and translated versions). Looked up offline (`fetch_from_hf=False`).
2. else this module's list for the preset (TRAINING_DATA), from the model cards, or for presets mteb
   knows a copy of its entry (tests keep them equal), so installs without mteb give the same answers;
3. else None: unknown (a local checkpoint, a plugin, an hf: model mteb does not know).

`in_training(dataset, training)` matches one task's dataset against such a list by `dataset_base`,
an explicit normalisation of mteb's variant names (never a fuzzy match).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

PRESET_SOURCE = "embedbench's training data list for preset"

# mteb 2.26's entries (mteb/models/model_implementations/*), each citing its paper or card.
_QWEN3 = frozenset({  # Qwen3-Embedding report (arXiv:2506.05176), as mteb's qwen3_models.py lists it
    "CMedQAv2-reranking", "CodeSearchNet", "DuRetrieval", "FEVER", "HotpotQA", "MIRACLRetrieval",
    "MMarcoReranking", "MSMARCO", "MrTidyRetrieval", "NQ", "T2Retrieval"})
# pplx-embed-v1 / -context-v1 model cards (and arXiv:2602.11151): fine-tuned on MS MARCO, MIRACL, NQ, FiQA,
# FEVER and HotpotQA; mteb 2.26 knows only the v1 models and lists the same six.
_PPLX = frozenset({"MSMARCO", "MIRACLRetrieval", "NQ", "FiQA2018", "FEVER", "HotpotQA"})

TRAINING_DATA: dict[str, frozenset[str]] = {
    # all-MiniLM-L6-v2 card: 1B sentence pairs incl. MS MARCO and NQ (mteb's sentence_transformers_models.py)
    "minilm-l6": frozenset({"MSMARCO", "MSMARCO-PL", "MSMARCOHardNegatives", "NQ", "NQ-NL", "NQ-PL",
                            "NQHardNegatives", "NanoMSMARCORetrieval", "NanoNQRetrieval", "mMARCO-NL"}),
    "pplx-embed-v1-0.6b": _PPLX,
    "pplx-embed-v1-4b": _PPLX,
    "pplx-embed-context-v1-0.6b": _PPLX,
    "pplx-embed-context-v1-4b": _PPLX,
    "qwen3-embedding-0.6b": _QWEN3,
    "qwen3-embedding-4b": _QWEN3,
    # BGE-M3 paper (arXiv:2402.03216), as mteb's bge_models.py lists it
    "bge-m3": frozenset({
        "CMedQAv1-reranking", "CMedQAv2-reranking", "CodeSearchNet", "DuRetrieval", "HotpotQA", "HotpotQA-NL",
        "HotpotQA-PL", "HotpotQAHardNegatives", "LeCaRDv2", "MIRACLReranking", "MIRACLRetrieval",
        "MIRACLRetrievalHardNegatives", "MMarcoReranking", "MSMARCO", "MSMARCO-PL", "MSMARCOHardNegatives",
        "MrTidyRetrieval", "NQ", "NQ-NL", "NQ-PL", "NQHardNegatives", "NanoMSMARCORetrieval", "NanoNQRetrieval",
        "T2Reranking", "T2Retrieval", "mMARCO-NL"}),
    # mE5 report (arXiv:2402.05672), as mteb's e5_models.py lists it (XQuAD: trained on SQuAD's train set)
    "multilingual-e5-small": frozenset({
        "FEVER", "FEVER-NL", "FEVER-PL", "FEVERHardNegatives", "HotpotQA", "HotpotQA-NL", "HotpotQA-PL",
        "HotpotQAHardNegatives", "MIRACLReranking", "MIRACLRetrieval", "MIRACLRetrievalHardNegatives", "MSMARCO",
        "MSMARCO-PL", "MSMARCOHardNegatives", "MrTidyRetrieval", "NQ", "NQ-NL", "NQ-PL", "NQHardNegatives",
        "NanoMSMARCORetrieval", "NanoNQRetrieval", "XQuADRetrieval", "mMARCO-NL"}),
    # ColBERTv2 paper (arXiv:2112.01488): MS MARCO, as mteb's pylate_models.py lists it
    "colbertv2": frozenset({"MSMARCO", "mMARCO-NL"}),
    # Not listed, so unknown: pplx-embed-v1-late (continued training of pplx-embed-v1-0.6b on data its card does
    # not name), pplx-embed-v2-late (mteb knows no training data) and answerai-colbert-small-v1.
    "bm25": frozenset(),  # no training: every task is zero-shot
    "hashing": frozenset(),
}

# mteb's names for versions of one dataset, stripped in this order by `dataset_base`.
_VERSION_SUFFIXES = (".v2", "HardNegatives")  # a fixed re-release; a hard-negative subsample of the corpus
_TRANSLATION_SUFFIXES = ("-PL", "-NL", "-Fa", "-VN")  # machine-translated ports
_NANO_PREFIXES = ("MultilingualNano", "Nano")  # NanoBEIR subsamples: Nano<Name>Retrieval
# Versions whose base the rules above do not reach.
_ALIASES = {"FiQA": "FiQA2018", "MIRACLReranking": "MIRACLRetrieval"}


@dataclass(frozen=True)
class TrainingData:
    """A model's training datasets (mteb task names) and where the list came from, in words."""

    datasets: frozenset[str]
    source: str

    @functools.cached_property
    def bases(self) -> frozenset[str]:
        return frozenset(map(dataset_base, self.datasets))


def dataset_base(name: str) -> str:
    """The dataset an mteb task name is a version of: `MIRACLRetrievalHardNegatives` -> `MIRACLRetrieval`,
    `NQ-PLHardNegatives` -> `NQ`, `NanoFiQA2018Retrieval` -> `FiQA2018`, `FiQA-PL` -> `FiQA2018`; a name
    that is no version of another is its own base. mteb's other "similar task" links (MSMARCOv2,
    NQTablesRetrieval, ...) count only through its registry (`ModelMeta.get_training_datasets`)."""
    for suffix in _VERSION_SUFFIXES:
        name = name.removesuffix(suffix)
    for suffix in _TRANSLATION_SUFFIXES:
        name = name.removesuffix(suffix)
    for prefix in _NANO_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix):]
            name = name.removesuffix("Retrieval") or name
            break
    return _ALIASES.get(name, name)


# mteb's "similar task" links (mteb 2.26 `get_training_datasets()` adds these to a model that trained on the
# key): datasets built from the same source under another name. tests/test_zero_shot.py checks that our
# verdicts equal mteb's for every preset it knows and every mteb task, so this table cannot drift silently.
SIMILAR = {
    "MSMARCO": "MSMARCOv2", "NQ": "NQTablesRetrieval", "FiQA2018": "FiQADecontaminated",
    "MIRACLRetrieval": "MIRACLJaRetrievalLite", "MrTidyRetrieval": "MrTyDiJaRetrievalLite",
    "CMedQAv2-reranking": "CmedqaRetrieval",
}
_LINKED = {linked: base for base, linked in SIMILAR.items()}


def in_training(dataset: str, training: TrainingData) -> list[str]:
    """The training datasets `dataset` (an mteb task name) is a version of, by their base name: [] for
    zero-shot, else one name (the base, e.g. ["MIRACLRetrieval"] for MIRACLRetrievalHardNegatives)."""
    base = dataset_base(dataset)
    if dataset in training.datasets or base in training.bases:
        return [base]
    linked = _LINKED.get(dataset)
    return [linked] if linked is not None and linked in training.bases else []


@functools.cache
def model_training_data(name: str, hub_id: str | None) -> TrainingData | None:
    """The model's training data: the preset's list, else mteb's registry for its hub id, else None.

    The lists of presets mteb knows are copies of mteb's entries (a test keeps them equal), so a preset
    never pays mteb's import (seconds) on every run; mteb decides for other hub models (`hf:ORG/NAME`).
    """
    if name in TRAINING_DATA:
        return TrainingData(TRAINING_DATA[name], f"{PRESET_SOURCE} {name}")
    return mteb_training_data(hub_id) if hub_id else None


def mteb_training_data(hub_id: str) -> TrainingData | None:
    """mteb's registry entry for `hub_id`, offline; None when mteb is not installed, does not know the
    model or does not know what it was trained on."""
    try:
        import mteb
    except ImportError:
        return None
    try:
        meta = mteb.get_model_meta(hub_id, fetch_from_hf=False)
    except (KeyError, ValueError):
        return None
    datasets = meta.get_training_datasets()
    if datasets is None:
        return None
    return TrainingData(frozenset(datasets), f"mteb {mteb.__version__} model registry entry {hub_id}")
