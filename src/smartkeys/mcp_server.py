"""An MCP server for one session: its permitted calls and read-only session tools (``pip install smartkeys[mcp]``).

:func:`build_server` wraps a :class:`~smartkeys.toolbox.SessionToolbox` in an MCP (Model Context Protocol)
low-level ``mcp.server.Server``; :func:`serve_stdio` serves it over stdin/stdout, which is what
``smartkeys mcp`` runs. The tools are the toolbox's: one per permitted (contract, function) plus
``session_budget``, ``session_time_left`` and ``session_status`` (annotated read-only).

A tool call's result is the toolbox's JSON result, as text and as ``structuredContent``, in the CLI's JSON
model (amounts as decimal strings in base units with ``*_text`` twins; see :mod:`smartkeys.toolbox`). A refusal (the
session's rules, the chain, or a bad argument) is a tool error (``isError: true``) whose content is
:func:`smartkeys.toolbox.refusal`'s JSON: ``{"error": "TokenSpendCapExceeded", "message": ..., "fields":
{"spent": ..., "requested": ..., "cap": ...}}``; nothing was sent and the server keeps serving.

Tool calls run one at a time in a worker thread (web3 calls block, and the embedded chain is not thread-safe).
Uses the ``mcp`` package, major version 2 (its low-level server API with ``on_list_tools``/``on_call_tool``).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from smartkeys.errors import SmartKeysError
from smartkeys.toolbox import SessionToolbox, refusal

__all__ = ["build_server", "serve_stdio"]

_log = logging.getLogger(__name__)


def _require_mcp() -> Any:
    try:
        import mcp.server
    except ImportError:  # pragma: no cover - the test extra installs it
        from smartkeys.errors import InvalidInputError

        raise InvalidInputError("mcp", "not installed", "the mcp package (major version 2)",
                                "pip install 'smartkeys[mcp]'") from None
    return mcp.server


def build_server(toolbox: SessionToolbox, *, name: str = "smartkeys", instructions: str | None = None) -> Any:
    """An ``mcp.server.Server`` serving ``toolbox``'s tools (see the module docstring for results and errors).

    ``tools/list`` re-reads the session's counters, so the descriptions say what is left at that moment.
    Raises :class:`~smartkeys.errors.InvalidInputError` if the ``mcp`` package is missing.
    """
    server_module = _require_mcp()
    import anyio.to_thread
    import mcp_types as types

    from smartkeys import __version__

    lock = threading.Lock()  # one tool call at a time: one nonce lane, and py-evm is not thread-safe

    def locked(fn: Any, *args: Any) -> Any:
        with lock:
            return fn(*args)

    async def on_list_tools(ctx: Any, params: Any) -> Any:
        specs = await anyio.to_thread.run_sync(locked, toolbox.definitions)
        return types.ListToolsResult(tools=[
            types.Tool(
                name=s.name, description=s.description, input_schema=s.input_schema,
                annotations=types.ToolAnnotations(read_only_hint=s.read_only, destructive_hint=not s.read_only,
                                                  idempotent_hint=s.read_only, open_world_hint=not s.read_only),
            )
            for s in specs
        ])

    async def on_call_tool(ctx: Any, params: Any) -> Any:
        try:
            result = await anyio.to_thread.run_sync(locked, toolbox.call, params.name, params.arguments or {})
        except SmartKeysError as exc:
            payload = refusal(exc)
            return types.CallToolResult(content=[types.TextContent(text=json.dumps(payload))],
                                        structured_content=payload, is_error=True)
        except Exception as exc:  # noqa: BLE001 - a node or bundler failure: report it, keep serving
            # The message may hold the RPC URL (and a provider's API key in it): the client gets the type only,
            # the operator the details on stderr.
            _log.warning("tool %s failed: %s: %s", params.name, type(exc).__name__, exc)
            payload = {"error": type(exc).__name__, "message": "the call failed before a result (node or bundler "
                       "error); nothing is known to have been sent; see the server's log"}
            return types.CallToolResult(content=[types.TextContent(text=json.dumps(payload))],
                                        structured_content=payload, is_error=True)
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(result))],
                                    structured_content=result)

    policy = toolbox.agent.policy
    default_instructions = (
        f"Tools of smartkeys session 0x{policy.session_id.hex()} on smart account {toolbox.agent.account}. "
        "Each call tool acts through the account within the session's on-chain limits; a refused call returns "
        "a tool error naming the rule and its values, and nothing is sent. session_budget, session_time_left "
        "and session_status are read-only."
    )
    return server_module.Server(name, version=__version__, instructions=instructions or default_instructions,
                                on_list_tools=on_list_tools, on_call_tool=on_call_tool)


def serve_stdio(toolbox: SessionToolbox, *, name: str = "smartkeys") -> None:
    """Serve ``toolbox`` over stdin/stdout until the client closes the connection (blocks)."""
    import anyio

    server = build_server(toolbox, name=name)

    async def run() -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(run)
