"""The ``smartkeys`` command.

``main(argv, *, web3=None, stdin=None, stdout=None, stderr=None, env=None)`` runs one command and returns its
exit code; tests inject a ``Web3`` (an embedded chain cannot be shared between processes) and streams.
Configuration is resolved by :func:`smartkeys.config.resolve_config` (flags > environment > smartkeys.toml >
defaults). ``--json`` prints one JSON document on stdout (``watch --json``: one JSON object per line); human
messages, prompts, progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from smartkeys import __version__
from smartkeys.cli._context import (
    EXIT_ABORTED,
    EXIT_ERROR,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    CommandError,
    Context,
    exit_code_for,
)
from smartkeys.cli._ui import UI, Aborted

__all__ = [
    "EXIT_ABORTED",
    "EXIT_ERROR",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

#: Overall deadline of a command (seconds) unless --timeout says otherwise; `node` and `watch` run until stopped.
DEFAULT_TIMEOUT = 120.0
_NO_DEADLINE = ("node", "watch")

EPILOG = """\
configuration (first found wins):
  flags  >  environment (SMARTKEYS_RPC_URL, SMARTKEYS_CHAIN_ID, SMARTKEYS_HOME, SMARTKEYS_KEYS_DIR,
  SMARTKEYS_KEYSTORE, SMARTKEYS_ACCOUNT, SMARTKEYS_BUNDLER_URL)  >  smartkeys.toml in the current
  directory (or --config FILE; "${VAR}" in it reads the environment)  >  ETH_RPC_URL (the RPC URL
  only)  >  defaults.  `smartkeys status` shows each value and its source.
  Native amounts carry a unit ('0.1ether', '2 gwei', '1000 wei'): a bare number is refused.
  Passwords: --password-file FILE, else SMARTKEYS_PASSWORD, else a prompt that does not echo.
  Agent keys: --key KEYSTORE, else SMARTKEYS_SESSION_KEY (hex).

exit codes:
  0  ok
  1  unexpected error (run again with --debug for the traceback)
  2  bad input or usage: bad flag, file, address, amount or policy (the message names the field and
     the fix), missing configuration, wrong password, chain id mismatch, a sender without ETH for gas
  3  refused by policy: the session's rules or the contract refused it (nothing was sent, or the
     mined operation reverted)
  4  network or RPC failure: cannot connect, timeout, rate limited, a broken answer, node or bundler
     error; or the outcome of a send is unknown (the message gives its hash: do not send it again,
     run `smartkeys pending --settle`); or another process used the same nonce (retry)
  5  aborted by the user: confirmation declined, Ctrl-C

Errors are one line on stderr ("error: ..."). With --json, stdout also gets
{"ok": false, "error": {"type", "message", "exit_code", ...}}.
"""


class _UsageError(Exception):
    def __init__(self, message: str, usage: str) -> None:
        self.usage = usage
        super().__init__(message)


class _ParserExit(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that writes to the injected streams, raises instead of exiting, and takes no abbreviations
    (``--key`` must never be read as ``--keystore``)."""

    streams: tuple[TextIO, TextIO] = (sys.stdout, sys.stderr)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            out, err = _Parser.streams
            (err if file is sys.stderr else out).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            _Parser.streams[1].write(message)
        raise _ParserExit(status)

    def error(self, message: str) -> Any:
        raise _UsageError(_did_you_mean(message), self.format_usage())


def _did_you_mean(message: str) -> str:
    """argparse's "invalid choice: 'stauts' (choose from ...)" plus the closest choices ("did you mean
    'status'?", as Ape's errors do). difflib ranks by similarity; argparse suggests only from Python 3.14."""
    import difflib
    import re

    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not match:
        return message
    choices = re.findall(r"'([^']*)'", match.group(2)) or [c.strip() for c in match.group(2).split(",")]
    close = difflib.get_close_matches(match.group(1), choices, n=2, cutoff=0.6)
    if not close:
        return message
    return message + "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


