"""Write tiny local mirrors of hub datasets in each repo's own layout (test helper).

A mirror is a folder shaped like the hub repo as ``push_to_hub`` leaves it: a ``README.md`` whose
YAML ``configs:`` maps every config's splits to ``<config>/<split>-00000-of-00001.parquet`` files,
with the hub dataset's own column names. `datasets.load_dataset(folder, config, split=...)` reads it
exactly as it reads the hub repo, so loaders are tested through their real code path.

- ToolRet (``mangopy/ToolRet-Queries``: one config per source task, split ``queries``, columns
  id / query / instruction / labels (a JSON string: [{id, doc, relevance}]) / category;
  ``mangopy/ToolRet-Tools``: configs code / web / customized, split ``tools``, columns id /
  documentation (a JSON string));
- ConTEB (``illuin-conteb/<name>``: configs documents (chunk_id ``<doc>_<position>``, chunk) and
  queries (query, chunk_id, answer), one split such as ``train`` or ``test``).

Model repos, for the weights checks (`embedbench.encoders.hub`, `embedbench.encoders.weights`):

- `add_snapshot` writes a Hugging Face cache entry in the hub client's own layout
  (``models--ORG--NAME/refs/BRANCH`` holding the commit, ``snapshots/COMMIT/*`` symlinked into ``blobs/``);
- `FakeHub` is a real HTTP server on 127.0.0.1 answering what huggingface_hub asks the hub for a model:
  ``/api/models/REPO[/revision/REV]`` (model_info; ``?blobs=True`` adds sizes, blob ids and LFS sha256),
  ``/api/models/REPO/tree/REV`` (the file list snapshot_download reads) and ``HEAD|GET /REPO/resolve/REV/FILE``
  (the download), with the hub's error headers (``X-Error-Code: GatedRepo | RevisionNotFound | RepoNotFound``)
  for scripted refusals. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq


def write_repo(folder: Path, tables: dict[str, dict[str, list[dict]]]) -> Path:
    """tables: {config: {split: rows}} -> parquet files + README.md configs, like a hub repo."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["---", "configs:"]
    for config, splits in tables.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            (folder / config).mkdir(exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), folder / config / f"{split}-00000-of-00001.parquet")
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    lines += ["---", "", f"# mirror of {folder.name} (test data)", ""]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


# --- ToolRet ---------------------------------------------------------------------------------

TOOLS: dict[str, list[dict]] = {
    "web": [
        {"id": "apigen_tool_0", "documentation": {
            "name": "bacterial_growth",
            "description": "Calculates the bacterial population after a given time.",
            "parameters": {
                "initial_population": {"description": "The initial population.", "type": "int", "default": 20},
                "doubling_time": {"description": "Doubling time in minutes.", "type": "float, optional"}}}},
        {"id": "apigen_tool_1", "documentation": {
            "name": "weather_forecast", "description": "Forecast weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City"}},
                           "required": ["city"]}}},
        {"id": "toolbench_tool_0", "documentation": {
            "category_name": "Music", "tool_name": "lyrics", "api_name": "get_lyrics",
            "api_description": "Song lyrics by title.", "required_parameters": [{"name": "title"}]}},
        {"id": "toolbench_tool_1", "documentation": {
            "name": "currency_convert", "description": "Convert an amount between currencies.",
            "parameters": [{"name": "amount", "type": "number", "description": "Amount", "required": True}]}},
    ],
    "code": [
        {"id": "gorilla_tool_0", "documentation": {
            "name": "torch.hub.load", "description": "Load a pretrained model from a hub repo."}},
    ],
    "customized": [
        {"id": "gpt4tools_tool_0", "documentation": "Image captioner: describe what is in an image."},
    ],
}

QUERIES: dict[str, list[dict]] = {
    "apigen": [
        {"id": "apigen_query_0", "query": "Population of 500 bacteria after 45 minutes?",
         "instruction": "Given a `bacterial growth` task, retrieve tools that compute population growth.",
         "labels": [("apigen_tool_0", 1)]},
        {"id": "apigen_query_1", "query": "Weather in Paris tomorrow and bacteria growth",
         "instruction": "Given a `weather and biology` task, retrieve the forecast and growth tools.",
         "labels": [("apigen_tool_1", 1), ("apigen_tool_0", 1)]},
    ],
    "toolbench": [
        {"id": "toolbench_query_0", "query": "Lyrics of Yesterday, and convert 10 USD to EUR",
         "instruction": "Given a `music and money` task, retrieve lyrics and currency tools.",
         "labels": [("toolbench_tool_0", 2), ("toolbench_tool_1", 1)]},
    ],
    "gorilla-huggingface": [
        {"id": "gorilla_query_0", "query": "Load a pretrained ResNet", "instruction": "Given a `model` task, ...",
         "labels": [("gorilla_tool_0", 1)]},
    ],
}
TASK_CATEGORY = {"apigen": "web", "toolbench": "web", "gorilla-huggingface": "code"}


