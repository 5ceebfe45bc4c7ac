"""Search indexes a deployment would serve: exact search, or a faiss index built from the factory.

``--index`` takes specs such as ``exact``, ``hnsw:m=32:ef=256``, ``ivf:nlist=1024:nprobe=32``,
``sq8``, ``ivfpq:nlist=1024:m=64:nprobe=32`` and ``binary-hnsw:m=32``. Each spec is parsed into an
:class:`IndexSpec` (every parameter filled in, so its canonical name says exactly what was built),
and applies on top of a precision's stored vectors:

    spec          precisions            faiss index (inner product over unit vectors; binary: Hamming)
    exact         every one             today's exact search (no faiss index)
    hnsw          fp32, fp16            "HNSW{m},Flat" (fp32) / "HNSW{m},SQfp16" (fp16)
    ivf           fp32, fp16            "IVF{nlist},Flat" / "IVF{nlist},SQfp16"
    sq8           fp32                  "SQ8": faiss's 8-bit scalar quantizer, scored on dequantized values
    ivfpq         fp32                  "IVF{nlist},PQ{m}x{nbits}"
    binary-hnsw   binary, binary:posthoc  IndexBinaryHNSW over the packed bits (Hamming)
                  binary+int8, binary+fp32  the same, as the first stage: its top-``rescore_depth``
                                        candidates re-ranked by the second stage (engine/ann.py)

int8 codes are scored by the cosine of the codes, for which faiss has no index; the 8-bit faiss index
is ``sq8`` over fp32 vectors (its own per-dimension quantizer). So a faiss index is built only at the
precisions the table names (:func:`index_applies`), never at int8: those pairs of a run's precision x
index product are skipped, and an index that applies to none of the run's precisions is refused with
one line (:func:`check_index_plans`).

The rest of the module is pure faiss: build an index from training rows and shards of rows
(:class:`AnnIndex`), search it, serialize it for its size. Training samples are drawn with the
spec's ``seed``; HNSW graphs are deterministic for one thread (faiss adds points in parallel
otherwise), which the caller records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedbench.errors import EmbedbenchError

# Parameters of each kind, with their defaults, in the order canonical names list them.
# m: HNSW neighbours / PQ sub-quantizers; ef: HNSW search breadth (efSearch); efc: efConstruction;
# nlist / nprobe: IVF lists and lists visited; nbits: bits per PQ code; seed: the training sample's
# and k-means' seed.
INDEX_KINDS: dict[str, dict[str, int]] = {
    "exact": {},
    "hnsw": {"m": 32, "ef": 256, "efc": 40},
    "ivf": {"nlist": 1024, "nprobe": 32, "seed": 0},
    "sq8": {},
    "ivfpq": {"nlist": 1024, "m": 64, "nbits": 8, "nprobe": 32, "seed": 0},
    "binary-hnsw": {"m": 32, "ef": 256, "efc": 40},
}
DEFAULT_INDEX = "exact"
SEARCH_PARAMS = ("ef", "nprobe")  # set at search time: one built index serves every value

# Which stored kinds of a single-stage precision each index applies to.
_APPLIES = {
    "exact": ("fp32", "fp16", "int8", "binary"),
    "hnsw": ("fp32", "fp16"),
    "ivf": ("fp32", "fp16"),
    "sq8": ("fp32",),
    "ivfpq": ("fp32",),
    "binary-hnsw": ("binary",),
}

# IVF training: a seeded sample of this many rows per list (faiss's k-means would subsample past 256
# per centroid itself); never more lists than one per MIN_ROWS_PER_LIST documents (faiss warns below 39).
TRAIN_ROWS_PER_LIST = 64
MIN_ROWS_PER_LIST = 39
PQ_MIN_TRAIN = 10_000  # rows a PQ codebook of 256 centroids per sub-quantizer trains on, at least


@dataclass(frozen=True)
class IndexSpec:
    """One parsed ``--index`` spec: its kind and every parameter (defaults filled in)."""

    kind: str
    params: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        """Canonical spelling, e.g. ``hnsw:m=32:ef=256:efc=40``; what a result's variant records."""
        return ":".join([self.kind, *(f"{k}={v}" for k, v in self.params)])

    @property
    def exact(self) -> bool:
        return self.kind == "exact"

    def __getitem__(self, key: str) -> int:
        return dict(self.params)[key]

    @property
    def build_key(self) -> tuple:
        """What the built index depends on: every parameter but the search-time ones (ef, nprobe), so
        specs that differ only in those search one built index."""
        return self.kind, tuple((k, v) for k, v in self.params if k not in SEARCH_PARAMS)


