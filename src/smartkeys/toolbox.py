"""One session's tools for agent frameworks: the permitted calls plus read-only session tools.

:class:`SessionToolbox` is the seam between a :class:`~smartkeys.account.SessionAgent` and whatever hands tools
to a model. The MCP server (:mod:`smartkeys.mcp_server`) and the LangChain tools
(:mod:`smartkeys.langchain_tools`) are thin adapters over it, so both expose the same tools with the same
results and the same refusals.

Tools
-----
- one tool per permitted (contract, function) of the policy, as :func:`smartkeys.tools.tool_definitions` makes
  them (descriptions state the limits and, when listed, what is left);
- ``session_budget``: spent, cap and remaining per asset (``native``, ``gas``, each capped token, with its symbol
  and decimals when known), and the current period's spend, remainder and reset;
- ``session_time_left``: the window ``(valid_after, valid_until]`` (unix seconds, EntryPoint v0.8 rule) and the
  seconds left at the latest block;
- ``session_status``: the session as ``smartkeys status --json`` gives it (status, window, uses, budgets), plus
  the account and whether a use would be accepted now.

Results are JSON-ready dicts in the model of the CLI's JSON (README "JSON output"): amounts are **decimal
strings in base units** (wei for native value and gas, the token's base units), each with a ``*_text`` twin in
the policy's human units (``"remaining": "7500000", "remaining_text": "7.5 USDC"``); times are unix seconds with
``*_iso`` UTC text; counts and gas units are integers; bytes are 0x-hex. A refusal -- the preflight or the chain
refusing, or a bad argument from the model -- raises a :class:`~smartkeys.errors.SmartKeysError`;
:func:`refusal` turns it into ``{"error": <type>, "message", "fields": {...}}`` for a tool error (the fields'
integers as decimal strings too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smartkeys.errors import InvalidInputError, SmartKeysError
from smartkeys.safe_files import loads_bounded

__all__ = ["READ_ONLY_TOOLS", "SessionToolbox", "ToolSpec", "refusal"]

#: Names of the read-only tools every toolbox has (they take no arguments).
READ_ONLY_TOOLS: tuple[str, ...] = ("session_budget", "session_status", "session_time_left")

_NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

_READ_ONLY_DESCRIPTIONS = {
    "session_budget": "What this session key may still spend: for each asset (native coin, gas, each capped "
                      "token with its symbol and decimals), the amount spent, the cap, what remains, and what "
                      "remains in the current period, as decimal strings in base units (wei, token base units) "
                      "each with a *_text twin in human units (e.g. remaining_text: '7.5 USDC'). Read-only.",
    "session_status": "This session's status: session id, smart account, session key address, status (live, "
                      "expired, not yet, used up, revoked), its validity window and time left, uses made and "
                      "left, its budgets (as session_budget gives them), and usable (a use would be accepted "
                      "now), and under a rate limit when the next use is allowed (rate_limits). Read-only.",
    "session_time_left": "The session's validity window (unix seconds, valid after valid_after and until "
                         "valid_until inclusive), the latest block time, and the seconds left. Read-only.",
}


@dataclass(frozen=True)
class ToolSpec:
    """One tool: ``name``, ``description``, ``input_schema`` (JSON schema of the arguments object), and
    ``read_only`` (True for the session tools, which send nothing)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool = False


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def refusal(exc: BaseException) -> dict[str, Any]:
    """A refusal as a JSON-ready dict: ``error`` (the exception's type, e.g. ``"TokenSpendCapExceeded"``),
    ``message``, ``fields`` (a contract error's values by ABI name: ``spent``, ``requested``, ``cap``, ...) and,
    for bad arguments, ``field``, ``expected`` and ``hint``."""
    from smartkeys.journal import _jsonable as _field_json

    out: dict[str, Any] = {"error": type(exc).__name__, "message": " ".join(str(exc).split())}
    fields = getattr(exc, "args", None)
    if isinstance(fields, Mapping):  # a decoded contract error: integers as decimal strings, as the CLI gives them
        out["fields"] = _field_json(fields)
    code = getattr(exc, "code", None)
    if isinstance(code, str):  # an EntryPoint AAxx code
        out["code"] = code
    if isinstance(exc, InvalidInputError):
        out.update(field=exc.field, expected=exc.expected, hint=exc.hint)
    inner = getattr(exc, "revert", None)
    if isinstance(inner, SmartKeysError):  # a mined use that failed: the decoded revert
        out["revert"] = refusal(inner)
    return out