def write_toolret_mirror(root: Path) -> Path:
    """root/mangopy/ToolRet-Tools and root/mangopy/ToolRet-Queries; returns root (for EMBEDBENCH_HUB_MIRROR)."""
    docs = {t["id"]: t["documentation"] for rows in TOOLS.values() for t in rows}

    def dump(doc: object) -> str:
        return doc if isinstance(doc, str) else json.dumps(doc)

    write_repo(root / "mangopy" / "ToolRet-Tools", {
        cat: {"tools": [{"id": t["id"], "documentation": dump(t["documentation"])} for t in rows]}
        for cat, rows in TOOLS.items()})
    write_repo(root / "mangopy" / "ToolRet-Queries", {
        task: {"queries": [{
            "id": q["id"], "query": q["query"], "instruction": q["instruction"], "category": TASK_CATEGORY[task],
            "labels": json.dumps([{"id": i, "doc": docs[i], "relevance": r} for i, r in q["labels"]])}
            for q in rows]}
        for task, rows in QUERIES.items()})
    return root


# --- ConTEB ----------------------------------------------------------------------------------

# Two documents; chunks written out of order on purpose (the loader must restore positions).
CONTEB_CHUNKS = {
    "12": ["Lionel Messi was born in Rosario, Argentina.",
           "He joined the youth academy at the age of thirteen.",
           "Later he won the World Cup with his national team."],
    "7": ["Zinedine Zidane grew up in Marseille.",
          "He scored twice in the final of the tournament."],
}
CONTEB_QUERIES = [
    ("When did Lionel Messi join the youth academy?", "12_1", "at thirteen"),
    ("Did Lionel Messi win the World Cup?", "12_2", "yes"),
    ("How many goals did Zinedine Zidane score in the final?", "7_1", "two"),
    ("Where did Zinedine Zidane grow up?", "7_0", "Marseille"),
]


def write_conteb_mirror(root: Path, repo_id: str = "illuin-conteb/football", split: str = "train") -> Path:
    """root/<repo_id> with configs documents and queries in one split; returns root."""
    chunks = [{"chunk_id": f"{doc}_{i}", "chunk": text}
              for doc, texts in CONTEB_CHUNKS.items() for i, text in enumerate(texts)]
    order = [3, 0, 4, 2, 1]  # shuffled file order: 7_0, 12_0, 7_1, 12_2, 12_1
    write_repo(root / repo_id, {
        "documents": {split: [chunks[i] for i in order]},
        "queries": {split: [{"query": q, "chunk_id": c, "answer": a} for q, c, a in CONTEB_QUERIES]},
    })
    return root


# --- Model repos: the local cache's layout and a fake hub ---------------------------------------


def add_snapshot(hub: Path, repo_id: str, commit: str, files: dict[str, Path], branch: str | None = "main") -> Path:
    """snapshots/COMMIT/NAME -> ../../blobs/HASH (the blob itself links to `files[NAME]`); refs/BRANCH = COMMIT."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, source in files.items():
        blob = repo / "blobs" / hashlib.sha256(f"{commit}/{name}".encode()).hexdigest()
        if not blob.exists():
            blob.symlink_to(source)
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).symlink_to(os.path.relpath(blob, (snapshot / name).parent))
    if branch is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / branch).write_text(commit)  # the hub writes the bare sha, no newline
    return snapshot


def point_hub_client(monkeypatch, endpoint: str, cache: Path, offline: bool = False) -> None:
    """Point huggingface_hub at `endpoint` and `cache` for one test: what HF_ENDPOINT / HF_HUB_CACHE /
    HF_HUB_OFFLINE set when it is imported (it reads them once). Its HTTP client is closed so the next one
    reads the proxy variables again, with 127.0.0.1 bypassing any proxy."""
    from huggingface_hub import close_session, constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    close_session()


def git_blob_id(content: bytes) -> str:
    """A file's git object id, which the hub reports as `blobId` / `oid` (and uses as the ETag of a non-LFS file)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class FakeFile:
    """A repo file: served `content`, or only a declared `size` (to ask for sizes no test wants to download).
    Files named *.safetensors are stored with LFS, as on the hub."""

    content: bytes = b""
    size: int | None = None

    @property
    def length(self) -> int:
        return len(self.content) if self.size is None else self.size

    def sibling(self, name: str) -> dict:
        """The file as model_info(files_metadata=True) lists it (and, renamed, as the tree listing does)."""
        entry = {"rfilename": name, "size": self.length, "blobId": git_blob_id(self.content)}
        if name.endswith(".safetensors"):
            entry["lfs"] = {"size": self.length, "sha256": hashlib.sha256(self.content).hexdigest(), "pointerSize": 134}
        return entry

    def etag(self, name: str) -> str:
        entry = self.sibling(name)
        return entry["lfs"]["sha256"] if "lfs" in entry else entry["blobId"]