_SETTINGS_FLAGS = (
    ("--rpc-url", "URL", "JSON-RPC endpoint (env SMARTKEYS_RPC_URL; ETH_RPC_URL after the file)"),
    ("--chain-id", "ID", "refuse to sign unless the RPC reports this chain id (env SMARTKEYS_CHAIN_ID)"),
    ("--home", "DIR", "smartkeys home directory, default ~/.smartkeys (env SMARTKEYS_HOME)"),
    ("--keys-dir", "DIR", "where `keys` stores keystores, default <home>/keys (env SMARTKEYS_KEYS_DIR)"),
    ("--keystore", "FILE", "the owner key's keystore: a path or a label (env SMARTKEYS_KEYSTORE)"),
    ("--account", "ADDRESS", "the smartkeys account (the owner EOA) (env SMARTKEYS_ACCOUNT)"),
    ("--bundler-url", "URL", "ERC-4337 bundler for user operations (env SMARTKEYS_BUNDLER_URL)"),
    ("--signer-url", "URL", "the owner signs through a remote JSON-RPC signer instead of its keystore: "
                            "http(s)://… (eth_*), clef+http://… or web3signer+http://… (env SMARTKEYS_SIGNER_URL)"),
)


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options accepted before or after the command name (defaults only on the top-level parser, so a
    subcommand never resets a value given before it)."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    if top:
        group = parser.add_argument_group("global options")
    else:  # accepted after the command too, but listed once, in `smartkeys --help` (not in every command's help)
        group = parser.add_argument_group("global options")
        real_add = group.add_argument

        def hidden(*args: Any, **kwargs: Any) -> Any:
            kwargs["help"] = argparse.SUPPRESS
            return real_add(*args, **kwargs)

        group.add_argument = hidden  # type: ignore[method-assign]
    group.add_argument("--json", action="store_true", default=default(False),
                       help="print one JSON document on stdout (and nothing else)")
    group.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks on errors")
    group.add_argument("--config", metavar="FILE", default=default(None),
                       help="project configuration file (default: ./smartkeys.toml if present)")
    group.add_argument("--password-file", metavar="FILE", default=default(None),
                       help="read the keystore password from FILE (or set SMARTKEYS_PASSWORD)")
    group.add_argument("--timeout", metavar="SECONDS", type=float, default=default(None),
                       help=f"overall deadline of the command, default {DEFAULT_TIMEOUT:g} s (not for node/watch); "
                            "past it: exit 4, and a send in flight is reported with its hash")
    for flag, metavar, text in _SETTINGS_FLAGS:
        group.add_argument(flag, metavar=metavar, default=default(None), help=text)


_SUB_EPILOG = ("global options (--json, --debug, --config, --password-file, --timeout, --rpc-url, --chain-id, "
               "--home, --keys-dir, --keystore, --account, --bundler-url, --signer-url) work before or after the command: "
               "see `smartkeys --help`")


