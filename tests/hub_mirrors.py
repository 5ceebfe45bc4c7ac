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
"""

from __future__ import annotations

import json
from pathlib import Path

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
