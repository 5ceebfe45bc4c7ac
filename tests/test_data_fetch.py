"""`embedbench data fetch / list`: pinned downloads into the data dir, all or nothing.

A real HTTP server on 127.0.0.1 serves ../shared/data as a mirror (`--mirror`, the documented override), so
the fetch runs its real download path; it can corrupt or cut short chosen files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from embedbench.cli.main import main
from embedbench.data.fetch import dataset_state, fetch_dataset, file_url
from embedbench.data.sources import DATA_SOURCES, DataSource, SourceFile
from embedbench.data.suites import load_suite
from embedbench.data.tasks import LoadContext, load_task_data
from embedbench.errors import EmbedbenchError
from conftest import require_data

NAMES = ("xquad-r", "vaswani", "codebase-contextual")


class _MirrorServer(ThreadingHTTPServer):
    """Serves the files under `root` at /<relative path>; `corrupt` paths get one byte flipped, `cut` paths
    announce their full length but send half and close. Every GET path is recorded in `requests`."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.corrupt, self.cut, self.requests = root, set(), set(), []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _MirrorServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        rel = urllib.parse.unquote(self.path.lstrip("/"))
        self.server.requests.append(rel)
        path = self.server.root / rel
        if ".." in Path(rel).parts or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        if rel in self.server.corrupt:
            body = bytes([body[0] ^ 1]) + body[1:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if rel in self.server.cut else body)

    def log_message(self, *args: object) -> None:
        pass


def _shared() -> Path:
    """The shared data folder, every file of the pinned table there (else skip, or fail in CI)."""
    for source in DATA_SOURCES.values():
        for path in source.wanted():
            require_data(f"{source.folder}/{path}")
    return require_data()


