"""Where the local suites' datasets come from: pinned public URLs and the sha256 of every file.

Each dataset is a folder under the data dir (``EMBEDBENCH_DATA_DIR``) in exactly the layout its loader
reads (`embedbench.data.xquad`, `.trec`, `.codebase`); each file is fetched from a URL pinned to a
commit, so the bytes never change under a checksum. `embedbench data fetch NAME` downloads them
(`embedbench.data.fetch`). The sha256 and sizes were computed from the copies the project's tests read
(``../shared/data``), taken from these sources; a download whose bytes differ is refused.

A file may be an archive (``extract=True``): it is unpacked into the dataset folder and not kept;
``members`` names the files it must yield there.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from embedbench.errors import EmbedbenchError

__all__ = ["DATA_SOURCES", "DataSource", "SourceFile", "find_source"]


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset: its pinned URL, its bytes' sha256 and size, where it lands in the folder."""

    url: str
    sha256: str
    size: int
    path: str  # relative to the dataset folder, "/"-separated
    extract: bool = False  # an archive: unpacked into the dataset folder, then removed
    members: tuple[str, ...] = ()  # for an archive: the files it must yield (relative to the dataset folder)

    def wanted(self) -> tuple[str, ...]:
        """The files this entry leaves in the dataset folder."""
        return self.members if self.extract else (self.path,)


@dataclass(frozen=True)
class DataSource:
    """A dataset the local suites read: `embedbench data fetch NAME` puts `files` into `<data dir>/folder`."""

    name: str
    folder: str  # the folder under the data dir the suites' `path` names
    source_url: str  # where the files come from, pinned (a page a person can open)
    license: str
    files: tuple[SourceFile, ...]

    def wanted(self) -> tuple[str, ...]:
        """Every file the fetch leaves in the folder; the dataset is present when all exist."""
        return tuple(p for f in self.files for p in f.wanted())


def _github(repo: str, commit: str, folder: str) -> tuple[str, str]:
    """(raw file base URL, page URL) of `folder` in GitHub `repo` at `commit`."""
    return (f"https://raw.githubusercontent.com/{repo}/{commit}/{folder}",
            f"https://github.com/{repo}/tree/{commit}/{folder}")


_LAREQA, _LAREQA_PAGE = _github("google-research-datasets/lareqa", "5405d2a77e83d5ccb47623a3f9e5604c3f103193", "xquad-r")
_XQUAD_R = {  # language -> (sha256, bytes) of xquad-r/<language>.json
    "ar": ("c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d", 2234875),
    "de": ("16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949", 732156),
    "el": ("163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6", 2810127),
    "en": ("7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe", 628651),
    "es": ("f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de", 746335),
    "hi": ("ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872", 2408404),
    "ru": ("7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1", 2764904),
    "th": ("c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4", 2618544),
    "tr": ("f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94", 827827),
    "vi": ("e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995", 1132303),
    "zh": ("80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed", 959291),
}
# The NPL collection of the Glasgow IR group (http://ir.dcs.gla.ac.uk/resources/test_collections/npl/) in
# TREC form, as PyTerrier ships it for its own Vaswani dataset (ir_datasets' copy is the untransformed archive).
_NPL, _NPL_PAGE = _github("terrier-org/pyterrier", "4bd6c9c0962bb69f9e740b54f8c8bfe38fb7801e",
                          "tests/fixtures/vaswani_npl")
_COOKBOOK, _COOKBOOK_PAGE = _github("anthropics/anthropic-cookbook", "0284cf068aff4262fdbe493606812d9eb0f44a08",
                                    "skills/contextual-embeddings/data")
_COOKBOOK_LICENSE, _ = _github("anthropics/anthropic-cookbook", "94836c2e45af5e8a4325f3b4bd5f71e201458393", "LICENSE")

DATA_SOURCES: dict[str, DataSource] = {s.name: s for s in (
    DataSource(
        name="xquad-r", folder="xquad-r", source_url=_LAREQA_PAGE, license="CC BY-SA 4.0",
        files=tuple(SourceFile(f"{_LAREQA}/{lang}.json", sha, size, f"{lang}.json")
                    for lang, (sha, size) in _XQUAD_R.items()),
    ),
    DataSource(
        name="vaswani", folder="vaswani", source_url=_NPL_PAGE, license="University of Glasgow IR test collection",
        files=(
            SourceFile(f"{_NPL}/corpus/doc-text.trec",
                       "117ae7491647cb9725621bad52969a78307de19b1757852a0a2383659a856d36", 3494318, "doc-text.trec"),
            SourceFile(f"{_NPL}/query-text.trec",
                       "fef998db14818f74a22b2fb2be06425d5fb0dbd83ed9841fa0440e0a5477da7b", 10991, "query-text.trec"),
            SourceFile(f"{_NPL}/qrels",
                       "1b3ed6a43752c7a7becb0dbd1614d662791bb7825b60182fd36be24d480ea447", 24863, "qrels"),
        ),
    ),
    DataSource(
        name="codebase-contextual", folder="contextual-codebase", source_url=_COOKBOOK_PAGE, license="MIT",
        files=(
            SourceFile(f"{_COOKBOOK}/codebase_chunks.json",
                       "70dbed1cb8a90a107b23742b1537051346860f841ec8b03734c1298fa4a34d46", 1126046,
                       "codebase_chunks.json"),
            SourceFile(f"{_COOKBOOK}/evaluation_set.jsonl",
                       "7186e2bed15547a2ed178134876b29e4abb206bf0394facbe61d58bf835ee073", 3571229,
                       "evaluation_set.jsonl"),
            SourceFile(_COOKBOOK_LICENSE,
                       "d7a04bf11ce24a7b79cd44b4a78dcc9971eaeb3b565821de437e0ecb7723e634", 1065, "LICENSE"),
        ),
    ),
)}


def find_source(name: str) -> DataSource:
    """The dataset called `name`; an unknown name is one line listing the known ones."""
    if name in DATA_SOURCES:
        return DATA_SOURCES[name]
    by_folder = {s.folder: s.name for s in DATA_SOURCES.values()}  # "contextual-codebase" -> its name
    close = [by_folder[name]] if name in by_folder else difflib.get_close_matches(name, list(DATA_SOURCES), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise EmbedbenchError(f"unknown dataset {name!r}{hint} (known: {', '.join(DATA_SOURCES)})")


def fetch_hint(folder: str) -> str:
    """`; `embedbench data fetch NAME` downloads it` when a pinned source provides `folder`, else ""."""
    names = [s.name for s in DATA_SOURCES.values() if s.folder == folder.rstrip("/").rsplit("/", 1)[-1]]
    return f"; `embedbench data fetch {names[0]}` downloads it" if names else ""