class SessionToolbox:
    """The tools of one session, bound to a :class:`~smartkeys.account.SessionAgent`.

    ``via`` is ``"user_op"`` (with ``bundler``: a funded ``LocalAccount`` that self-bundles, or a
    :class:`~smartkeys.bundler.BundlerClient`) or ``"direct"`` (the session key sends and pays). ``names``,
    ``abis`` and ``tokens`` are those of :func:`smartkeys.tools.tool_definitions`; capped tokens missing from
    ``tokens`` get their ``symbol()``/``decimals()`` read from chain when the token answers.

    Raises :class:`InvalidInputError` if a permitted call's tool would take a read-only tool's name.
    """

    def __init__(
        self,
        agent: Any,
        *,
        via: str = "user_op",
        bundler: Any = None,
        names: Mapping[str, str] | None = None,
        abis: Mapping[str, Any] | None = None,
        tokens: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        from smartkeys.encoding import checked_address

        if via not in ("user_op", "direct"):
            raise InvalidInputError("via", via, "'user_op' or 'direct'")
        self.agent = agent
        self.via = via
        self.bundler = bundler
        self.names = dict(names or {})
        self.abis = dict(abis or {})
        known = {checked_address(k, "tokens"): (str(v[0]), int(v[1])) for k, v in (tokens or {}).items()}
        for cap in agent.policy.token_caps:
            if cap.token not in known:
                info = _read_token(agent.w3, cap.token)
                if info is not None:
                    known[cap.token] = info
        self.tokens = known
        clash = set(READ_ONLY_TOOLS) & {t["name"] for t in self._call_tools(None)}
        if clash:
            name = sorted(clash)[0]
            raise InvalidInputError("names", name, "contract names that do not make a read-only tool's name",
                                    f"rename the contract whose tool is called {name!r}")

    # ------------------------------------------------------------------ definitions

    def _call_tools(self, state: Any) -> list[dict[str, Any]]:
        from smartkeys.tools import tool_definitions

        # with the counters, the chain's time too: periodic caps and rate limits then say when they allow more
        now = int(self.agent.w3.eth.get_block("latest")["timestamp"]) if state is not None else None
        return tool_definitions(self.agent.policy, names=self.names, abis=self.abis, tokens=self.tokens,
                                state=state, format="anthropic", now=now)

    def definitions(self, *, with_state: bool = True) -> list[ToolSpec]:
        """Every tool: the permitted calls first (their descriptions say what is left when ``with_state``,
        which reads the session's counters from chain), then the read-only session tools."""
        state = self.agent.session_state() if with_state else None
        specs = [ToolSpec(t["name"], t["description"], t["input_schema"]) for t in self._call_tools(state)]
        specs += [ToolSpec(name, _READ_ONLY_DESCRIPTIONS[name], dict(_NO_ARGS), True) for name in READ_ONLY_TOOLS]
        return specs

    # ------------------------------------------------------------------ calls

    def call(self, name: str, arguments: Mapping[str, Any] | str | None = None) -> dict[str, Any]:
        """Run tool ``name`` with ``arguments`` (a dict, or the JSON text a model produced) and return its
        JSON-ready result.

        A permitted call is preflighted against the session's on-chain counters, then sent ``via`` the
        configured path; the result has ``success``, ``path``, ``transaction_hash``, ``user_op_hash``,
        ``gas_used`` (gas units), ``charges`` (``native``, ``gas``: decimal strings in wei with ``*_text``;
        ``tokens``: ``{address: {"amount", "amount_text"}}``; ``uses``) and ``session``: what is left after the
        use, as :meth:`session_status` gives it (the shape of ``smartkeys send --json``). Raises :class:`SmartKeysError` on a refusal (nothing sent) or a bad
        argument (naming it), and ``TransactionFailedError`` if the mined use failed.
        """
        from smartkeys.account import amount_fields
        from smartkeys.tools import call_from_tool

        if name in READ_ONLY_TOOLS:
            if isinstance(arguments, str):
                try:
                    # from the agent framework (a model's output): nesting bounded before parsing (safe_files)
                    arguments = loads_bounded(arguments, max_depth=32, max_bytes=1 << 20) if arguments.strip() else {}
                except ValueError:
                    raise InvalidInputError("arguments", arguments, "a JSON object", f"call {name} with {{}}") from None
            if arguments is not None and not isinstance(arguments, Mapping):
                raise InvalidInputError("arguments", arguments, "a JSON object", f"call {name} with {{}}")
            if arguments:
                extra = sorted(arguments)[0]
                raise InvalidInputError(f"arguments.{extra}", arguments[extra], f"no arguments for {name}",
                                        f"call {name} with {{}}")
            return getattr(self, name)()
        call = call_from_tool(name, arguments if arguments is not None else {}, self.agent.policy,
                              names=self.names, abis=self.abis, tokens=self.tokens)
        receipt = self.agent.batch([call], via=self.via, bundler=self.bundler)
        charges = receipt.charges
        tokens = dict(self.tokens)
        for token in charges.tokens:
            if token not in tokens:
                info = _read_token(self.agent.w3, token)
                if info is not None:
                    tokens[token] = info
        return {
            "success": receipt.success,
            "path": receipt.path,
            "transaction_hash": _jsonable(receipt.transaction_hash),
            "user_op_hash": _jsonable(receipt.user_op_hash),
            "gas_used": receipt.gas_used,
            "charges": {**amount_fields("native", "native", charges.native),
                        **amount_fields("gas", "gas", charges.gas),
                        "tokens": {t: amount_fields("amount", t, v, tokens) for t, v in charges.tokens.items()},
                        "uses": charges.uses},
            "session": self.session_status(),
        }

    # ------------------------------------------------------------------ read-only tools

    def _report(self) -> Any:
        from smartkeys.account import build_session_report

        now = int(self.agent.w3.eth.get_block("latest")["timestamp"])
        return build_session_report(self.agent.policy, self.agent.session_state(), now)

    def _with_decimals(self, assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The status assets plus ``decimals`` (18 for native and gas, the token's, None when unknown), so a
        model can turn human amounts into the base units the call tools take."""
        for a in assets:
            a["decimals"] = 18 if a["asset"] in ("native", "gas") else self.tokens.get(a["asset"], (None, None))[1]
        return assets

    def session_budget(self) -> dict[str, Any]:
        """``{"session_id", "as_of", "as_of_iso", "assets": [...]}``: per asset the entry of ``smartkeys status
        --json`` (``asset``, ``symbol``, ``spent``, ``cap``, ``remaining`` as decimal strings in base units, each
        with its ``*_text``; ``cap`` 0 means nothing may be spent; ``period`` in seconds, and for a periodic cap
        ``period_cap``, ``period_spent``, ``period_remaining`` with their ``*_text``, ``period_resets_at`` and
        ``period_rule``), plus ``decimals`` (18 for native and gas, the token's, or None when unknown)."""
        from smartkeys.timefmt import utc_text

        report = self._report()
        assets = self._with_decimals(report.to_dict(self.tokens)["assets"])
        return {"session_id": _jsonable(report.session_id), "as_of": report.as_of,
                "as_of_iso": utc_text(report.as_of), "assets": assets}

    def session_time_left(self) -> dict[str, Any]:
        """``valid_after`` (exclusive), ``valid_until`` (inclusive), ``now`` (latest block time), each with its
        ``*_iso`` UTC text, ``seconds_left`` (0 once expired) with ``time_left_text``, ``started`` and ``expired``
        as the next block would see them."""
        from smartkeys.refusals import duration_text
        from smartkeys.timefmt import utc_text

        policy = self.agent.policy
        now = int(self.agent.w3.eth.get_block("latest")["timestamp"])
        next_block = now + 1
        left = max(policy.valid_until - now, 0)
        return {
            "valid_after": policy.valid_after, "valid_after_iso": utc_text(policy.valid_after),
            "valid_until": policy.valid_until, "valid_until_iso": utc_text(policy.valid_until),
            "now": now, "now_iso": utc_text(now), "seconds_left": left, "time_left_text": duration_text(left),
            "started": next_block > policy.valid_after, "expired": next_block > policy.valid_until,
        }

    def session_status(self) -> dict[str, Any]:
        """The session as ``smartkeys status --json`` gives it (:meth:`smartkeys.account.SessionReport.to_dict`:
        ``session_id``, ``key``, ``status``, ``live``, ``in_window``, ``valid_after``/``valid_until`` with
        ``*_iso``, ``seconds_left``, ``time_left_text``, ``uses``, ``max_uses`` (0: unlimited), ``uses_left``
        (None: unlimited), ``assets`` as :meth:`session_budget` gives them), plus ``account`` and ``usable``
        (live, in window and uses left) and ``rate_limits`` (None without; else
        :func:`smartkeys.policy_view.rate_view`: ``next_use_at`` and its text)."""
        report = self._report()
        uses_left = report.uses_remaining
        doc = report.to_dict(self.tokens)
        doc["assets"] = self._with_decimals(doc["assets"])
        doc["account"] = self.agent.account
        doc["usable"] = bool(report.live and report.in_window and (uses_left is None or uses_left > 0))
        from smartkeys.policy_view import rate_view

        doc["rate_limits"] = rate_view(self.agent.policy, report.rate_ledger, report.as_of + 1)
        return doc


def _read_token(w3: Any, token: str) -> tuple[str, int] | None:
    """``(symbol, decimals)`` read from an ERC-20, or None if it does not answer both."""
    abi = [{"type": "function", "name": "decimals", "inputs": [], "outputs": [{"type": "uint8"}],
            "stateMutability": "view"},
           {"type": "function", "name": "symbol", "inputs": [], "outputs": [{"type": "string"}],
            "stateMutability": "view"}]
    contract = w3.eth.contract(address=token, abi=abi)
    try:
        return str(contract.functions.symbol().call()), int(contract.functions.decimals().call())
    except Exception:  # noqa: BLE001 - optional metadata: amounts stay in base units without it
        return None

