"""One session's tools as LangChain tools (``pip install smartkeys[langchain]``; ``langchain-core`` major 1).

:func:`langchain_tools` turns each tool of a :class:`~smartkeys.toolbox.SessionToolbox` into a
``langchain_core.tools.StructuredTool`` with the same name, description and JSON-schema arguments, so any
LangChain or LangGraph agent can bind them (``model.bind_tools(tools)``) or run them
(``tool.invoke({...})``). A tool returns the toolbox's JSON-ready dict, in the CLI's JSON model (amounts as
decimal strings in base units with ``*_text`` twins; see :mod:`smartkeys.toolbox`).

A refusal (the session's rules, the chain, a bad argument) raises :class:`SessionToolRefusal`, a
``ToolException`` that carries the typed error (``.error``) and its JSON (``.payload``:
``{"error": "TokenSpendCapExceeded", "message", "fields": {...}}``). The tools handle it the LangChain way:
``invoke`` returns that JSON text instead of raising (a ``ToolMessage`` with ``status="error"`` when invoked
with a tool call), so the model reads why it was refused; nothing was sent. Pass ``handle_errors=False`` to
get the exception instead.

Descriptions are written when the tools are made: they state what was left then. ``session_budget`` reads
the current figures.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from langchain_core.tools import StructuredTool, ToolException
except ImportError as exc:  # pragma: no cover - the test extra installs it
    raise ImportError("smartkeys.langchain_tools needs langchain-core (major version 1): "
                      "pip install 'smartkeys[langchain]'") from exc

from smartkeys.errors import SmartKeysError
from smartkeys.toolbox import SessionToolbox, refusal

__all__ = ["SessionToolRefusal", "langchain_tools"]


class SessionToolRefusal(ToolException):
    """A refused session tool call: ``.error`` (the :class:`~smartkeys.errors.SmartKeysError`) and ``.payload``
    (its JSON-ready form, see :func:`smartkeys.toolbox.refusal`); the message is that JSON."""

    def __init__(self, error: SmartKeysError) -> None:
        self.error = error
        self.payload = refusal(error)
        super().__init__(json.dumps(self.payload))


def langchain_tools(toolbox: SessionToolbox, *, handle_errors: bool = True) -> list[Any]:
    """``StructuredTool`` objects for every tool of ``toolbox`` (permitted calls, then the read-only tools).

    ``handle_errors`` (default True): a refusal is returned to the caller as its JSON text; with False,
    :class:`SessionToolRefusal` is raised.
    """

    def make(name: str) -> Any:
        def run(**arguments: Any) -> dict[str, Any]:
            try:
                return toolbox.call(name, arguments)
            except SmartKeysError as exc:
                raise SessionToolRefusal(exc) from exc

        return run

    out = []
    for spec in toolbox.definitions():
        out.append(StructuredTool.from_function(
            func=make(spec.name), name=spec.name, description=spec.description, args_schema=spec.input_schema,
            infer_schema=False, handle_tool_error=handle_errors,
            metadata={"smartkeys_read_only": spec.read_only},
        ))
    return out
