"""``smartkeys mcp``: serve one session's tools to an MCP client over stdio (see :mod:`smartkeys.mcp_server`)."""

from __future__ import annotations

from typing import Any

from smartkeys.cli._context import EXIT_OK, PASSWORD_ENV, SESSION_KEY_ENV, CommandError, Context


def toolbox_for(ctx: Context):
    """The :class:`~smartkeys.toolbox.SessionToolbox` of the session the agent options name."""
    from smartkeys.account import SessionAgent
    from smartkeys.cli._commands import _agent_prepare, _pick_session, journal_for, outbox_for
    from smartkeys.toolbox import SessionToolbox

    if ctx.args.key and not (getattr(ctx.args, "password_file", None) or ctx.env.get(PASSWORD_ENV)):
        raise CommandError("the MCP server talks over stdin, so it cannot prompt for the session keystore's password",
                           hint=f"pass --password-file FILE or set {PASSWORD_ENV}, or give the key in {SESSION_KEY_ENV}")
    account, model, via, key, w3 = _agent_prepare(ctx)
    policy = _pick_session(ctx, w3, account, key, model)
    agent = SessionAgent(w3, account, key, policy, chain_id=ctx.config.chain_id.value, journal=journal_for(ctx),
                         outbox=outbox_for(ctx))
    bundler: Any = None
    if via == "user-op":
        if ctx.config.bundler_url.value:
            from smartkeys.bundler import BundlerClient

            bundler = BundlerClient(ctx.config.bundler_url.value, expected_chain_id=agent.chain_id)
        else:
            bundler = key.account  # self-bundled: the session key submits handleOps and is refunded by the EntryPoint
    names: dict[str, str] = {}
    tokens: dict[str, tuple[str, int]] = {}
    if model is not None:  # the policy file's names for contracts, tokens and the address book's recipients
        names = model.address_names()
        tokens = {t.address: (name, t.decimals) for name, t in model.tokens.items()}
        agent.name_addresses(names)
    return SessionToolbox(agent, via="user_op" if via == "user-op" else "direct", bundler=bundler,
                          names=names, tokens=tokens)


def cmd_mcp(ctx: Context) -> tuple[int, Any]:
    from smartkeys.mcp_server import serve_stdio

    toolbox = toolbox_for(ctx)
    policy = toolbox.agent.policy
    tools = ", ".join(spec.name for spec in toolbox.definitions(with_state=False))
    ctx.ui.info(f"serving session 0x{policy.session_id.hex()} of {toolbox.agent.account} over MCP (stdio), "
                f"via {toolbox.via.replace('_', ' ')}: {tools}")
    serve_stdio(toolbox)
    return EXIT_OK, None  # no document: the protocol used stdout
