"""A CLI that explains itself (issue 13 item 3): every option has help, --version, -v / -q, a fast --help."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys

import pytest

from embedbench.cli import main
from embedbench.cli.logs import DEFAULT, QUIET, VERBOSE
from embedbench.cli.main import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str = "embedbench") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser, its options complete (the gate's are added on first use)."""
    parser.format_help()
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out += _parsers(child, f"{path} {name}")
    return out


def test_every_option_of_every_subcommand_has_help():
    parsers = dict(_parsers(build_parser()))
    assert {"embedbench eval", "embedbench results", "embedbench report", "embedbench gate", "embedbench list",
            "embedbench cache info", "embedbench cache prune", "embedbench data fetch",
            "embedbench data list"} <= set(parsers)
    missing = []
    for path, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):  # each subcommand's one-line summary
                missing += [f"{path} {c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help: {missing}"
    assert len(parsers["embedbench gate"]._actions) > 10  # the gate's own options were walked too


def test_model_help_lists_every_form_of_model_reference():
    eval_parser = dict(_parsers(build_parser()))["embedbench eval"]
    text = next(a.help for a in eval_parser._actions if "--model" in a.option_strings)
    for form in ("embedbench list models", "local model folder", "hf:ORG/NAME[@REV][?pooling=", "onnx:FOLDER",
                 "http(s)://HOST/", "plugin", "minilm-l6"):
        assert form in text, form


def test_device_index_and_dtype_help_name_their_forms():
    actions = {s: a for a in dict(_parsers(build_parser()))["embedbench eval"]._actions for s in a.option_strings}
    for form in ("cpu", "cuda", "cuda:N", "mps"):
        assert form in actions["--device"].help
    assert actions["--dtype"].choices == ["auto", "fp32", "bf16", "fp16"]
    assert "hnsw:m=32:ef=256" in actions["--index"].help and "exact (default)" in actions["--index"].help


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"embedbench {importlib.metadata.version('embedbench')}\n"


@pytest.mark.parametrize(
    "argv, verbosity",
    [
        (["list", "models"], DEFAULT),
        (["-q", "list", "models"], QUIET),
        (["list", "models", "-q"], QUIET),
        (["--verbose", "eval"], VERBOSE),
        (["eval", "-v"], VERBOSE),
        (["cache", "info", "--quiet"], QUIET),
        (["-v", "gate", "--baseline", "a", "--candidate", "b"], VERBOSE),
        (["gate", "--baseline", "a", "--candidate", "b", "-q"], QUIET),
    ],
)
def test_verbosity_is_accepted_before_and_after_the_subcommand(argv, verbosity):
    assert build_parser().parse_args(argv).verbosity == verbosity


def test_verbose_and_quiet_together_are_one_line_and_exit_2(capsys):
    assert main(["-v", "-q", "list", "models"]) == 2
    err = capsys.readouterr().err
    assert "not allowed with argument" in err and len(err.strip().splitlines()) == 1


def test_help_imports_no_engine_gate_or_numerical_library():
    code = ("import sys\nfrom embedbench.cli.main import build_parser\nbuild_parser().format_help()\n"
            "heavy = ('numpy', 'pandas', 'torch', 'transformers', 'pydantic', 'tqdm', 'embedbench.engine',"
            " 'embedbench.gate', 'embedbench.results')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
