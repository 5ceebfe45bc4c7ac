"""embedbench.data.tools.render_tool: exact text for OpenAI / BFCL style tool definitions."""

from __future__ import annotations

import copy

import pytest

from embedbench.data.tools import render_tool
from embedbench.errors import EmbedbenchError

TOOL = {
    "name": "math.hypot",
    "description": "Calculate the Euclidean norm.\n",
    "parameters": {
        "type": "dict",
        "properties": {
            "x": {"type": "integer", "description": "The x-coordinate."},
            "y": {"type": "integer", "description": "The   y-coordinate,\n  second."},
            "z": {"type": "integer", "description": "Optional z.", "default": 0},
        },
        "required": ["x", "y"],
    },
}


def test_render_bfcl_tool() -> None:
    assert render_tool(TOOL) == (
        "math.hypot\n"
        "Calculate the Euclidean norm.\n"
        "x (integer, required): The x-coordinate.\n"
        "y (integer, required): The y-coordinate, second.\n"
        "z (integer, optional): Optional z."
    )


def test_openai_wrapper_renders_the_same() -> None:
    assert render_tool({"type": "function", "function": TOOL}) == render_tool(TOOL)


def test_deterministic_and_pure() -> None:
    before = copy.deepcopy(TOOL)
    assert render_tool(TOOL) == render_tool(copy.deepcopy(TOOL))
    assert TOOL == before


def test_nested_missing_and_list_types() -> None:
    tool = {
        "name": "book",
        "parameters": {
            "type": "object",
            "properties": {
                "who": {"type": "object", "description": "Guest.", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                "when": {"type": ["string", "null"]},
                "misc": {},
            },
            "required": ["who"],
        },
    }
    assert render_tool(tool) == (
        "book\n"
        "who (object, required): Guest.\n"
        "who.name (string, required)\n"
        "when (string|null, optional)\n"
        "misc (any, optional)"
    )


def test_no_parameters() -> None:
    assert render_tool({"name": "ping", "description": "Ping.", "parameters": {"type": "dict", "properties": {}}}) == "ping\nPing."
    assert render_tool({"name": "ping"}) == "ping"


@pytest.mark.parametrize("bad", [{"description": "x"}, {"name": ""}, {"name": 3}, ["name"]])
def test_needs_a_name(bad: object) -> None:
    with pytest.raises(EmbedbenchError):
        render_tool(bad)  # type: ignore[arg-type]