def parse_index_specs(specs: str | Sequence[str] | None) -> tuple[IndexSpec, ...]:
    """``"exact,hnsw:m=32:ef=256"`` (or a list of specs) -> the parsed specs, in order; None: ``(exact,)``.

    Kinds and parameter names are case-insensitive; parameters are positive integers (``seed`` may be 0).
    An unknown kind or parameter, a bad value, a repeated parameter or a spec given twice raises
    :class:`~embedbench.errors.EmbedbenchError` with one line.
    """
    if specs is None:
        return (parse_index_spec(DEFAULT_INDEX),)
    items = [specs] if isinstance(specs, str) else list(specs)
    texts = [part.strip() for item in items for part in str(item).split(",")]
    if not texts or not all(texts):
        raise EmbedbenchError(f"empty index spec in {','.join(map(str, items))!r}; valid kinds: {', '.join(INDEX_KINDS)}")
    parsed = tuple(parse_index_spec(t) for t in texts)
    names = [p.name for p in parsed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise EmbedbenchError(f"index spec given twice: {', '.join(repeated)}")
    return parsed


def parse_index_spec(text: str) -> IndexSpec:
    """One spec ``KIND[:NAME=VALUE...]``."""
    kind, *pairs = [p.strip() for p in str(text).strip().lower().split(":")]
    if kind not in INDEX_KINDS:
        raise EmbedbenchError(f"unknown index kind {kind!r} in {text!r}; valid kinds: {', '.join(INDEX_KINDS)}")
    defaults = INDEX_KINDS[kind]
    given: dict[str, int] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if name not in defaults:
            valid = ", ".join(defaults) or "none"
            raise EmbedbenchError(f"unknown parameter {name!r} for index {kind!r} in {text!r}; valid: {valid}")
        if name in given:
            raise EmbedbenchError(f"parameter {name!r} given twice in index spec {text!r}")
        given[name] = _int_value(name, value.strip() if sep else "", text)
    params = {**defaults, **given}
    _check_params(kind, params, text)
    return IndexSpec(kind, tuple(params.items()))


def _int_value(name: str, value: str, text: str) -> int:
    low = 0 if name == "seed" else 1
    if not value.isdigit() or int(value) < low:
        raise EmbedbenchError(f"index parameter {name!r} must be an integer >= {low}, got {value!r} in {text!r}")
    return int(value)


def _check_params(kind: str, params: dict[str, int], text: str) -> None:
    if "nprobe" in params and params["nprobe"] > params["nlist"]:
        raise EmbedbenchError(f"nprobe ({params['nprobe']}) is larger than nlist ({params['nlist']}) in {text!r}")
    if kind == "ivfpq" and not 1 <= params["nbits"] <= 16:
        raise EmbedbenchError(f"ivfpq nbits must be 1..16, got {params['nbits']} in {text!r}")
    if kind in ("hnsw", "binary-hnsw") and params["m"] < 2:
        raise EmbedbenchError(f"{kind} m must be at least 2, got {params['m']} in {text!r}")


def index_applies(index: IndexSpec, precision: object) -> bool:
    """Whether ``index`` applies to a :class:`~embedbench.scoring.precision.PrecisionSpec` (see the table
    above): exact to every one, a faiss index to single-stage precisions of the kinds it stores, and
    binary-hnsw also to the first (binary) stage of a two-stage precision."""
    if index.exact:
        return True
    if precision.rescore is not None:
        return index.kind == "binary-hnsw" and precision.kind == "binary"
    return precision.kind in _APPLIES[index.kind]


def check_index_plans(indexes: Sequence[IndexSpec], precisions: Sequence[object], dims: Sequence[int]) -> None:
    """Refuse (one line) an index that applies to none of the run's precisions, or whose parameters do
    not fit a dim; the pairs where an index does not apply are skipped by the engine (index x precision
    is a cross product: ``--precision fp32,binary --index hnsw,binary-hnsw`` runs hnsw at fp32 and
    binary-hnsw at binary).

    ``precisions`` are :class:`~embedbench.scoring.precision.PrecisionSpec`; ``dims`` the resolved
    dimensions (an MRL dim, or the model's own).
    """
    for index in indexes:
        if not any(index_applies(index, spec) for spec in precisions):
            ok = ", ".join(_APPLIES[index.kind]) + (" (alone or as a first stage)" if index.kind == "binary-hnsw" else "")
            given = ", ".join(spec.name for spec in precisions)
            hint = " (for an 8-bit faiss index use sq8 at fp32)" if any(s.kind == "int8" for s in precisions) else ""
            raise EmbedbenchError(f"index {index.name!r} applies to precision {ok}, not to {given}{hint}")
        for dim in dims:
            if index.kind == "ivfpq" and dim % index["m"]:
                raise EmbedbenchError(f"index {index.name!r}: m={index['m']} must divide the dimension {dim}")


def factory_string(index: IndexSpec, kind: str, nlist: int | None = None) -> str:
    """The faiss index-factory string of ``index`` over stored vectors of ``kind`` (fp32 / fp16).

    ``nlist`` overrides the spec's (the number of lists actually trained, see :func:`ivf_lists`)."""
    code = "Flat" if kind == "fp32" else "SQfp16"
    if index.kind == "hnsw":
        return f"HNSW{index['m']},{code}"
    if index.kind == "ivf":
        return f"IVF{nlist or index['nlist']},{code}"
    if index.kind == "sq8":
        return "SQ8"
    if index.kind == "ivfpq":
        return f"IVF{nlist or index['nlist']},PQ{index['m']}x{index['nbits']}"
    raise ValueError(f"index {index.name!r} has no float factory string")


def ivf_lists(index: IndexSpec, n: int) -> int:
    """Lists an IVF index trains on ``n`` documents: the spec's ``nlist``, at most one per 39 documents
    (faiss's minimum of training points per centroid), at least 1."""
    return max(1, min(index["nlist"], n // MIN_ROWS_PER_LIST))


def training(index: IndexSpec) -> str | None:
    """What an index trains on: ``"sample"`` (IVF / PQ: a seeded sample of the corpus's stored rows),
    ``"range"`` (SQ8: each dimension's min / max over the whole corpus), or None (HNSW)."""
    return {"ivf": "sample", "ivfpq": "sample", "sq8": "range"}.get(index.kind)


def train_rows(index: IndexSpec, n: int) -> int:
    """Rows of the seeded training sample: ``TRAIN_ROWS_PER_LIST`` per list (PQ: at least ``PQ_MIN_TRAIN``),
    at most the corpus; 0 for an index that trains on no sample."""
    if training(index) != "sample":
        return 0
    wanted = TRAIN_ROWS_PER_LIST * ivf_lists(index, n)
    if index.kind == "ivfpq":
        wanted = max(wanted, PQ_MIN_TRAIN)
    return min(n, wanted)


def train_sample(index: IndexSpec, n: int) -> np.ndarray:
    """Sorted corpus positions of the seeded training sample (empty when the index trains on none)."""
    size = train_rows(index, n)
    if size == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(index["seed"])
    return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)


class AnnIndex:
    """A faiss index over one precision's stored documents: trained, filled shard by shard, searched.

    Float kinds (fp32 / fp16) use inner product over unit vectors (the precision's cosine); binary
    uses Hamming distance over packed bits and reports scores as the cosine of the +-1 vectors,
    ``1 - 2h/d``, as the exact binary search does. Training (:func:`training`): IVF / PQ on the
    seeded sample's rows; SQ8 on two rows, the corpus's per-dimension min and max, which trains
    faiss's ``SQ8`` (min-max range statistic) exactly as training it on every row would, so the
    corpus never has to be held for it. Documents are added in corpus order: faiss ids are the
    corpus positions.
    """

    def __init__(self, index: IndexSpec, kind: str, dim: int, n_docs: int) -> None:
        import faiss

        self.spec, self.kind, self.dim = index, kind, dim
        self.nlist = ivf_lists(index, n_docs) if index.kind in ("ivf", "ivfpq") else None
        self.build_seconds = 0.0
        t0 = time.perf_counter()
        if index.kind == "binary-hnsw":
            self.factory = f"BHNSW{index['m']}"
            self.faiss = faiss.IndexBinaryHNSW(8 * ((dim + 7) // 8), index["m"])  # whole bytes, padding bits 0
        else:
            self.factory = factory_string(index, kind, self.nlist)
            self.faiss = faiss.index_factory(dim, self.factory, faiss.METRIC_INNER_PRODUCT)
        if index.kind in ("hnsw", "binary-hnsw"):
            self.faiss.hnsw.efConstruction = index["efc"]
        self.build_seconds += time.perf_counter() - t0

    @property
    def binary(self) -> bool:
        return self.spec.kind == "binary-hnsw"

    def train(self, rows: np.ndarray | None) -> None:
        """Train on ``rows`` (see the class docstring); a no-op for an index that trains on nothing."""
        if training(self.spec) is None:
            return
        import faiss

        t0 = time.perf_counter()
        if self.nlist is not None:
            ivf = faiss.downcast_index(faiss.extract_index_ivf(self.faiss))
            ivf.cp.seed = self.spec["seed"]
            if self.spec.kind == "ivfpq":
                # Polysemous code re-ordering serves Hamming pre-filtering, which this search never
                # uses, and costs minutes; a small corpus trains its codebooks on fewer rows than
                # faiss asks for (train_rows is recorded), so its per-call warning is silenced.
                ivf.do_polysemous_training = False
                ivf.pq.cp.seed = self.spec["seed"]
                ivf.pq.cp.min_points_per_centroid = 1
        self.faiss.train(_as_float(rows))
        self.build_seconds += time.perf_counter() - t0

    def add(self, rows: np.ndarray) -> None:
        """Add one shard's stored rows, in corpus order."""
        t0 = time.perf_counter()
        self.faiss.add(_packed(rows) if self.binary else _as_float(rows))
        self.build_seconds += time.perf_counter() - t0

    def set_search_params(self, spec: IndexSpec) -> None:
        """Search with ``spec``'s ef / nprobe (a spec with the same :attr:`IndexSpec.build_key`)."""
        if spec.build_key != self.spec.build_key:
            raise ValueError(f"index {self.spec.name!r} cannot be searched as {spec.name!r}")
        self.spec = spec

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(scores float32, indices int64)``, rows ordered by (score desc, index asc); slots the
        index could not fill hold index -1 and score -inf (an HNSW search returns at most ``ef``
        documents, an IVF search only those in the lists it probes)."""
        if self.spec.kind in ("hnsw", "binary-hnsw"):
            self.faiss.hnsw.efSearch = self.spec["ef"]
        elif self.nlist is not None:
            faiss_ivf(self.faiss).nprobe = min(self.spec["nprobe"], self.nlist)
        kk = min(int(k), self.faiss.ntotal)
        if self.binary:
            dist, idx = self.faiss.search(_packed(queries), kk)
            scores = np.where(idx >= 0, 1.0 - 2.0 * dist.astype(np.float64) / self.dim, -np.inf)
        else:
            scores, idx = self.faiss.search(_as_float(queries), kk)
            scores = np.where(idx >= 0, scores, -np.inf)
        return order_rows(scores.astype(np.float32), idx.astype(np.int64))

    def serialized_bytes(self) -> int:
        """Size of the index as faiss writes it to disk (vectors or codes, graph, centroids, header)."""
        import faiss

        if self.binary:
            return int(faiss.serialize_index_binary(self.faiss).size)
        return int(faiss.serialize_index(self.faiss).size)


def faiss_ivf(index: object) -> object:
    import faiss

    return faiss.extract_index_ivf(index)


def order_rows(scores: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row by (score desc, index asc), empty slots (-1) last: the harness's tie order."""
    key_idx = np.where(idx < 0, np.iinfo(np.int64).max, idx)
    order = np.lexsort((key_idx, -scores.astype(np.float64)), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(idx, order, 1)


def _as_float(rows: np.ndarray) -> np.ndarray:
    """Stored float rows (fp32, or fp16 widened) as the float32 faiss reads; fp16 indexes store them
    back as fp16 (SQfp16), exactly the values the exact fp16 search scores."""
    return np.ascontiguousarray(rows, dtype=np.float32)


def _packed(rows: np.ndarray) -> np.ndarray:
    """Packed bits as faiss binary indexes take them (whole bytes; padding bits are zero)."""
    return np.ascontiguousarray(rows, dtype=np.uint8)
