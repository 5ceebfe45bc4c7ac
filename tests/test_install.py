"""A non-editable install (`pip install .`) carries the suites and eval plans; the lock covers pyproject.toml.

The wheel is built from a copy of the source tree (building in place would write build/ and an
egg-info into the checkout) and installed into a bare folder. Its console script then runs from an
empty working folder under `python -S`: sys.path is that folder plus the environment's site-packages
(the dependencies), and without site's .pth files the checkout's editable-install path never enters
it, so nothing can come from the checkout's src/, suites/ or evals/.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from embedbench.results import read_results

REPO = Path(__file__).resolve().parents[1]
SHIPPED_SUITES = {p.stem for p in (REPO / "suites").glob("*.yaml")}
SHIPPED_PLANS = {p.stem for p in (REPO / "evals").glob("*.yaml")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install --target`: the wheel pip builds from the source tree, installed without its dependencies."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("src", "suites", "evals"):  # symlinks stay links, as in a clone
        shutil.copytree(REPO / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--no-cache-dir", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=120)
    return target


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """An empty working folder, apart from the checkout."""
    (tmp_path / "cwd").mkdir()
    return tmp_path / "cwd"


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed package's Python (`-c CODE`) or console script (anything else), isolated from the checkout."""
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *deps]),
           "EMBEDBENCH_CACHE_DIR": str(cwd.parent / "cache")}
    program = list(args) if args[0] == "-c" else [str(target / "bin" / "embedbench"), *args]
    return subprocess.run([sys.executable, "-S", *program], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_install_is_used_not_the_checkout(installed, elsewhere):
    proc = run_installed(installed, elsewhere, "-c", "import json, sys, embedbench; "
                         "print(json.dumps([embedbench.__file__, sys.path]))")
    assert proc.returncode == 0, proc.stderr
    module, path = json.loads(proc.stdout)
    assert Path(module).is_relative_to(installed)
    checkout = [REPO / "src", REPO / "suites", REPO / "evals"]
    assert not [p for p in path if p and any(Path(p).resolve().is_relative_to(c) for c in checkout)]
    assert str(REPO) not in path


def test_installed_lists_every_suite_and_the_working_folders_first(installed, elsewhere):
    local = elsewhere / "suites"
    local.mkdir()
    mine = yaml.safe_load((REPO / "suites" / "synthetic-q2q.yaml").read_text(encoding="utf-8"))
    mine["description"] = "From the working folder."
    (local / "synthetic-q2q.yaml").write_text(yaml.safe_dump(mine), encoding="utf-8")  # replaces the shipped one
    (local / "my-q2q.yaml").write_text(yaml.safe_dump({**mine, "name": "my-q2q"}), encoding="utf-8")

    proc = run_installed(installed, elsewhere, "list", "suites", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["suite"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == SHIPPED_SUITES | {"my-q2q"} and len(SHIPPED_SUITES) >= 13
    assert rows["synthetic-q2q"]["description"] == "From the working folder."
    assert rows["synthetic-q2d"]["description"].startswith("Synthetic Query2Doc")


def test_installed_finds_eval_plans_by_name(installed, elsewhere):
    code = ("import json; from embedbench.plans import available_plans, load_plan; "
            "print(json.dumps([sorted(available_plans()), load_plan('checkpoint-gate').gate.max_task_drop]))")
    proc = run_installed(installed, elsewhere, "-c", code)
    assert proc.returncode == 0, proc.stderr
    names, max_drop = json.loads(proc.stdout)
    assert set(names) == SHIPPED_PLANS and max_drop == 0.01


def test_installed_evaluates_a_suite_by_name(installed, elsewhere):
    results = elsewhere / "results"
    proc = run_installed(installed, elsewhere, "eval", "--model", "hashing", "--suite", "synthetic-q2d",
                         "--corpus-size", "4000", "--limit-queries", "5", "--results-dir", str(results))
    assert proc.returncode == 0, proc.stderr
    [result] = read_results(results)
    assert (result.model, result.suite, result.task) == ("hashing", "synthetic-q2d", "SyntheticQuery2Doc")
    assert (result.n_docs, result.n_queries) == (4000, 5)
    assert 0.0 <= result.main_score <= 1.0


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements or constraints file, by canonical name."""
    lines = (line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {canonicalize_name(name): version for name, _, version in
            (line.partition("==") for line in lines if "==" in line)}


def test_the_lock_pins_every_requirement_and_agrees_with_the_constraints():
    """A dependency added to pyproject.toml without `make lock` would be missing after `make setup`."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    lock = pins(REPO / "requirements.lock")
    for spec in [*project["dependencies"], *extras["test"], *extras["ray"]]:
        req = Requirement(spec)
        assert canonicalize_name(req.name) in lock, f"{req.name} is not in requirements.lock (run make lock)"
        assert req.specifier.contains(lock[canonicalize_name(req.name)], prereleases=True), spec
    for name, version in pins(REPO / "constraints.txt").items():
        assert name not in lock or lock[name].split("+")[0] == version, name
    assert lock["torch"] == "2.13.0+cpu" and not [name for name in lock if name.startswith("nvidia")]


def test_make_eval_passes_device_dtype_batch_length_and_args_through():
    """`make eval DEVICE= DTYPE= BATCH= MAX_LENGTH= ARGS=` reaches `embedbench eval` as its flags; unset, none appear."""
    root = Path(__file__).resolve().parents[1]

    def command(*variables: str) -> list[str]:
        out = subprocess.run(["make", "-s", "-n", "-o", ".venv/.installed", "eval", *variables], cwd=root,
                             capture_output=True, text=True, check=True).stdout
        return shlex.split(out.replace("\\\n", " "))

    given = command("MODEL=pplx-embed-v1-4b", "DEVICE=cuda:1", "DTYPE=bf16", "BATCH=64", "MAX_LENGTH=512",
                    "ARGS=--limit-queries 200 --index exact,sq8")
    assert given[1:4] == ["eval", "--model", "pplx-embed-v1-4b"]
    assert given[-12:] == ["--device", "cuda:1", "--dtype", "bf16", "--batch-size", "64", "--max-length", "512",
                           "--limit-queries", "200", "--index", "exact,sq8"]
    default = command()
    assert not {"--device", "--dtype", "--batch-size", "--max-length"} & set(default)
    assert default[-2:] == ["--results-dir", "results"]