def build_parser() -> argparse.ArgumentParser:
    from smartkeys.cli import _commands as c

    parser = _Parser(
        prog="smartkeys",
        description="Scoped, expiring, revocable on-chain keys for AI agents (EIP-7702 + ERC-4337).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"smartkeys {__version__}")
    _add_common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, func: Any, help: str, description: str | None = None, **kw: Any) -> argparse.ArgumentParser:
        kw.setdefault("epilog", _SUB_EPILOG)
        sub = commands.add_parser(name, help=help, description=description or help, **kw)
        _add_common(sub, top=False)
        sub.set_defaults(func=func)
        return sub

    demo = command("demo", c.cmd_demo, "run the whole story on an embedded chain (no node, no network)",
                   "Delegate an EOA, act as its owner, grant an agent a scoped session key, watch the key work "
                   "within its limits and be refused beyond them, then revoke it. Runs in-process.")
    demo.add_argument("--no-color", action="store_true", help="plain output")

    node = command("node", c.cmd_node, "run a local development chain (anvil) with smartkeys deployed")
    node.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    node.add_argument("--port", type=int, default=8545, help="port (default 8545)")
    node.add_argument("--bundler", action="store_true", help="also start a local ERC-4337 bundler (Alto)")
    node.add_argument("--bundler-port", type=int, default=None, metavar="PORT", help="bundler port (default: free)")

    # Listed here for `smartkeys --help`; main() hands `smartkeys deploy ARGS` to smartkeys.deploy.main, which
    # has its own options and exit codes (`smartkeys deploy --help`).
    misplaced = commands.add_parser("deploy", add_help=False,
                                    help="deploy EntryPoint v0.8 (where missing) and SmartKeysAccount at their "
                                         "deterministic addresses (own options and exit codes: `smartkeys deploy "
                                         "--help`)")
    misplaced.set_defaults(func=_deploy_misplaced)  # reached only with options before the word deploy

    keys = commands.add_parser("keys", help="create, list and inspect encrypted keystores",
                               description="Encrypted (scrypt) keystores in the keys directory. Private keys "
                               "are never printed.")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=_Parser, required=True)

    def keys_command(name: str, func: Any, help: str, description: str | None = None) -> argparse.ArgumentParser:
        sub = keys_sub.add_parser(name, help=help, description=description or help, epilog=_SUB_EPILOG)
        _add_common(sub, top=False)
        sub.set_defaults(func=func)
        return sub

    new = keys_command("new", c.cmd_keys_new, "generate a key into a new encrypted keystore (password asked twice)")
    new.add_argument("--label", help="file name in the keys directory (default key-<address prefix>)")
    new.add_argument("--light-kdf", action="store_true",
                     help="weaker, faster scrypt (n=2**14) for throwaway test keys")
    imp = keys_command(
        "import", c.cmd_keys_import,
        "encrypt an existing private key into a new keystore (e.g. a local node's dev account)",
        "Read a hex private key (64 hex digits, 0x optional) and write it to an encrypted keystore, as "
        "`keys new` does. The key is read from a prompt that does not echo, or with --stdin from standard "
        "input, or with --from-env VAR from an environment variable; it is never printed. Refuses a label or an "
        "address that already has a keystore.")
    imp.add_argument("--label", help="file name in the keys directory (default key-<address prefix>)")
    imp.add_argument("--light-kdf", action="store_true",
                     help="weaker, faster scrypt (n=2**14) for throwaway test keys")
    source = imp.add_mutually_exclusive_group()
    source.add_argument("--stdin", action="store_true", help="read the key from standard input (first line)")
    source.add_argument("--from-env", metavar="VAR", help="read the key from environment variable VAR")
    keys_command("list", c.cmd_keys_list, "list keystores: label, address, file")
    show = keys_command("show", c.cmd_keys_show, "show a keystore's address and public details (never the key)")
    show.add_argument("key", metavar="KEY", help="label, path or address")
    show.add_argument("--address", action="store_true",
                      help="print only the address (for scripts: AGENT=$(smartkeys keys show agent --address))")

    delegate = command("delegate", c.cmd_delegate, "delegate the owner EOA to the smartkeys account (EIP-7702)",
                       "Send the EIP-7702 set-code transaction (self-sponsored). Re-delegating revokes sessions "
                       "granted during an earlier delegation unless --keep-sessions.")
    delegate.add_argument("--keep-sessions", action="store_true", help="let sessions from an earlier delegation live again")
    delegate.add_argument("--from-block", type=int, default=None, metavar="N",
                          help="first block to search for earlier grants (default: the account's first transaction "
                               "block; on a node without old state, all sessions are revoked to be safe)")
    undelegate = command("undelegate", c.cmd_undelegate, "clear the owner EOA's code (asks for confirmation)",
                         "Revoke every session (ERC-7779 onRedelegation) unless --keep-sessions, then send the "
                         "EIP-7702 set-code transaction to the zero address.")
    undelegate.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    undelegate.add_argument("--keep-sessions", action="store_true",
                            help="leave sessions granted so far in storage, to live again after a later delegation")

    status = command("status", c.cmd_status,
                     "show the resolved configuration, chain, delegation, session epoch and sessions")
    status.add_argument("--from-block", type=int, default=None, metavar="N", help="first block to search for the account's grants (default: the block of its first transaction, found by binary search; set it on a node without historical state)")
    _names_option(status)

    grant = command("grant", c.cmd_grant, "grant a session key from a policy file (TOML, JSON or YAML)",
                    "Load and check the policy file (every mistake names its field), compile it at the "
                    "latest block time, grant it on-chain and print the session id.")
    grant.add_argument("--policy", required=True, metavar="FILE", help="policy file (.toml, .json, .yaml)")
    grant.add_argument("--dry-run", action="store_true", help="check and compile only; send nothing")

    revoke = command("revoke", c.cmd_revoke, "revoke a session (by id or key address), or all of them",
                     "Revoke one session by its id, every live session of a key address, or --all sessions "
                     "at once (asks for confirmation).")
    revoke.add_argument("target", nargs="?", metavar="SESSION_ID_OR_KEY", help="session id or key address")
    revoke.add_argument("--all", action="store_true", help="revoke every session (moves the session epoch)")
    revoke.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    revoke.add_argument("--from-block", type=int, default=None, metavar="N", help="first block to search for the account's grants (default: the block of its first transaction, found by binary search; set it on a node without historical state)")

    rotate = command("rotate", c.cmd_rotate, "give a live session a new key, keeping its policy and what it spent",
                     "Replace the key of a live session (by id, or by key address if it holds one live session) in "
                     "one transaction: the old key is refused from that block, the new key can spend only what "
                     "was left. Without --new-key a key is generated into a new encrypted keystore (as `keys "
                     "new`). --for also moves the window end (e.g. shorter, after a leak). Every other live (or not "
                     "yet started) session of the old key is rotated to the new key too, one transaction each, so "
                     "the old key is refused everywhere; --only rotates just the named session.")
    rotate.add_argument("target", metavar="SESSION_ID_OR_KEY", help="session id, or the key address")
    rotate.add_argument("--new-key", metavar="KEYSTORE_OR_ADDRESS",
                        help="the new key: an address, or a keystore (path or label); default: generate one")
    rotate.add_argument("--label", help="with a generated key: its keystore's file name in the keys directory")
    rotate.add_argument("--light-kdf", action="store_true", help="weaker, faster scrypt (n=2**14) for test keys")
    rotate.add_argument("--for", dest="for_", metavar="DURATION",
                        help="new window: it ends DURATION after the latest block (e.g. 1h); default: unchanged")
    rotate.add_argument("--only", action="store_true",
                        help="rotate only the named session: the old key keeps its other live sessions (listed)")
    rotate.add_argument("--allow-long-lifetime", action="store_true",
                        help="let --for exceed 400 days (as allow_long_lifetime in a policy file)")
    rotate.add_argument("--from-block", type=int, default=None, metavar="N", help="first block to search for the account's grants (default: the block of its first transaction, found by binary search; set it on a node without historical state)")

    renew = command("renew", c.cmd_renew, "extend or shorten a live session's window, or lower its caps",
                    "Renew a live session in one transaction, keeping its key, scope and what it spent: --for "
                    "sets the window end DURATION after the latest block (longer or shorter: `--for 1h` is "
                    "'revoke, then re-issue with a shorter lifetime' in one command); the cap options can only "
                    "lower a limit (a raise is refused naming the field). The old session id is revoked.")
    renew.add_argument("target", metavar="SESSION_ID_OR_KEY", help="session id, or the key address")
    renew.add_argument("--for", dest="for_", metavar="DURATION", help="the window ends DURATION from now (24h, 7d)")
    renew.add_argument("--allow-long-lifetime", action="store_true",
                       help="let --for exceed 400 days (as allow_long_lifetime in a policy file)")
    renew.add_argument("--max-uses", type=int, metavar="N", help="lower the use limit")
    renew.add_argument("--native-total", metavar="AMOUNT", help="lower the native cap ('0.5 ether')")
    renew.add_argument("--gas-budget", metavar="AMOUNT", help="lower the gas budget ('0.01 ether')")
    renew.add_argument("--token-cap", action="append", metavar="TOKEN=AMOUNT",
                       help="lower a token's cap, in token units (repeatable)")
    renew.add_argument("--from-block", type=int, default=None, metavar="N", help="first block to search for the account's grants (default: the block of its first transaction, found by binary search; set it on a node without historical state)")

    def agent_options(sub: argparse.ArgumentParser) -> None:
        group = sub.add_argument_group("session")
        group.add_argument("--key", metavar="KEYSTORE",
                           help="the session key's keystore (path, label or address); else SMARTKEYS_SESSION_KEY")
        group.add_argument("--session", metavar="ID", help="session id (default: the key's newest live session)")
        group.add_argument("--policy", metavar="FILE",
                           help="the key's policy file (checks the key; names tokens for `send --token NAME`)")
        group.add_argument("--intent", metavar="NAME",
                           help="name this payment (an idempotency key): a named intent that landed is never sent "
                                "again (exit 3); unnamed, a re-run after a crash or an unknown outcome is settled "
                                "first and refused if it landed (for 24 h once `pending --settle` found it landed)")
        group.add_argument("--repeat", action="store_true",
                           help="pay the same unnamed calls once more on purpose, even though `pending --settle` "
                                "found an earlier attempt of them landed (else refused, exit 3)")
        group.add_argument("--via", choices=("direct", "user-op"),
                           help="direct transaction from the key, or user operation (default: user-op when a "
                                "bundler URL is set, else direct)")
        group.add_argument("--from-block", type=int, default=None, metavar="N", help="first block to search for the account's grants (default: the block of its first transaction, found by binary search; set it on a node without historical state)")

    call = command("call", c.cmd_call, "act as an agent: one call through the account with a session key",
                   "Preflight the call against the session's on-chain state (a refusal exits 3 and sends "
                   "nothing), then send it as a direct transaction or a user operation.")
    call.add_argument("target", metavar="TARGET", help="contract address")
    call.add_argument("function", nargs="?", metavar="FUNCTION", help="signature, e.g. 'transfer(address,uint256)'")
    call.add_argument("args", nargs="*", metavar="ARG", help="arguments (integers in base units; arrays as JSON)")
    call.add_argument("--data", metavar="HEX", help="raw calldata instead of FUNCTION ARGS")
    call.add_argument("--value", metavar="AMOUNT", help="native value with its unit: '0.1 ether', '2 gwei', '1000 wei' (a bare number is refused)")
    agent_options(call)

    send = command("send", c.cmd_send, "act as an agent: send native coin or an ERC-20, in human units",
                   "Send AMOUNT to TO: native coin with its unit ('0.1ether', '5 gwei'; a bare number is refused), "
                   "or with --token an ERC-20 amount in token units ('2.5' with its decimals read from the chain "
                   "or the policy file).")
    send.add_argument("to", metavar="TO", help="recipient address")
    send.add_argument("amount", metavar="AMOUNT", help="amount in human units: '0.1ether', or '2.5' with --token")
    send.add_argument("--token", metavar="TOKEN", help="ERC-20 address, or a token name of --policy FILE")
    agent_options(send)

    pending = command("pending", c.cmd_pending, "show (and settle) sends whose outcome was never reported",
                      "List the intents in the outbox (<home>/outbox.jsonl) that were signed and maybe sent but "
                      "whose result was never reported: a crash, a timeout, a network fault. --settle looks each "
                      "one up by its hash and nonce lane and re-sends the same signed operation if its nonce is "
                      "still free (it can land once at most). Exit 4 while some remain unknown.")
    pending.add_argument("--settle", action="store_true", help="look each one up (and re-send it unchanged if free)")
    pending.add_argument("--all", action="store_true", help="list every intent of the outbox, settled ones too")
    pending.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                         help="with --settle, how long to wait for a re-sent one to land (default 10)")

    from smartkeys.cli import _policy

    _policy.add_policy_command(commands, lambda sub: _add_common(sub, top=False), _SUB_EPILOG)

    from smartkeys.cli import _mcp

    mcp = command("mcp", _mcp.cmd_mcp, "serve a session's permitted calls as MCP tools (stdio)",
                  "Serve one session to an MCP client over stdin/stdout: a tool per permitted call, plus read-only "
                  "session_budget, session_time_left and session_status. A refusal is a tool error naming the "
                  "rule and its values; nothing is sent and the server keeps serving. Needs smartkeys[mcp].")
    agent_options(mcp)

    audit = command("audit", c.cmd_audit, "report what the account's session keys did and were refused",
                    "Rebuild every session's activity from the chain's logs and the local refusal journal; "
                    "flag unusual use.")
    audit.add_argument("--from-block", type=int, default=None, metavar="N",
                       help="first block to read (default: the block of the account's first transaction)")
    audit.add_argument("--to-block", default="latest", metavar="N", help="last block (default latest)")
    audit.add_argument("--csv", metavar="FILE", help="also write the entries as CSV")
    audit.add_argument("--plot", metavar="FILE.png", help="also plot spending over time (needs matplotlib)")
    _names_option(audit)
    _threshold_options(audit)

    watch = command("watch", c.cmd_watch, "follow the account's session activity live (Ctrl-C to stop)")
    watch.add_argument("--from-block", type=int, default=None, metavar="N", help="start here (default: next block)")
    watch.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="poll interval (default 1)")
    watch.add_argument("--max-events", type=int, default=None, metavar="N", help="stop after N events")
    _threshold_options(watch)
    return parser


