"""The package's layers are checked, not hoped for: import-linter's contracts in pyproject.toml hold
for the tree as it is, and a planted forbidden import or cycle breaks them (so the check can fail)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"  # installed with the test extra


def _lint_imports(src: Path, config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """lint-imports over the `embedbench` package found in `src`, with the contracts in `config`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), str(config), "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_package_keeps_every_import_contract():
    proc = _lint_imports(REPO / "src", REPO / "pyproject.toml", REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = (REPO / "pyproject.toml").read_text(encoding="utf-8").partition("[tool.importlinter]")[2]
    assert set(re.findall(r'^type = "(.+)"$', config, re.M)) == {"layers", "forbidden", "acyclic_siblings"}
    names = re.findall(r'^name = "(.+)"$', config, re.M)
    assert names and all(f"{name} KEPT" in proc.stdout for name in names), proc.stdout


def _copy_package(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of src/embedbench and of the contracts, to plant imports in."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "embedbench", src / "embedbench", ignore=shutil.ignore_patterns("__pycache__"))
    config = tmp_path / "pyproject.toml"
    shutil.copyfile(REPO / "pyproject.toml", config)
    return src, config


def _plant(module: Path, line: str) -> int:
    """Append `line` to `module`; its line number."""
    module.write_text(module.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return len(module.read_text(encoding="utf-8").splitlines())


def test_a_report_importing_the_engine_breaks_its_contract(tmp_path):
    src, config = _copy_package(tmp_path)
    planted = _plant(src / "embedbench" / "report" / "__init__.py", "import embedbench.engine  # planted")

    proc = _lint_imports(src, config, tmp_path)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Reports and gates read results only (never engine, encoders, data or rag) BROKEN" in proc.stdout
    assert f"embedbench.report -> embedbench.engine (l.{planted})" in proc.stdout


def test_a_cycle_hidden_in_lazy_and_type_checking_imports_breaks_the_acyclic_contract(tmp_path):
    src, config = _copy_package(tmp_path)
    data = src / "embedbench" / "data"
    _plant(data / "tasks.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from embedbench.data.suites import Suite")
    _plant(data / "suites.py", "def _planted():\n    from embedbench.data.tasks import LOADERS")

    proc = _lint_imports(src, config, tmp_path)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "No import cycles between sibling modules or packages, at any depth BROKEN" in proc.stdout
    assert "No cycles are allowed in embedbench.data." in proc.stdout
