"""Render a tool (function) definition as the text a tool-retrieval corpus encodes.

Accepts the OpenAI / BFCL shape ``{"name", "description", "parameters": JSON schema}``,
also wrapped as ``{"type": "function", "function": {...}}``. The output is::

    <name>
    <description>
    <param> (<type>, required|optional): <param description>
    ...

Parameters come in schema order, one per line (their descriptions have whitespace collapsed
so each stays on one line); members of an object parameter follow it as ``parent.child``.
A missing description drops that line / the ``: ...`` part; a missing type reads ``any``;
a type list reads ``a|b``. Enums and defaults are not rendered. The same dict always gives
the same text (shared by the BFCL loader and, later, ToolRet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from embedbench.errors import EmbedbenchError

__all__ = ["render_tool"]


def _type_name(schema: Mapping[str, Any]) -> str:
    t = schema.get("type")
    if isinstance(t, str) and t.strip():
        return t.strip()
    if isinstance(t, list) and t:
        return "|".join(str(x) for x in t)
    return "any"


def _param_lines(props: Mapping[str, Any], required: object, prefix: str) -> list[str]:
    req = set(required) if isinstance(required, (list, tuple)) else set()
    lines: list[str] = []
    for pname, schema in props.items():
        schema = schema if isinstance(schema, Mapping) else {}
        head = f"{prefix}{pname} ({_type_name(schema)}, {'required' if pname in req else 'optional'})"
        desc = schema.get("description")
        desc = " ".join(desc.split()) if isinstance(desc, str) else ""
        lines.append(f"{head}: {desc}" if desc else head)
        sub = schema.get("properties")
        if isinstance(sub, Mapping) and sub:
            lines.extend(_param_lines(sub, schema.get("required"), f"{prefix}{pname}."))
    return lines


def render_tool(tool: Mapping[str, Any]) -> str:
    """The tool as text: name, description, then one line per parameter."""
    if not isinstance(tool, Mapping):
        raise EmbedbenchError(f"a tool definition must be a JSON object, got {type(tool).__name__}")
    if "name" not in tool and isinstance(tool.get("function"), Mapping):
        tool = tool["function"]
    name = tool.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EmbedbenchError(f"tool definition has no name: {str(dict(tool))[:80]}")
    lines = [name.strip()]
    desc = tool.get("description")
    if isinstance(desc, str) and desc.strip():
        lines.append(desc.strip())
    params = tool.get("parameters")
    if isinstance(params, Mapping):
        props = params.get("properties")
        if isinstance(props, Mapping):
            lines.extend(_param_lines(props, params.get("required"), ""))
    return "\n".join(lines)