def _names_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--policy", action="append", default=[], metavar="FILE", dest="name_policies",
                     help="a policy file whose address_book, contracts and tokens name the addresses of the "
                          "sessions' argument rules (recipient lists); repeatable")


def _threshold_options(sub: argparse.ArgumentParser) -> None:
    group = sub.add_argument_group("thresholds (flag unusual activity)")
    group.add_argument("--budget-warn", type=float, metavar="FRACTION",
                       help="flag a budget once this fraction of its cap is used (default 0.8)")
    group.add_argument("--expiry-warn", metavar="DURATION", help="flag a window ending within DURATION (default 24h)")
    group.add_argument("--burst-factor", type=float, metavar="X",
                       help="flag a use at X times the key's median rate or faster (default 5)")
    group.add_argument("--burst-min-uses", type=int, metavar="N", help="uses before bursts are flagged (default 5)")
    group.add_argument("--edge-fraction", type=float, metavar="FRACTION",
                       help="flag one use taking this fraction of a cap or of what is left (default 0.9)")


def _deploy(argv: list[str], out: TextIO, err: TextIO) -> int:
    """``smartkeys deploy ARGS``: :func:`smartkeys.deploy.main`, with its own options and exit codes."""
    import contextlib

    from smartkeys.deploy import main as deploy_main

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return deploy_main(argv, prog="smartkeys deploy")
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def _deploy_misplaced(ctx: Any) -> Any:
    raise CommandError("`deploy` takes only its own options, after the word deploy",
                       hint="smartkeys deploy --rpc-url URL --chain-id ID [--json] (see `smartkeys deploy --help`)")