@dataclass
class FakeRepo:
    commit: str
    files: dict[str, FakeFile]
    branches: tuple[str, ...] = ("main",)
    refuse: tuple[int, dict[str, str]] | None = None  # (status, headers) answered to every request


@dataclass
class FakeHub:
    """`with FakeHub() as hub:` serves `hub.repos` at `hub.endpoint`; `hub.requests` lists (method, path)."""

    repos: dict[str, FakeRepo] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    probe: object = None  # a callable; its value at each request is kept in `probed` (e.g. what stderr held)
    probed: list[object] = field(default_factory=list)

    def add(self, repo_id: str, commit: str, files: dict[str, bytes | int], **kwargs: object) -> FakeRepo:
        """A repo whose files are bytes (served) or ints (a declared size only)."""
        made = {name: FakeFile(size=v) if isinstance(v, int) else FakeFile(content=v) for name, v in files.items()}
        self.repos[repo_id] = FakeRepo(commit, made, **kwargs)  # type: ignore[arg-type]
        return self.repos[repo_id]

    def gate(self, repo_id: str, status: int = 403) -> None:
        """The hub's answer to a gated repo without an accepted token."""
        self.repos[repo_id].refuse = (status, {
            "X-Error-Code": "GatedRepo",
            "X-Error-Message": f"Access to model {repo_id} is restricted and you are not in the authorized list."})

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hub.answer(self, body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                hub.answer(self, body=False)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(handler.path).path)
        if path != "/api/agent-harnesses":  # huggingface_hub's own telemetry (answered 404), not a question we ask
            self.requests.append((handler.command, path))
            self.probed.append(self.probe() if callable(self.probe) else None)
        status, headers, payload = self.route(path)
        handler.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(payload))}.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(payload)

    def route(self, path: str) -> tuple[int, dict[str, str], bytes]:
        parts = path.strip("/").split("/")
        api = parts[0] == "api"
        repo_id = "/".join(parts[2:4] if api else parts[0:2])
        repo = self.repos.get(repo_id)
        if repo is None:
            return _json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if repo.refuse is not None:
            return _json(repo.refuse[0], {"error": repo.refuse[1].get("X-Error-Message", "refused")}, repo.refuse[1])
        rest = parts[4:] if api else parts[2:]
        kind = rest[0] if rest else "revision"
        rev = rest[1] if len(rest) > 1 else "main"
        if rev != repo.commit and rev not in repo.branches:
            return _json(404, {"error": f"Invalid rev id: {rev}"},
                         {"X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {rev}"})
        if api and kind == "revision":
            siblings = [f.sibling(name) for name, f in repo.files.items()]
            return _json(200, {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                               "siblings": siblings})
        if api and kind == "tree":
            return _json(200, [_tree_entry(f.sibling(name)) for name, f in repo.files.items()])
        if not api and kind == "resolve":
            name = "/".join(rest[2:])
            if name not in repo.files:
                return _json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            file = repo.files[name]
            return 200, {"X-Repo-Commit": repo.commit, "ETag": f'"{file.etag(name)}"'}, file.content
        return _json(404, {"error": f"no route {path}"})


def _tree_entry(sibling: dict) -> dict:
    entry = {"type": "file", "path": sibling["rfilename"], "size": sibling["size"], "oid": sibling["blobId"]}
    if "lfs" in sibling:
        entry["lfs"] = {"oid": sibling["lfs"]["sha256"], "size": sibling["size"], "pointerSize": 134}
    return entry


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()


def offline_hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty offline Hugging Face cache that this process (and its children, through the environment) read."""
    folder = tmp_path / "hf-hub"
    folder.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(folder))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    return folder
