"""Load the data of one suite task through the loader it names."""

from __future__ import annotations

import os
from pathlib import Path

from embedbench.data.types import RetrievalData
from embedbench.suites import TaskSpec


def default_data_dir() -> Path | None:
    value = os.environ.get("EMBEDBENCH_DATA_DIR")
    return Path(value) if value else None


def load_task_data(task: TaskSpec, data_dir: Path | None, cache_dir: Path) -> RetrievalData:
    if task.loader == "bfcl":
        from embedbench.data.bfcl import ensure_bfcl_wheel, load_bfcl

        return load_bfcl(ensure_bfcl_wheel(cache_dir)).validate()
    from embedbench.data.formats import load_dataset_spec

    return load_dataset_spec(f"{task.loader}:{task.path}", data_dir)