def main(
    argv: Sequence[str] | None = None,
    *,
    web3: Any = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``smartkeys ARGV``; return the exit code (see the ``--help`` epilog)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    stdin = stdin or sys.stdin
    env = dict(os.environ if env is None else env)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["deploy"]:
        return _deploy(argv[1:], out, err)
    _Parser.streams = (out, err)
    parser = build_parser()
    json_mode = "--json" in argv
    debug = "--debug" in argv
    try:
        try:
            args = parser.parse_args(argv)
        except _ParserExit as exc:
            return exc.status
        except _UsageError as exc:
            err.write(exc.usage)
            return _fail(UI(out, err, stdin, json_mode=json_mode), exc, EXIT_USAGE, debug)
        json_mode, debug = bool(args.json), bool(args.debug)
        ui = UI(out, err, stdin, json_mode=json_mode)
        if not getattr(args, "func", None):
            if json_mode:
                return _fail(ui, CommandError("no command given", hint="run `smartkeys --help`"), EXIT_USAGE, debug)
            parser.print_help(out)
            return EXIT_USAGE
        try:
            from smartkeys.rpc import deadline

            timeout = getattr(args, "timeout", None)
            if timeout is not None and not timeout > 0:
                raise CommandError(f"--timeout {timeout:g}: expected a positive number of seconds",
                                   hint="e.g. --timeout 60")
            limit = None if args.command in _NO_DEADLINE else (timeout or DEFAULT_TIMEOUT)
            ctx = Context(args, env, ui, web3=web3, cwd=os.getcwd())
            with deadline(limit):
                code, document = args.func(ctx)
        except BrokenPipeError:
            return _reader_gone(out, EXIT_OK)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure becomes one line + exit code
            failure = _typed_network_fault(exc)
            return _fail(ui, failure, exit_code_for(failure), debug)
        if json_mode and document is not None:
            try:
                ui.emit_json({"ok": code == EXIT_OK, "command": _command_name(args), **document})
            except BrokenPipeError:
                return _reader_gone(out, code)
        try:
            flush = getattr(out, "flush", None)
            if flush is not None:
                flush()
        except BrokenPipeError:
            return _reader_gone(out, code)
        return code
    finally:
        _Parser.streams = (sys.stdout, sys.stderr)


def _reader_gone(out: TextIO, code: int) -> int:
    """stdout's reader closed the pipe (``smartkeys --json audit | head -2``): what it read is all it wanted, so
    no traceback and no error; stdout is pointed at /dev/null so the interpreter's final flush cannot fail
    again (the recipe of the Python docs, "Note on SIGPIPE")."""
    try:
        fileno = out.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream (tests): nothing to redirect
        return code
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)
    return code


