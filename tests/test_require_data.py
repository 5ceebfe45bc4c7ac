"""Missing shared data: a skip with its reason on a clean clone, a failure under EMBEDBENCH_REQUIRE_DATA=1 (CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
TINY = "def test_needs_the_shared_data(shared_data):\n    assert shared_data.is_dir()\n"


def _pytest_on_empty_data(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    """Run a one-test file that uses the `shared_data` fixture, with EMBEDBENCH_DATA_DIR an empty folder.

    tests/conftest.py is loaded as a plugin (`-p conftest`) and the project's pytest settings with it
    (`-c pyproject.toml`), so the run shows what `make test` would show."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "test_tiny.py").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k != "EMBEDBENCH_REQUIRE_DATA"}
    env.update(EMBEDBENCH_DATA_DIR=str(tmp_path / "empty"),
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")]))
    if require is not None:
        env["EMBEDBENCH_REQUIRE_DATA"] = require
    cmd = [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-c", str(REPO / "pyproject.toml"),
           "--rootdir", str(tmp_path), str(tmp_path / "test_tiny.py")]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_absent_data_skips_with_the_reason_shown(tmp_path):
    proc = _pytest_on_empty_data(tmp_path, require=None)
    assert proc.returncode == 0, proc.stdout[-3000:]
    reason = f"real data absent: {tmp_path / 'empty' / 'xquad-r' / 'en.json'}"
    assert "1 skipped" in proc.stdout and "SKIPPED [1] " in proc.stdout and reason in proc.stdout, proc.stdout


def test_absent_data_fails_when_required(tmp_path):
    proc = _pytest_on_empty_data(tmp_path, require="1")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "1 error" in proc.stdout and "skipped" not in proc.stdout, proc.stdout
    assert "real data absent" in proc.stdout and "EMBEDBENCH_REQUIRE_DATA=1: missing data is a failure" in proc.stdout


def test_ci_requires_the_data():
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert "export EMBEDBENCH_REQUIRE_DATA=1" in lines