@pytest.fixture(scope="module")
def mirror() -> Iterator[_MirrorServer]:
    server = _MirrorServer(_shared())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _bypass_proxies(mp: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        mp.delenv(var, raising=False)
    mp.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def _fresh_requests(mirror: _MirrorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _bypass_proxies(monkeypatch)
    mirror.requests.clear()
    mirror.corrupt.clear()
    mirror.cut.clear()


def run(*argv: str) -> int:
    """`embedbench data ARGV` through the CLI: one line on stderr and 2 on bad input."""
    return main(["data", *argv])


@pytest.fixture(scope="module")
def fetched(mirror: _MirrorServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All three datasets fetched once through the mirror into a fresh (not yet existing) data dir."""
    data_dir = tmp_path_factory.mktemp("fetched") / "data"
    with pytest.MonkeyPatch.context() as mp:
        _bypass_proxies(mp)
        assert run("fetch", *NAMES, "--data-dir", str(data_dir), "--mirror", mirror.url) == 0
    return data_dir


def _listing(data_dir: Path | None, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    capsys.readouterr()
    args = ("list", "--format", "json") + (("--data-dir", str(data_dir)) if data_dir else ())
    assert run(*args) == 0
    return {row["dataset"]: row for row in json.loads(capsys.readouterr().out)}


def _files(folder: Path) -> list[str]:
    """Every entry under `folder`, hidden ones included, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_pinned_table_hashes_are_the_shared_copies():
    shared = _shared()
    for source in DATA_SOURCES.values():
        for f in source.files:
            data = (shared / source.folder / f.path).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (f.size, f.sha256), f.path
            assert re.match(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/", f.url), f.url


def test_fetch_gives_the_shared_bytes_and_the_loaders_read_them(fetched, tmp_path):
    shared = _shared()
    for name in NAMES:
        source = DATA_SOURCES[name]
        assert _files(fetched / source.folder) == sorted(f.path for f in source.files)
        for f in source.files:
            assert (fetched / source.folder / f.path).read_bytes() == (shared / source.folder / f.path).read_bytes()
    assert sorted(os.listdir(fetched)) == ["contextual-codebase", "vaswani", "xquad-r"]  # no staging leftovers
    for suite, options in (("vaswani", {}), ("codebase-contextual", {}), ("xquad-r", {"languages": ["en"]})):
        spec = load_suite(suite).tasks[0]
        spec = spec.model_copy(update={"options": {**spec.options, **options}})
        mine = load_task_data(spec, LoadContext(fetched, tmp_path))
        theirs = load_task_data(spec, LoadContext(shared, tmp_path))
        assert [s.data.content_hash() for s in mine] == [s.data.content_hash() for s in theirs], suite
        assert len(mine[0].data.queries) == len(theirs[0].data.queries) > 0


def test_list_before_and_after(fetched, tmp_path, capsys):
    before = _listing(tmp_path / "empty", capsys)
    assert {n: r["status"] for n, r in before.items()} == {n: "absent" for n in NAMES}
    assert before["codebase-contextual"]["path"] == str(tmp_path / "empty" / "contextual-codebase")
    assert before["vaswani"]["suites"] == ["vaswani"]
    assert before["codebase-contextual"]["suites"] == ["codebase-contextual"]
    assert before["xquad-r"]["suites"] == ["xquad-r", "xquad-r-contextual", "xquad-r-q2q", "xquad-r-rag"]
    assert before["xquad-r"]["source"].startswith("https://github.com/google-research-datasets/lareqa/")
    assert run("list", "--data-dir", str(fetched)) == 0
    table = capsys.readouterr().out
    for name in NAMES:
        folder = re.escape(str(fetched / DATA_SOURCES[name].folder))
        assert re.search(rf"^\s*{name}\s+present\s+{folder}\s", table, re.M), table
    (fetched / "vaswani" / "qrels").rename(fetched / "qrels.aside")
    try:
        assert dataset_state(DATA_SOURCES["vaswani"], fetched).status == "incomplete (1 of 3 missing)"
    finally:
        (fetched / "qrels.aside").rename(fetched / "vaswani" / "qrels")


def test_checksum_mismatch_exit_2_and_nothing_left(mirror, tmp_path, capsys):
    mirror.corrupt.add("vaswani/qrels")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    assert run("fetch", "vaswani", "--data-dir", str(data_dir), "--mirror", mirror.url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checksum mismatch" in err and "vaswani/qrels" in err, err
    assert "vaswani/qrels" in mirror.requests and _files(data_dir) == []
    fresh = tmp_path / "not-yet" / "data"  # a data dir the fetch had to create is removed again
    assert run("fetch", "vaswani", "--data-dir", str(fresh), "--mirror", mirror.url) == 2
    assert not fresh.exists()
    assert run("fetch", "vaswani", "--data-dir", str(data_dir), "--mirror", f"{mirror.url}/elsewhere") == 2
    assert "/elsewhere/vaswani/doc-text.trec: HTTP 404" in capsys.readouterr().err and _files(data_dir) == []


def test_interrupted_download_exit_2_and_nothing_left(mirror, tmp_path, capsys):
    mirror.cut.add("xquad-r/th.json")
    assert run("fetch", "xquad-r", "--data-dir", str(tmp_path), "--mirror", mirror.url) == 2
    err = capsys.readouterr().err
    assert "ended early (1309272 of 2618544 bytes)" in err, err
    assert _files(tmp_path) == []


def test_unknown_name_exit_2_lists_the_names_and_fetches_nothing(mirror, tmp_path, capsys):
    assert run("fetch", "vaswani", "contextual-codebase", "--data-dir", str(tmp_path), "--mirror", mirror.url) == 2
    err = capsys.readouterr().err
    assert err == ("embedbench: error: unknown dataset 'contextual-codebase'; did you mean codebase-contextual? "
                   "(known: xquad-r, vaswani, codebase-contextual)\n")
    assert mirror.requests == [] and _files(tmp_path) == []


def test_no_data_dir_is_exit_2(monkeypatch, capsys):
    monkeypatch.delenv("EMBEDBENCH_DATA_DIR", raising=False)
    assert run("fetch", "vaswani") == 2
    assert "set EMBEDBENCH_DATA_DIR or pass --data-dir" in capsys.readouterr().err


def test_present_is_left_alone_force_fetches_again(mirror, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMBEDBENCH_DATA_MIRROR", mirror.url)  # the environment's mirror, no --mirror
    assert run("fetch", "vaswani", "--data-dir", str(tmp_path)) == 0
    assert len(mirror.requests) == 3
    capsys.readouterr()
    assert run("fetch", "vaswani", "--data-dir", str(tmp_path)) == 0
    assert "vaswani: already present in" in capsys.readouterr().out and len(mirror.requests) == 3
    (tmp_path / "vaswani" / "notes.txt").write_text("mine")
    assert run("fetch", "vaswani", "--data-dir", str(tmp_path), "--force") == 0
    assert len(mirror.requests) == 6 and "fetched 3 files" in capsys.readouterr().out
    assert _files(tmp_path) == ["vaswani", "vaswani/doc-text.trec", "vaswani/qrels", "vaswani/query-text.trec"]


def test_incomplete_folder_needs_force(mirror, tmp_path, capsys):
    (tmp_path / "vaswani").mkdir()
    (tmp_path / "vaswani" / "qrels").write_text("1 0 1 1\n")
    assert run("fetch", "vaswani", "--data-dir", str(tmp_path), "--mirror", mirror.url) == 2
    assert "lacks doc-text.trec, query-text.trec; move it away or pass --force" in capsys.readouterr().err
    assert mirror.requests == [] and (tmp_path / "vaswani" / "qrels").read_text() == "1 0 1 1\n"
    mirror.corrupt.add("vaswani/doc-text.trec")  # a failed --force keeps the old folder as it was
    assert run("fetch", "vaswani", "--data-dir", str(tmp_path), "--mirror", mirror.url, "--force") == 2
    assert _files(tmp_path) == ["vaswani", "vaswani/qrels"]


def test_stale_staging_of_a_killed_fetch_is_removed(mirror, tmp_path):
    stale, fresh = tmp_path / ".fetch-vaswani-0123456789ab", tmp_path / ".fetch-vaswani-old-ba9876543210"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "doc-text.trec").write_text("half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert run("fetch", "vaswani", "--data-dir", str(tmp_path), "--mirror", mirror.url) == 0
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a fetch still starting


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_archive_is_unpacked_from_a_folder_mirror(tmp_path):
    archive = _tar_gz({"corpus/docs.trec": b"<DOC><DOCNO>1</DOCNO> a </DOC>\n", "qrels": b"1 0 1 1\n"})
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "toy.tar.gz").write_bytes(archive)
    entry = SourceFile("https://example.invalid/toy.tar.gz", hashlib.sha256(archive).hexdigest(), len(archive),
                       "toy.tar.gz", extract=True, members=("corpus/docs.trec", "qrels"))
    source = DataSource(name="toy", folder="toy", source_url="https://example.invalid", license="-", files=(entry,))
    assert file_url(source, entry, str(tmp_path / "mirror")).startswith("file://")
    data_dir = tmp_path / "data"
    outcome = fetch_dataset(source, data_dir, mirror=str(tmp_path / "mirror"), progress=False)
    assert outcome.fetched and dataset_state(source, data_dir).present
    assert _files(data_dir) == ["toy", "toy/corpus", "toy/corpus/docs.trec", "toy/qrels"]  # the archive is not kept
    lacking = DataSource(name="toy2", folder="toy2", source_url="-", license="-",
                         files=(SourceFile(entry.url, entry.sha256, entry.size, entry.path, True, ("topics",)),))
    (tmp_path / "mirror" / "toy2").mkdir()
    (tmp_path / "mirror" / "toy2" / "toy.tar.gz").write_bytes(archive)
    with pytest.raises(EmbedbenchError, match="the archive lacks topics"):
        fetch_dataset(lacking, data_dir, mirror=str(tmp_path / "mirror"), progress=False)
    assert _files(data_dir) == ["toy", "toy/corpus", "toy/corpus/docs.trec", "toy/qrels"]


@pytest.mark.parametrize("suite, name", [("vaswani", "vaswani"), ("xquad-r", "xquad-r"),
                                         ("codebase-contextual", "codebase-contextual")])
def test_a_missing_local_dataset_names_its_fetch(tmp_path, capsys, suite, name):
    """A local suite whose data folder lacks its dataset says which `embedbench data fetch` provides it."""
    code = main(["-q", "eval", "--model", "hashing", "--suite", suite, "--data-dir", str(tmp_path),
                 "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"`embedbench data fetch {name}` downloads it" in err and not (tmp_path / "r").exists()