def _typed_network_fault(exc: BaseException) -> BaseException:
    """A raw fault from web3/requests that escaped the SDK, as the typed error it means (exit 4, with the fix)."""
    import json

    import requests
    from web3.exceptions import BadFunctionCallOutput

    from smartkeys.errors import ChainStateError, MalformedResponseError, NodeUnavailableError, SmartKeysError

    if isinstance(exc, SmartKeysError):
        return exc
    if isinstance(exc, BadFunctionCallOutput):
        return ChainStateError(f"a contract call returned no data ({' '.join(str(exc).split())[:120]})")
    if isinstance(exc, (json.JSONDecodeError, requests.exceptions.ChunkedEncodingError)):
        return MalformedResponseError(f"the node sent a broken answer ({type(exc).__name__})")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError)):
        return NodeUnavailableError(f"the node did not answer ({type(exc).__name__})")
    return exc


def _command_name(args: argparse.Namespace) -> str:
    sub = getattr(args, "keys_command", None) or getattr(args, "policy_command", None)
    return args.command + (f" {sub}" if sub else "")


def _fail(ui: UI, exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        ui.err.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    message = _message(exc, code)
    print(f"error: {message}", file=ui.err)
    if ui.json_mode:
        error: dict[str, Any] = {"type": type(exc).__name__, "message": message, "exit_code": code}
        fields = getattr(exc, "args", None)
        if isinstance(fields, dict):  # a decoded contract error: its raw values (spent, cap, ...), integers as
            from smartkeys.journal import _jsonable  # decimal strings and bytes as 0x-hex, as in every report

            error["fields"] = {k: _jsonable(v) for k, v in fields.items()}
            error["name"] = getattr(exc, "name", type(exc).__name__)
        if getattr(exc, "field", None):
            error["field"] = getattr(exc, "field", None)
        for attr in ("hash", "intent_id", "sender", "nonce", "status", "retry_after"):
            value = getattr(exc, attr, None)
            if value is not None and not callable(value):
                error[attr] = value if isinstance(value, (str, int, float)) else str(value)
        ui.emit_json({"ok": False, "error": error})
    return code


def _message(exc: BaseException, code: int) -> str:
    if isinstance(exc, KeyboardInterrupt) or (isinstance(exc, Aborted) and str(exc) == "interrupted"):
        return "interrupted; nothing more was sent"
    if isinstance(exc, Aborted):
        return "aborted: not confirmed; nothing was sent"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if text.startswith("reverted with "):  # a raw contract error no session explained (e.g. the owner's grant)
        from smartkeys.refusals import explain

        text = explain(exc) or text
    if code == EXIT_REFUSED:
        from smartkeys.errors import TransactionFailedError

        name = getattr(exc, "name", None) if not isinstance(exc, TransactionFailedError) else None
        prefix = f"refused by policy ({name})" if isinstance(name, str) else "refused"
        suffix = "" if isinstance(exc, TransactionFailedError) else "; nothing was sent"
        return f"{prefix}: {text}{suffix}"
    if code == EXIT_ERROR and not isinstance(exc, CommandError):
        return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"
    return text
