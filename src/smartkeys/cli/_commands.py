"""The commands. Each takes a :class:`Context` and returns ``(exit_code, json_document)``; human output is
written as it goes (``ctx.ui.print``), the JSON document is printed by :func:`smartkeys.cli.main`."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from typing import Any, cast, overload

from eth_typing import ChecksumAddress
from web3 import Web3

from smartkeys._secrets import secret_frames_dropped
from smartkeys.cli._context import (
    EXIT_OK,
    SESSION_KEY_ENV,
    CommandError,
    Context,
    keystore_entries,
    read_keystore_address,
)
from smartkeys.errors import InvalidInputError, SmartKeysError

Result = tuple[int, dict[str, Any]]

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SESSION_ID_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_LIGHT_SCRYPT_N = 2**14


def _utc(ts: int) -> str:
    from smartkeys.timefmt import utc_text

    return utc_text(ts, sep=" ")


@overload
def _hex(b: bytes) -> str: ...
@overload
def _hex(b: None) -> None: ...
def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + bytes(b).hex()


def _address_arg(value: str, field: str) -> str:
    from smartkeys.encoding import checked_address

    return checked_address(value, field, allow_zero=False)


# --------------------------------------------------------------------------- demo / node


def cmd_demo(ctx: Context) -> Result:
    from smartkeys.demo import run_demo

    if ctx.ui.json_mode:
        buffer = io.StringIO()
        record: dict[str, Any] = {}  # the story as data (see run_demo), then the text lines it printed
        code = int(run_demo(buffer, color=False, record=record) or 0)
        return code, {**record, "transcript": buffer.getvalue().splitlines()}
    color = bool(getattr(ctx.ui.out, "isatty", lambda: False)()) and not ctx.args.no_color
    return int(run_demo(ctx.ui.out, color=color) or 0), {}


def cmd_node(ctx: Context) -> Result:
    try:
        from smartkeys.node import run_node
    except ImportError as exc:  # pragma: no cover - smartkeys.node ships with the package
        raise CommandError(f"the local node is not available in this installation ({exc})", exit_code=1) from None
    import signal
    import threading

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # `kill PID` stops anvil and the bundler as Ctrl-C does, leaving no orphans

    _node_preflight(ctx)
    ctx.ui.info(f"starting anvil on {ctx.args.host}:{ctx.args.port}" + (" and the Alto bundler" if ctx.args.bundler
                                                                          else "") + " (deploying the contracts)…")
    flush = getattr(ctx.ui.err, "flush", None)
    if flush is not None:
        flush()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, terminate)
    try:
        code = run_node(host=ctx.args.host, port=ctx.args.port, bundler=ctx.args.bundler,
                        bundler_port=ctx.args.bundler_port, out=ctx.ui.out, json_output=ctx.ui.json_mode)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(code or 0), None  # type: ignore[return-value]  # run_node writes its own output


def _node_preflight(ctx: Context) -> None:
    """What `node` needs, checked before anything starts (exit 2 with the fix, JSON under --json): anvil (and
    Alto) installed by `npm ci`, and free ports -- else anvil fails to bind while another node on the port
    answers the readiness check, and the banner printed would be the other node's."""
    from smartkeys import localchain, node

    try:
        localchain.find_anvil()
        if ctx.args.bundler:
            node.find_alto()
    except (localchain.LocalChainError, node.AltoError) as exc:
        raise CommandError(str(exc).split("; fix: ")[0], hint=str(exc).split("; fix: ")[-1]
                           if "; fix: " in str(exc) else "run `npm ci` in the smartkeys checkout") from None
    for flag, host, port in (("--port", ctx.args.host, ctx.args.port),
                             ("--bundler-port", "127.0.0.1", ctx.args.bundler_port if ctx.args.bundler else None)):
        if port is None:
            continue
        if not 0 < port < 65536:
            raise InvalidInputError(flag, port, "a TCP port from 1 to 65535", f"e.g. {flag} 8545")
        if node.port_in_use(host, port):
            raise CommandError(f"port {port} on {host} is already in use (another node or bundler?)",
                               hint=f"stop what listens there, or pass {flag} with a free port")


# --------------------------------------------------------------------------- keys


def _new_label(ctx: Context) -> str | None:
    """``--label``, checked, and not yet taken in the keys directory (exit 2 naming the file)."""
    label = ctx.args.label
    if label is not None and not _LABEL_RE.match(label):
        raise InvalidInputError("--label", label, "1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit)",
                                "pick a simple name such as 'agent-1'")
    if label is not None and (ctx.keys_dir / f"{label}.json").exists():
        raise CommandError(f"a keystore labelled {label!r} already exists: {ctx.keys_dir / f'{label}.json'}",
                           hint="pick another --label")
    return label


def _write_keystore(ctx: Context, key, label: str | None, password: str, verb: str) -> Result:
    from smartkeys.keystore import DEFAULT_SCRYPT_N, save_keystore

    keys_dir = ctx.keys_dir
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    label = label or f"key-{key.address[2:10].lower()}"
    with ctx.ui.progress("encrypting the key (scrypt)"):
        path = save_keystore(key, keys_dir / f"{label}.json", password,
                             scrypt_n=_LIGHT_SCRYPT_N if ctx.args.light_kdf else DEFAULT_SCRYPT_N)
    ctx.ui.print(f"{verb} key {key.address}")
    ctx.ui.pairs([("label", label), ("file", str(path)), ("address", key.address)], indent="  ")
    return EXIT_OK, {"address": key.address, "label": label, "file": str(path)}


@secret_frames_dropped
def cmd_keys_new(ctx: Context) -> Result:
    from smartkeys.keystore import generate_key

    label = _new_label(ctx)
    password = ctx.password("the new keystore", twice=True)
    code, doc = _write_keystore(ctx, generate_key(), label, password, "new")
    ctx.ui.print("Put the address in a policy file (key = \"…\") and grant it with `smartkeys grant --policy FILE`.")
    return code, doc


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEX_KEY_RE = re.compile(r"^(0[xX])?[0-9a-fA-F]{64}$")
_KEY_EXPECTED = "a private key: 64 hex digits (32 bytes), 0x optional"


@secret_frames_dropped
def _read_private_key(ctx: Context):
    """The key to import, from --from-env VAR, --stdin or a prompt without echo; never shown in any message."""
    from eth_account import Account

    from smartkeys.keystore import SessionKey

    if ctx.args.from_env:
        var = ctx.args.from_env
        if not _ENV_NAME_RE.match(var):
            raise InvalidInputError("--from-env", var, "the name of an environment variable (not its value)",
                                    "e.g. --from-env OWNER_KEY, with OWNER_KEY=0x… in the environment")
        text, source = ctx.env.get(var), f"environment variable {var}"
        if not text or not text.strip():
            raise CommandError(f"{source} is not set or empty", hint=f"export {var}=0x… (the 64 hex digit key), or drop --from-env")
    elif ctx.args.stdin:
        text, source = ctx.ui.stdin.readline(4096), "standard input"  # bounded: `< /dev/zero` must not fill memory
        if not text.strip():
            raise CommandError("no private key on standard input", hint="pipe the key in: … | smartkeys keys import --stdin")
    elif ctx.ui.interactive:
        text, source = ctx.ui.password("Private key (hex, not echoed): "), "the prompt"
    else:
        raise CommandError("no private key to import: stdin is not a terminal, so it cannot be asked for",
                           hint="pipe it with --stdin, or name an environment variable holding it with --from-env VAR")
    text = text.strip()
    if not _HEX_KEY_RE.match(text):
        digits = text.removeprefix("0x").removeprefix("0X")
        if re.fullmatch(r"[0-9a-fA-F]{40}", digits):
            hint = "that is an address (40 hex digits); import the account's private key instead"
        elif len(text.split()) >= 12:
            hint = "that looks like a mnemonic phrase; derive the account's private key from it first"
        elif text.lstrip().startswith("{"):
            hint = "that looks like a keystore file; it is already encrypted: use it with --keystore FILE"
        elif len(digits) == 64:
            hint = "it holds characters other than 0-9 and a-f (quotes, spaces?); copy the key alone"
        else:
            hint = (f"got {len(digits)} characters from {source}; copy the whole key, e.g. the 0x… key "
                    "`smartkeys node` prints next to a dev account")
        raise InvalidInputError("private key", "<not shown>", _KEY_EXPECTED, hint, secret=True)
    try:
        account = Account.from_key(bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text))
    except Exception:  # noqa: BLE001 - its message could quote the key
        account = None
    del text
    if account is None:
        raise InvalidInputError("private key", "<not shown>", "a valid secp256k1 private key (not zero, below the curve order)",
                                "check that the key was copied whole", secret=True)
    return SessionKey(account)


@secret_frames_dropped
def cmd_keys_import(ctx: Context) -> Result:
    label = _new_label(ctx)
    key = _read_private_key(ctx)
    for entry in keystore_entries(ctx.keys_dir):
        if entry["address"] and entry["address"].lower() == key.address.lower():
            raise CommandError(f"{key.address} already has a keystore: {entry['file']}",
                               hint=f"use it as it is (--keystore {entry['label']}), or move that file away first")
    password = ctx.password("the new keystore", twice=True)
    code, doc = _write_keystore(ctx, key, label, password, "imported")
    ctx.ui.print(f"Use it as the owner with --keystore {doc['label']} (or SMARTKEYS_KEYSTORE={doc['label']}).")
    return code, doc


def cmd_keys_list(ctx: Context) -> Result:
    entries = keystore_entries(ctx.keys_dir)
    if not entries:
        ctx.ui.print(f"no keystores in {ctx.keys_dir} (create one with `smartkeys keys new`)")
    else:
        ctx.ui.table(["LABEL", "ADDRESS", "FILE", "MODE"],
                     [[e["label"], e["address"] or "?", e["file"], e["mode"] + ("" if e["secure"] else " (insecure)")]
                      for e in entries])
    return EXIT_OK, {"keys_dir": str(ctx.keys_dir), "keys": entries}


def cmd_keys_show(ctx: Context) -> Result:
    import os
    import stat

    from smartkeys.keystore import KeystoreError, read_keystore_json

    path = ctx.find_keystore(ctx.args.key, "keys show")
    try:
        data = read_keystore_json(path)
    except KeystoreError as exc:
        raise CommandError(f"{path} is not a JSON keystore ({exc})", hint="check the file") from None
    if not isinstance(data, dict) or data.get("version") != 3:
        raise CommandError(f"{path} is not a Web3 Secret Storage v3 keystore", hint="check the file")
    crypto = data.get("crypto") or data.get("Crypto") or {}
    kdfparams = crypto.get("kdfparams") or {}
    mode = stat.S_IMODE(os.stat(path).st_mode)
    info: dict[str, Any] = {
        "address": read_keystore_address(path),
        "label": path.stem,
        "file": str(path),
        "mode": f"{mode:04o}",
        "secure": not (mode & 0o077),
        "id": data.get("id"),
        "version": data.get("version"),
        "cipher": crypto.get("cipher"),
        "kdf": crypto.get("kdf"),
        "kdf_work": kdfparams.get("n") or kdfparams.get("c"),
    }
    if ctx.args.address:
        ctx.ui.print(info["address"] or "")
    else:
        ctx.ui.pairs([(k, v) for k, v in info.items() if v is not None])
    if not info["secure"]:
        ctx.ui.info(f"warning: {path} may be read by others; fix: chmod 600 {path}")
    return EXIT_OK, info


# --------------------------------------------------------------------------- owner


def _owner(ctx: Context):
    from smartkeys.account import Owner

    key = ctx.owner_key()  # decrypt before connecting: a wrong password fails fast, nothing sent
    w3 = ctx.w3()
    return Owner(w3, key, chain_id=ctx.config.chain_id.value, outbox=outbox_for(ctx))


def _owner_pays(ctx: Context, owner):
    return ctx.gas_payer(owner.address, "the owner", alternative=(
        " (on a local node, make a funded dev account the owner: `smartkeys keys import`)"))


def _require_delegated(owner) -> None:
    current = owner.delegation()
    if current != owner.implementation:
        where = "has no code" if current is None else f"delegates to {current}"
        raise CommandError(f"account {owner.address} {where}, not to the smartkeys account {owner.implementation}",
                           hint="run `smartkeys delegate` first")


def cmd_delegate(ctx: Context) -> Result:
    owner = _owner(ctx)
    before = owner.delegation()
    doc = {"account": owner.address, "implementation": owner.implementation, "chain_id": owner.chain_id}
    if before == owner.implementation:
        ctx.ui.print(f"{owner.address} already delegates to smartkeys {owner.implementation}: nothing to do")
        return EXIT_OK, {**doc, "changed": False, "transaction_hash": None}
    if before is not None:
        ctx.ui.info(f"note: {owner.address} currently delegates to {before}; re-delegating to smartkeys")
    epoch = _epoch_word(owner)  # storage outlives a delegation: sessions of an earlier one are still there
    with _owner_pays(ctx, owner), ctx.ui.progress("sending the EIP-7702 set-code transaction"):
        receipt = owner.delegate(keep_sessions=ctx.args.keep_sessions, from_block=_check_from_block(ctx))
    tx = _hex(receipt["transactionHash"])
    ctx.ui.print(f"delegated {owner.address} to smartkeys {owner.implementation}")
    ctx.ui.pairs([("transaction", tx), ("block", receipt["blockNumber"])], indent="  ")
    revoked = _epoch_word(owner) != epoch
    with ctx.ui.progress("reading the sessions"):
        reports = _reports(owner.w3, owner.address, from_block=_check_from_block(ctx))
    live = [r for r in reports if r.status == "live"]
    if revoked:
        ctx.ui.print(f"sessions: every session granted before ({len(reports)}) was revoked in the same transaction, "
                     "as delegating does unless --keep-sessions; grant again what you need")
    elif live:
        ctx.ui.print(f"sessions: {len(live)} granted during an earlier delegation are live again (--keep-sessions); "
                     "see `smartkeys status`, revoke what you did not mean to keep")
    elif reports:
        ctx.ui.print(f"sessions: {len(reports)} granted before, none usable now (revoked, expired or used up)")
    return EXIT_OK, {**doc, "changed": True, "previous": before, "transaction_hash": tx,
                     "block": int(receipt["blockNumber"]), "sessions_revoked": revoked,
                     "sessions_live": [_hex(r.session_id) for r in live]}


def _epoch_word(owner) -> int:
    from smartkeys.account import SESSION_STORAGE_SLOT

    return int.from_bytes(bytes(owner.w3.eth.get_storage_at(owner.address, SESSION_STORAGE_SLOT)), "big")


def cmd_undelegate(ctx: Context) -> Result:
    owner = _owner(ctx)
    before = owner.delegation()
    if before is None:
        ctx.ui.print(f"{owner.address} has no delegation: nothing to do")
        return EXIT_OK, {"account": owner.address, "changed": False, "transaction_hash": None}
    keep = bool(getattr(ctx.args, "keep_sessions", False))
    epoch = _epoch_word(owner)
    ctx.ui.confirm(
        f"Clear the code of {owner.address} (now delegating to {before})? "
        + ("Sessions stay in storage and live again if you delegate with --keep-sessions."
           if keep else "Every session granted so far is revoked first."), assume_yes=ctx.args.yes)
    with _owner_pays(ctx, owner), ctx.ui.progress("sending the EIP-7702 set-code transaction"):
        receipt = owner.undelegate(keep_sessions=keep)
    tx = _hex(receipt["transactionHash"])
    revoked = _epoch_word(owner) != epoch  # read from storage: the code is gone now
    if revoked:
        ctx.ui.print(f"revoked every session of {owner.address} (ERC-7779 onRedelegation)")
    ctx.ui.print(f"undelegated {owner.address} (was {before}); transaction {tx}")
    return EXIT_OK, {"account": owner.address, "changed": True, "previous": before, "transaction_hash": tx,
                     "sessions_revoked": revoked}


def cmd_grant(ctx: Context) -> Result:
    from smartkeys.policy import load_policy

    model = load_policy(ctx.path(ctx.args.policy))  # bad file: exit 2 naming the field, before anything else
    if ctx.args.dry_run:
        w3 = ctx.w3()
        now = int(w3.eth.get_block("latest")["timestamp"])
        policy = model.compile(now)
        ctx.ui.print(model.describe(now))
        ctx.ui.print(f"session id {_hex(policy.session_id)} (dry run: nothing sent)")
        return EXIT_OK, {"dry_run": True, **_policy_doc(policy), "warnings": _grant_warnings(ctx, policy)}
    owner = _owner(ctx)
    _require_delegated(owner)
    now = int(owner.w3.eth.get_block("latest")["timestamp"])
    policy = model.compile(now)
    salt = owner.next_free_salt(policy)
    if salt != policy.salt:
        # Each session id is granted once (a re-grant could otherwise reset what a revoked session spent):
        # the same policy again gets the next unused salt, i.e. a new session with its own budgets.
        ctx.ui.print(f"this policy was granted before on {owner.address}: granting it as a new session (salt {salt})")
        policy = dataclasses.replace(policy, salt=salt)
    with _owner_pays(ctx, owner), ctx.ui.progress("granting the session"):
        session_id = owner.grant(policy)
    ctx.ui.print(model.describe(now))
    ctx.ui.print(f"granted session {_hex(session_id)}")
    others = [r for r in _reports(owner.w3, owner.address, key=policy.key) if r.live and r.session_id != session_id]
    if others:
        # A second grant to the same key is a second, separate budget (a retried grant, a re-run): say so.
        ids = ", ".join(_hex(r.session_id)[:18] + "…" for r in others)
        ctx.ui.print(f"note: key {policy.key} also holds {len(others)} other live session(s) ({ids}), each with its "
                     "own budget: revoke the ones this grant replaces (smartkeys revoke ID)")
    warnings = _grant_warnings(ctx, policy)
    return EXIT_OK, {"account": owner.address, **_policy_doc(policy), "warnings": warnings,
                     "other_live_sessions": [_hex(r.session_id) for r in others]}


def _grant_warnings(ctx: Context, policy) -> list[str]:
    from smartkeys.account import grant_warnings

    warnings = grant_warnings(policy, bundler_configured=bool(ctx.config.bundler_url.value))
    for warning in warnings:
        ctx.ui.print(f"WARNING: {warning}")
    return warnings


def _policy_doc(policy) -> dict[str, Any]:
    from smartkeys.account import amount_fields

    return {
        "session_id": _hex(policy.session_id),
        "key": policy.key,
        "valid_after": policy.valid_after,
        "valid_until": policy.valid_until,
        "max_uses": policy.max_uses,
        **amount_fields("gas_budget", "gas", policy.gas_budget),
        **amount_fields("native_per_call", "native", policy.native_per_call),
        **amount_fields("native_total", "native", policy.native_total),
        "salt": policy.salt,
        "allow_uncapped_assets": policy.allow_uncapped_assets,
        "permissions": [{"target": p.target, "mode": p.mode.name, "selector": _hex(p.selector)}
                        for p in policy.permissions],
        "token_caps": [{"token": c.token, "cap": str(c.cap), "period": c.period, "per_period": str(c.per_period)}
                       for c in policy.token_caps],
    }


def cmd_revoke(ctx: Context) -> Result:
    target = ctx.args.target
    if ctx.args.all and target:
        raise InvalidInputError("revoke", target, "either a session id / key address or --all, not both",
                                "drop the argument or --all")
    if not ctx.args.all:
        if not target:
            raise InvalidInputError("revoke", None, "a session id (0x + 64 hex) or a key address (0x + 40 hex), or --all",
                                    "run `smartkeys status` to list sessions")
        if not (_SESSION_ID_RE.match(target) or _ADDRESS_RE.match(target)):
            raise InvalidInputError("revoke", target, "a session id (0x + 64 hex) or a key address (0x + 40 hex)",
                                    "copy it from `smartkeys status`")
        if _ADDRESS_RE.match(target):
            target = _address_arg(target, "key")
    owner = _owner(ctx)
    _require_delegated(owner)
    with ctx.ui.progress("reading sessions"):
        reports = owner.sessions(from_block=_check_from_block(ctx))
    live = [r for r in reports if r.live]
    if ctx.args.all:
        ctx.ui.confirm(f"Revoke ALL sessions of {owner.address} ({len(live)} live)? Every session key stops "
                       "working at once.", assume_yes=ctx.args.yes)
        with _owner_pays(ctx, owner), ctx.ui.progress("revoking every session"):
            receipt = owner.revoke_all()
        ctx.ui.print(f"revoked all sessions of {owner.address} ({len(live)} were live)")
        return EXIT_OK, {"account": owner.address, "all": True, "revoked": [_hex(r.session_id) for r in live],
                         "transaction_hashes": [_hex(receipt["transactionHash"])]}
    if _SESSION_ID_RE.match(target):
        sid = bytes.fromhex(target[2:])
        matches = [r for r in reports if r.session_id == sid]
        if not matches:
            raise CommandError(f"no session {target} was granted by {owner.address}",
                               hint="copy the id from `smartkeys status`")
    else:
        matches = [r for r in reports if r.key == target]
        if not matches:
            raise CommandError(f"no session was granted to key {target} by {owner.address}",
                               hint="check the address with `smartkeys status`")
    todo = [r for r in matches if r.live]
    hashes = []
    for report in todo:
        with _owner_pays(ctx, owner), ctx.ui.progress(f"revoking {_hex(report.session_id)[:14]}…"):
            receipt = owner.revoke(report.session_id)
        hashes.append(_hex(receipt["transactionHash"]))
        ctx.ui.print(f"revoked session {_hex(report.session_id)} (key {report.key})")
    if not todo:
        ctx.ui.print(f"nothing to revoke: {target} is not live any more")
    return EXIT_OK, {"account": owner.address, "all": False, "revoked": [_hex(r.session_id) for r in todo],
                     "transaction_hashes": hashes}


# --------------------------------------------------------------------------- rotate / renew


def _live_session(ctx: Context, owner, target: str | None, command: str, *, several: bool = False):
    """(report, policy, every report) of the live session named by ``target``: a session id, or a key address
    holding exactly one live session (``several``: its first one, for ``rotate``, which rotates them all)."""
    if not target or not (_SESSION_ID_RE.match(target) or _ADDRESS_RE.match(target)):
        raise InvalidInputError(command, target, "a session id (0x + 64 hex) or a key address (0x + 40 hex)",
                                "copy it from `smartkeys status`")
    with ctx.ui.progress("reading sessions"):
        reports = owner.sessions(from_block=_check_from_block(ctx))
    if _SESSION_ID_RE.match(target):
        sid = bytes.fromhex(target[2:])
        matches = [r for r in reports if r.session_id == sid]
        if not matches:
            raise CommandError(f"no session {target} was granted by {owner.address}",
                               hint="copy the id from `smartkeys status`")
    else:
        key = _address_arg(target, "key")
        matches = [r for r in reports if r.key == key and r.live]
        if len(matches) > 1 and not several:
            ids = ", ".join(_hex(r.session_id) for r in matches)
            raise CommandError(f"key {key} holds {len(matches)} live sessions ({ids})",
                               hint=f"name one: smartkeys {command} SESSION_ID")
        if not matches:
            raise CommandError(f"key {key} holds no live session at {owner.address}",
                               hint="check `smartkeys status`; a revoked or expired session cannot be "
                                    f"{command}d: grant a new one")
    report = matches[0]
    policy = next(p for p in owner.granted_policies(from_block=_check_from_block(ctx))
                  if p.session_id == report.session_id)
    return report, policy, reports


def _successor_limits(ctx: Context, owner, policy) -> dict[str, Any]:
    """The lowered limits of ``--max-uses``, ``--native-total``, ``--gas-budget`` and ``--token-cap``."""
    args = ctx.args
    limits: dict[str, Any] = {}
    if args.max_uses is not None:
        limits["max_uses"] = args.max_uses
    if args.native_total is not None:
        limits["native_total"] = _parse_native(args.native_total, "--native-total")
    if args.gas_budget is not None:
        limits["gas_budget"] = _parse_native(args.gas_budget, "--gas-budget")
    caps: dict[str, int] = {}
    for item in args.token_cap or ():
        token, sep, amount = item.partition("=")
        if not sep or not amount.strip():
            raise InvalidInputError("--token-cap", item, "TOKEN=AMOUNT, e.g. 0x…=250 (in token units)",
                                    "give the token's address, '=', and the new cap")
        token = _address_arg(token.strip(), "--token-cap")
        decimals, symbol = _token_info(owner.w3, token)
        caps[token] = _scale_token(amount.strip(), token, decimals, symbol, "--token-cap")
    if caps:
        limits["token_caps"] = caps
    return limits


def _new_window_end(ctx: Context, owner, policy) -> int | None:
    """The window end of ``--for`` (unix s), with the policy file's lifetime guard: over
    :data:`smartkeys.policy.MAX_LIFETIME` only with ``--allow-long-lifetime``."""
    from smartkeys.policy import MAX_LIFETIME, parse_duration

    if ctx.args.for_ is None:
        return None
    seconds = parse_duration(ctx.args.for_, "--for")
    if seconds > MAX_LIFETIME and not ctx.args.allow_long_lifetime:
        raise InvalidInputError("--for", ctx.args.for_, f"a lifetime of at most {MAX_LIFETIME // 86_400} days",
                                "shorten it, or add --allow-long-lifetime if you really mean it")
    return int(owner.w3.eth.get_block("latest")["timestamp"]) + seconds


def _succession_doc(owner, before, after, receipt) -> dict[str, Any]:
    return {"account": owner.address, "previous_session_id": _hex(before.session_id),
            "session_id": _hex(after.session_id), "previous_key": before.key, "key": after.key,
            "previous_valid_until": before.valid_until, "valid_until": after.valid_until,
            "transaction_hash": _hex(receipt["transactionHash"]) if receipt else None,
            "policy": _policy_doc(after)}


def _print_succession(ctx: Context, verb: str, before, after) -> None:
    ctx.ui.print(f"{verb} session {_hex(before.session_id)} -> {_hex(after.session_id)}")
    rows = [("key", after.key if after.key == before.key else f"{before.key} -> {after.key}"),
            ("valid until", f"{_utc(after.valid_until)}" + ("" if after.valid_until == before.valid_until
                                                            else f" (was {_utc(before.valid_until)})"))]
    ctx.ui.pairs(rows, indent="  ")
    ctx.ui.print("  the old id is revoked; what it spent carries over (see `smartkeys status`)")


@secret_frames_dropped
def cmd_rotate(ctx: Context) -> Result:
    new = ctx.args.new_key
    if new is not None and ctx.args.label is not None:
        raise InvalidInputError("--label", ctx.args.label, "--label only when a new key is generated",
                                "drop --label, or drop --new-key to generate the new key")
    label = _new_label(ctx) if new is None else None
    owner = _owner(ctx)
    _require_delegated(owner)
    _, policy, reports = _live_session(ctx, owner, ctx.args.target, "rotate", several=True)
    valid_until = _new_window_end(ctx, owner, policy)
    # A rotated (say leaked) key is dead only when none of its sessions is: the others are rotated too, unless
    # --only, and then listed as still live. Expired and used-up ones are left alone (the key cannot use them).
    others = [r for r in reports if r.key == policy.key and r.session_id != policy.session_id
              and r.status in ("live", "not yet")]
    kept = others if ctx.args.only else []
    others = [] if ctx.args.only else others
    key_doc: dict[str, Any] = {}
    if new is None:
        from smartkeys.keystore import generate_key

        password = ctx.password("the new session keystore", twice=True)
        fresh = generate_key()
        _, key_doc = _write_keystore(ctx, fresh, label, password, "new")
        new_address = fresh.address
    elif _ADDRESS_RE.match(new):
        new_address = _address_arg(new, "--new-key")
    else:
        found = read_keystore_address(ctx.find_keystore(new, "rotate --new-key"))
        if found is None:
            raise CommandError(f"keystore {new!r} does not name its address", hint="pass the address instead")
        new_address = found
    with _owner_pays(ctx, owner), ctx.ui.progress("rotating the session key"):
        after = owner.rotate_session(policy, new_address, valid_until=valid_until)
    doc = {**_succession_doc(owner, policy, after, owner.last_succession_receipt), "new_keystore": key_doc or None,
           "also_rotated": [], "old_key_still_live_in": [_hex(r.session_id) for r in kept]}
    _print_succession(ctx, "rotated", policy, after)
    if others:
        by_id = {p.session_id: p for p in owner.granted_policies(from_block=_check_from_block(ctx))}
        for r in others:
            # one transaction each: if one fails, say which are rotated already and which are not
            try:
                with _owner_pays(ctx, owner), ctx.ui.progress(f"rotating session {_hex(r.session_id)}"):
                    succ = owner.rotate_session(by_id[r.session_id], new_address, valid_until=valid_until)
            except SmartKeysError as exc:
                from smartkeys.cli._context import exit_code_for

                done = [policy.session_id] + [bytes.fromhex(d["previous_session_id"][2:]) for d in doc["also_rotated"]]
                left = [_hex(o.session_id) for o in others if o.session_id not in done]
                raise CommandError(
                    f"rotated {', '.join(_hex(i) for i in done)} to {new_address}, then rotating "
                    f"{_hex(r.session_id)} failed: {exc}; the old key {policy.key} still holds {', '.join(left)}",
                    hint=f"fix the cause and run: smartkeys rotate {policy.key} --new-key {new_address}",
                    exit_code=exit_code_for(exc)) from exc
            doc["also_rotated"].append(_succession_doc(owner, by_id[r.session_id], succ, owner.last_succession_receipt))
            _print_succession(ctx, "rotated", by_id[r.session_id], succ)
    if kept:
        ctx.ui.info(f"warning: --only: the old key {policy.key} still holds {len(kept)} live session(s) and can "
                     f"use them: {', '.join(doc['old_key_still_live_in'])} (revoke them, or rotate without --only)")
        ctx.ui.print(f"  give the agent the new key {after.key} for session {_hex(after.session_id)}")
    else:
        ctx.ui.print(f"  the old key {policy.key} is refused from now on; give the agent the new key {after.key}")
    return EXIT_OK, doc


def cmd_renew(ctx: Context) -> Result:
    owner = _owner(ctx)
    _require_delegated(owner)
    _, policy, _ = _live_session(ctx, owner, ctx.args.target, "renew")
    valid_until = _new_window_end(ctx, owner, policy)
    limits = _successor_limits(ctx, owner, policy)
    if valid_until is None and not limits:
        raise InvalidInputError("renew", None, "--for DURATION and/or a lower limit (--max-uses, --native-total, "
                                "--gas-budget, --token-cap)", "e.g. smartkeys renew ID --for 24h")
    with _owner_pays(ctx, owner), ctx.ui.progress("renewing the session"):
        after = owner.renew_session(policy, valid_until=valid_until, **limits)
    _print_succession(ctx, "renewed", policy, after)
    return EXIT_OK, _succession_doc(owner, policy, after, owner.last_succession_receipt)


# --------------------------------------------------------------------------- status


def _check_from_block(ctx: Context) -> int | None:
    """``--from-block`` (None: the account's first transaction block, see smartkeys.logs.account_start_block)."""
    value = getattr(ctx.args, "from_block", None)
    if value is not None and value < 0:
        raise InvalidInputError("--from-block", value, "a block number >= 0", "e.g. --from-block 19000000")
    return value


def _reports(w3: Web3, account: str, key: str | None = None, from_block: int | None = None):
    from smartkeys.account import build_session_report
    from smartkeys.policy import granted_policies
    from smartkeys.preflight import read_session_state

    now = int(w3.eth.get_block("latest")["timestamp"])
    return [build_session_report(p, read_session_state(w3, account, p), now)
            for p in granted_policies(w3, account, key=key, from_block=from_block)]


def cmd_status(ctx: Context) -> Result:
    from smartkeys.account import account_contract
    from smartkeys.audit import format_asset
    from smartkeys.deployments import account_address as implementation_address
    from smartkeys.encoding import parse_delegation

    ctx.ui.print("configuration")
    ctx.ui.table(["SETTING", "VALUE", "SOURCE"],  # to_dict() ends with config_file, which zip leaves out
                 [[s.name, v["value"] if v["value"] is not None else "-", v["source"]]
                  for s, v in zip(ctx.config.settings(), ctx.config.to_dict().values(), strict=False)], indent="  ")
    if ctx.config.config_file:
        ctx.ui.print(f"  (config file: {ctx.config.config_file})")
    doc: dict[str, Any] = {"config": ctx.config.to_dict()}
    unsettled = outbox_for(ctx).unsettled()
    doc["unsettled_intents"] = len(unsettled)
    if unsettled:
        ctx.ui.print(f"  {len(unsettled)} send(s) with an unreported outcome: run `smartkeys pending`")
    account = None
    try:
        account = ctx.account_address()
    except CommandError as exc:
        doc["account_error"] = str(exc)
    w3 = ctx.w3()
    block = w3.eth.get_block("latest")
    chain: dict[str, Any] = {"rpc": ctx.rpc_label, "chain_id": int(w3.eth.chain_id), "block": int(block["number"]),
             "timestamp": int(block["timestamp"])}
    doc["chain"] = chain
    ctx.ui.print()
    ctx.ui.pairs([("chain id", chain["chain_id"]), ("block", f"{chain['block']} at {_utc(chain['timestamp'])}")])
    if account is None:
        ctx.ui.print(f"account     - ({doc['account_error']})")
        return EXIT_OK, doc
    with ctx.ui.progress("reading the account"):
        delegation = parse_delegation(bytes(w3.eth.get_code(cast(ChecksumAddress, account))))
        implementation = implementation_address()
        is_smartkeys = delegation == implementation
        epoch = int(account_contract(w3, account).functions.sessionEpoch().call()) if is_smartkeys else None
        reports = _reports(w3, account, from_block=_check_from_block(ctx)) if is_smartkeys else []
        balance = int(w3.eth.get_balance(cast(ChecksumAddress, account)))
    delegation_text = ("none" if delegation is None else
                       f"smartkeys {delegation}" if is_smartkeys else f"{delegation} (not smartkeys)")
    ctx.ui.pairs([("account", account), ("balance", format_asset("native", balance)),
                  ("delegation", delegation_text), ("session epoch", "-" if epoch is None else epoch)])
    if balance == 0:
        ctx.ui.print(f"note: the account has no ETH, and its owner pays the gas of delegate, grant and revoke; "
                     f"fund {account} with ETH first")
    from smartkeys.account import amount_fields

    doc["account"] = {"address": account, **amount_fields("balance", "native", balance), "delegation": delegation,
                      "is_smartkeys": is_smartkeys, "implementation": implementation, "session_epoch": epoch}
    tokens = {}
    if reports:
        with ctx.ui.progress("reading token names"):
            tokens = _token_names(w3, [a.asset for r in reports for a in r.assets])
    # one model per session (SessionReport.to_dict), printed as JSON or rendered below as text
    names = _address_names(ctx)
    doc["sessions"] = [r.to_dict(tokens, names) for r in reports]
    successions = _successions(w3, account, _check_from_block(ctx)) if reports else {}
    replaces = {nxt: prev for prev, (_, nxt) in successions.items()}
    for r, d in zip(reports, doc["sessions"], strict=True):
        kind, nxt = successions.get(r.session_id, (None, None))
        d["replaced_by"], d["replaced_how"] = _hex(nxt), kind
        d["replaces"] = _hex(replaces.get(r.session_id))
    live = sum(1 for r in reports if r.status == "live")
    ctx.ui.print()
    ctx.ui.print(f"sessions: {len(reports)} granted, {live} usable now")
    if reports:
        rows = []
        for r, d in zip(reports, doc["sessions"], strict=True):
            # Revoking keeps a session's counters, so a revoked session shows what it did, as a live one does.
            head = [_hex(r.session_id)[:18] + "…", r.key, d["replaced_how"] or d["status"], _until_text(d),
                    _uses_text(r.uses, r.max_uses)]
            rows += _session_rows(head, r.assets, tokens, left=True)
        ctx.ui.table(["SESSION", "KEY", "STATUS", "VALID UNTIL", "USES", "ASSET", "SPENT", "CAP", "LEFT"], rows,
                     indent="  ")
        for prev, (kind, nxt) in successions.items():
            ctx.ui.print(f"  {_hex(prev)[:18]}… was {kind} as {_hex(nxt)[:18]}…: its counters carried over")
        _print_periods(ctx, reports, tokens, chain["timestamp"])
        _print_rules(ctx, reports, doc["sessions"], indent="  ", usable_only=True)
        _warn_survivors(ctx, w3, account, [r for r in reports if r.live], _check_from_block(ctx))
        for r in reports:
            if r.allow_uncapped_assets and r.live:
                ctx.ui.print(f"  WARNING: session {_hex(r.session_id)[:18]}… has allow_uncapped_assets: its key may "
                             "move assets that no cap limits (up to the account's whole balance of them)")
    return EXIT_OK, doc


def _successions(w3: Web3, account: str, from_block: int | None) -> dict[bytes, tuple[str, bytes]]:
    """Old session id -> ("rotated" | "renewed", successor id), from ``SessionRotated`` / ``SessionRenewed``."""
    from eth_utils import keccak

    from smartkeys.logs import LogQueryError, account_start_block, read_logs

    try:
        start = account_start_block(w3, account) if from_block is None else from_block
    except LogQueryError:
        return {}
    out: dict[bytes, tuple[str, bytes]] = {}
    for kind, event in (("rotated", "SessionRotated(bytes32,bytes32,address,address)"),
                        ("renewed", "SessionRenewed(bytes32,bytes32,uint48,uint48)")):
        for log in read_logs(w3, account, start, "latest", topics=[keccak(text=event)]):
            out[bytes(log["topics"][1])] = (kind, bytes(log["topics"][2]))
    return out


def _warn_survivors(ctx: Context, w3: Web3, account: str, live, from_block: int | None) -> None:
    """Warn about live sessions granted before a change of delegation the SDK can see (they survived it)."""
    from smartkeys.account import delegation_change_since
    from smartkeys.logs import account_start_block, read_logs
    from smartkeys.policy import SESSION_GRANTED_TOPIC

    if not live:
        return
    ids = {r.session_id for r in live}
    start = account_start_block(w3, account) if from_block is None else from_block
    logs = read_logs(w3, account, start, "latest", topics=["0x" + SESSION_GRANTED_TOPIC.hex()])
    blocks = [int(log["blockNumber"]) for log in logs if bytes(log["topics"][1]) in ids]
    if not blocks:
        return
    changed = delegation_change_since(w3, account, min(blocks))
    if changed is not None:
        ctx.ui.print(f"  WARNING: the account's delegation changed after some live sessions were granted (seen at "
                     f"block {changed}); sessions survive re-delegation: revoke the ones you did not mean to keep "
                     "(smartkeys revoke SESSION, or --all)")


def _address_names(ctx: Context) -> dict[str, str]:
    """``address -> name`` from the ``--policy FILE`` options of status/audit (address books, contracts, tokens)."""
    from smartkeys.policy import load_policy

    names: dict[str, str] = {}
    for path in getattr(ctx.args, "name_policies", None) or ():
        names.update(load_policy(ctx.path(path)).address_names())
    return names


def _print_rules(ctx: Context, sessions, docs, *, indent: str = "", blank: bool = False,
                 usable_only: bool = False) -> None:
    """Each session's argument rules (recipient lists by name, bounds in token units) and rate limits (with the
    uses left and when the next use is allowed, for a session that can still be used), from the JSON model of
    the report. ``usable_only`` (status) leaves out revoked, expired and used-up sessions altogether."""
    rules, rates = [], []
    for s, d in zip(sessions, docs, strict=True):
        usable = d.get("status") in ("live", "active", "not yet", "not-yet-valid")
        if usable_only and not usable:
            continue
        label = f"{_hex(s.session_id)[:18]}…" + ("" if usable else f" ({d.get('status')})")
        rules += [f"{label} {entry['text']}" for entry in d.get("argument_rules") or ()]
        rate = d.get("rate_limits")
        if rate:
            text = rate["text"]
            if not usable:  # a session that cannot be used has no uses left and no next use
                text = "; ".join(p for p in text.split("; ")
                                 if not p.startswith("next use allowed") and not p.endswith(" left"))
            rates.append(f"{label} {text}")
    if blank and (rules or rates):
        ctx.ui.print()
    for title, lines in (("argument rules (all must hold; entries for one function are alternatives):", rules),
                         ("rate limits:", rates)):
        if lines:
            ctx.ui.print(f"{indent}{title}")
            for line in lines:
                ctx.ui.print(f"{indent}  {line}")


def _print_periods(ctx: Context, reports, tokens, now: int) -> None:
    """Each live session's periodic caps: spent in the current period, and exactly when the period resets
    (calendar windows aligned on 1970-01-01 UTC, as the contract counts them; not rolling windows)."""
    from smartkeys.audit import format_asset
    from smartkeys.timefmt import period_text

    lines = []
    for r in reports:
        for a in r.assets:
            if r.live and a.period:
                lines.append(f"  {_hex(r.session_id)[:18]}… {_asset_label(a.asset, tokens)}: "
                             f"{format_asset(a.asset, a.period_spent, tokens)} of "
                             f"{format_asset(a.asset, a.period_cap, tokens)} {period_text(a.period, now)}")
    if lines:
        ctx.ui.print("  periodic caps:")
        for line in lines:
            ctx.ui.print("  " + line)


_UNKNOWN = "—"


def _uses_text(uses: int | None, max_uses: int) -> str:
    text = f"{_UNKNOWN if uses is None else uses}/{max_uses or '∞'}"
    if max_uses and uses is not None:
        text += f" ({max(max_uses - uses, 0)} left)"
    return text


def _until_text(d: dict[str, Any]) -> str:
    """The window's end, and the time left while the session is usable."""
    text = _utc(d["valid_until"])
    if d["status"] in ("live", "not yet") and d["seconds_left"]:
        text += f" ({d['time_left_text']} left)"
    return text


def _token_names(w3: Web3, assets, cache: dict[str, tuple[str, int]] | None = None) -> dict[str, tuple[str, int]]:
    """``token address -> (symbol, decimals)`` for the token ``assets`` that answer ``symbol()`` and
    ``decimals()`` (``"native"``/``"gas"`` skipped); ``cache`` (updated) spares repeated calls."""
    from smartkeys.audit import token_meta

    cache = {} if cache is None else cache
    for asset in assets:
        if asset not in ("native", "gas") and asset not in cache:
            cache[asset] = token_meta(w3, asset)  # type: ignore[assignment]  # None: it did not say
    return {a: m for a, m in cache.items() if m is not None}


def _asset_label(asset: str, tokens) -> str:
    if asset in ("native", "gas"):
        return asset
    return tokens[asset][0] if asset in tokens else asset[:10] + "…"


def _session_rows(head: list, assets, tokens, *, left: bool = False) -> list[list]:
    """Table rows of one session: its ``head`` cells then one ``ASSET, SPENT, CAP[, LEFT]`` line per budget
    (those with a cap or a spend), the head cells blank on the lines after the first. Amounts in human units
    (:func:`smartkeys.audit.format_asset`); LEFT adds what is left of a periodic cap this period."""
    from smartkeys.audit import format_asset

    def left_text(a) -> str:
        text = format_asset(a.asset, a.remaining, tokens)
        if a.period:
            text += f" ({format_asset(a.asset, a.period_remaining, tokens)} this period)"
        return text

    budgets = [[_asset_label(a.asset, tokens), format_asset(a.asset, a.spent, tokens),
                format_asset(a.asset, a.cap, tokens)] + ([left_text(a)] if left else [])
               for a in assets if a.cap or a.spent]
    budgets = budgets or [["-", "", ""] + ([""] if left else [])]
    return [(head if i == 0 else [None] * len(head)) + b for i, b in enumerate(budgets)]


# --------------------------------------------------------------------------- agent: call / send


def _parse_native(text: str, field: str) -> int:
    """Wei in ``'0.1 ether'``, ``'0.1ether'``, ``'2 gwei'`` or ``'1000 wei'``.

    A bare number is refused (except 0): ``--value 1000`` reads as wei to users of cast and of JSON-RPC, and as
    ether to others, and guessing wrong moves 10**18 times too much or too little.
    """
    from smartkeys.policy import parse_amount

    text = text.strip()
    if re.fullmatch(r"[0-9_]*\.?[0-9_]*", text) and any(ch.isdigit() for ch in text):
        if text.strip("0._") == "":
            return 0
        raise InvalidInputError(field, text, "a native amount with its unit (ether, gwei or wei)",
                                f"write '{text} ether' or '{text} wei': a bare number is ambiguous")
    return parse_amount(text, field=field)


def _scale_token(text: str, token: str, decimals: int, symbol: str | None, field: str) -> int:
    """Base units of ``text`` (``'2.5'`` or ``'2.5 USDC'``) of an ERC-20 with ``decimals``: the policy files'
    amount parser, with the token as its only unit (so ``'2 gwei'`` cannot be read as a native amount)."""
    from smartkeys.policy import Token, parse_amount

    unit = symbol if symbol and " " not in symbol else "units"
    parts = text.split()
    if len(parts) == 2 and parts[1] != unit:
        raise InvalidInputError(field, text, f"an amount of {unit}", f"write '{parts[0]}' or '{parts[0]} {unit}'")
    if len(parts) == 1:
        text = f"{parts[0]} {unit}"
    return parse_amount(text, tokens={unit: Token(token, decimals)}, field=field)


def _encode_arg(typ: str, raw: str, field: str) -> Any:
    from smartkeys.encoding import checked_address

    if typ.endswith("]") or typ.startswith("("):
        from smartkeys.safe_files import FileInputError, parse_json

        try:  # bounded nesting: a 70,000-deep argument would overflow the C stack in json
            return parse_json(raw, path=field, kind="argument", max_depth=16)
        except FileInputError as exc:
            raise InvalidInputError(field, raw, f"a JSON value for {typ} ({exc.problem})",
                                    'write e.g. ["0x…", "0x…"]') from None
    if typ == "address":
        return checked_address(raw, field)
    if typ.startswith(("uint", "int")):
        try:
            return int(raw, 0)
        except ValueError:
            raise InvalidInputError(field, raw, f"an integer for {typ} (base units)", "write e.g. 1000000 or 0xf4240") from None
    if typ == "bool":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise InvalidInputError(field, raw, "true or false", "write true or false")
        return raw.lower() in ("true", "1")
    if typ.startswith("bytes"):
        try:
            return bytes.fromhex(raw.removeprefix("0x"))
        except ValueError:
            raise InvalidInputError(field, raw, f"0x-hex for {typ}", "write e.g. 0x1234") from None
    return raw


def _split_types(inner: str) -> list[str]:
    types, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            types.append(current.strip())
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current.strip():
        types.append(current.strip())
    return types


def encode_call(signature: str, args: list[str]) -> bytes:
    """Calldata for ``signature`` (``transfer(address,uint256)``) and text arguments."""
    from eth_abi import encode as abi_encode
    from eth_utils import keccak

    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*", signature)
    if not match:
        raise InvalidInputError("function", signature, "a signature like 'transfer(address,uint256)'",
                                "write the name and the argument types without spaces or names")
    name, inner = match.groups()
    types = _split_types(inner.replace(" ", ""))
    if len(types) != len(args):
        raise InvalidInputError("args", args, f"{len(types)} argument(s) for {name}({','.join(types)})",
                                "pass one value per parameter")
    values = [_encode_arg(t, a, f"args[{i}] ({t})") for i, (t, a) in enumerate(zip(types, args, strict=True))]
    canonical = f"{name}({','.join(types)})"
    try:
        return keccak(text=canonical)[:4] + abi_encode(types, values)
    except Exception as exc:  # noqa: BLE001 - eth_abi's errors name the type and value
        raise InvalidInputError("args", args, f"values that encode as {canonical}", str(exc)[:200]) from None


@secret_frames_dropped
def _session_key(ctx: Context):
    from smartkeys.keystore import load_key_from_env, load_keystore

    if ctx.args.key:
        path = ctx.find_keystore(ctx.args.key, "session key")
        password = ctx.password(f"session keystore {path.name}")  # this frame is dropped from any traceback
        with ctx.ui.progress("decrypting the session keystore"):
            return load_keystore(path, password)
    if ctx.env.get(SESSION_KEY_ENV):
        return load_key_from_env(SESSION_KEY_ENV, environ=ctx.env)
    raise CommandError("no session key", hint=f"pass --key KEYSTORE (path or label), or set {SESSION_KEY_ENV}")


def _pick_session(ctx: Context, w3: Web3, account: str, key, model, calls=None, via: str = "direct"):
    """``--session ID``, else the newest live session of the key whose preflight allows ``calls``
    (:func:`smartkeys.account.choose_session`); none: exit 3 naming each candidate and ``--session``.
    Without ``calls`` (a server that will make many different calls): the newest live session."""
    from smartkeys.account import build_session_report, choose_session
    from smartkeys.policy import granted_policies, policy_from_chain
    from smartkeys.preflight import read_session_state

    key_address = key if isinstance(key, str) else key.address

    if ctx.args.session:
        if not _SESSION_ID_RE.match(ctx.args.session):
            raise InvalidInputError("--session", ctx.args.session, "a session id (0x + 64 hex)",
                                    "copy it from `smartkeys grant` or `smartkeys status`")
        policy = policy_from_chain(w3, account, ctx.args.session, from_block=_check_from_block(ctx))
        if policy.key != key_address:
            raise CommandError(f"session {ctx.args.session} belongs to key {policy.key}, not to {key_address}",
                               hint="use the keystore of that session's key")
        return policy
    if model is not None and model.key != key_address:
        raise CommandError(f"the policy file is for key {model.key}, but the session key is {key_address}",
                           hint="use the policy file of this key, or the right --key")
    now = int(w3.eth.get_block("latest")["timestamp"])
    policies = granted_policies(w3, account, key=key_address, from_block=_check_from_block(ctx))
    live = [p for p in policies if build_session_report(p, read_session_state(w3, account, p), now).live]
    if not live:
        raise CommandError(f"no live session for key {key_address} at {account}",
                           hint="ask the owner to run `smartkeys grant --policy FILE`, or pass --session ID")
    candidates = live[::-1]  # newest grant first
    if calls is None:
        return candidates[0]
    policy = choose_session(w3, account, key, candidates, calls, via="user_op" if via == "user-op" else "direct",
                            chain_id=ctx.config.chain_id.value)
    if policy is not candidates[0]:
        ctx.ui.info(f"using session {_hex(policy.session_id)}: the newest one ({_hex(candidates[0].session_id)}) "
                    "does not allow this action (pick one with --session ID)")
    return policy


def _agent_prepare(ctx: Context):
    """Everything validated locally first (account, policy file, key), then the chain is read."""
    from smartkeys.policy import load_policy

    if ctx.args.session and ctx.args.policy:
        raise InvalidInputError("--session", ctx.args.session, "--session or --policy, not both", "drop one")
    account = ctx.account_address()
    model = load_policy(ctx.path(ctx.args.policy)) if ctx.args.policy else None
    via = ctx.args.via or ("user-op" if ctx.config.bundler_url.value else "direct")
    key = _session_key(ctx)
    w3 = ctx.w3()
    return account, model, via, key, w3


def _submit(ctx: Context, account: str, key, w3: Web3, policy, calls, via: str, model) -> Result:
    import inspect

    from smartkeys.account import SessionAgent

    extra = {"journal": journal_for(ctx)} if "journal" in inspect.signature(SessionAgent).parameters else {}
    agent = SessionAgent(w3, account, key, policy, chain_id=ctx.config.chain_id.value, outbox=outbox_for(ctx), **extra)
    function = getattr(ctx.args, "function", None)
    if function:  # a refusal names the function the user typed, not its selector
        agent.name_functions(function)
    if model is not None:  # and the recipients by the names of the policy file's address book
        agent.name_addresses(model.address_names())
    bundler: Any = None
    if via == "user-op":
        if ctx.config.bundler_url.value:
            from smartkeys.bundler import BundlerClient

            bundler = BundlerClient(ctx.config.bundler_url.value, expected_chain_id=agent.chain_id)
        else:
            bundler = key.account  # self-bundled: the session key submits handleOps and is refunded by the EntryPoint
    if bundler is None or bundler is key.account:  # the session key sends the transaction and pays its gas
        payer: contextlib.AbstractContextManager[None] = ctx.gas_payer(key.address, "the session key", alternative=(
            "; or send as a user operation through a bundler (--bundler-url), where the account pays the gas "
            "within the policy's gas_budget"))
    else:
        payer = contextlib.nullcontext()
    def submitted(intent) -> None:  # recorded in the outbox; about to leave the process
        what = "user operation" if intent.kind == "user_op" else "transaction"
        ctx.ui.info(f"sending {what} {_hex(intent.hash)} (nonce {intent.nonce}); if this is interrupted, do not "
                    "send again: run `smartkeys pending --settle`")
        flush = getattr(ctx.ui.err, "flush", None)
        if flush is not None:
            flush()

    with payer, ctx.ui.progress("preflight, sign and submit"):
        receipt = agent.batch(calls, via="user_op" if via == "user-op" else "direct", bundler=bundler,
                              intent=getattr(ctx.args, "intent", None), on_submit=submitted,
                              repeat=bool(getattr(ctx.args, "repeat", False)))
    from smartkeys.account import amount_fields, build_session_report
    from smartkeys.audit import format_asset

    charges = receipt.charges
    tokens = _token_names(w3, list(charges.tokens) + [c.token for c in policy.token_caps])
    # what is left after this use: the session's counters as the chain now has them
    report = build_session_report(policy, agent.session_state(), int(w3.eth.get_block("latest")["timestamp"]))
    session = report.to_dict(tokens)
    charged = [("native", charges.native), ("gas", charges.gas), *charges.tokens.items()]
    doc = {
        "account": account, "session_id": _hex(policy.session_id), "key": key.address, "path": receipt.path,
        "success": receipt.success, "transaction_hash": _hex(receipt.transaction_hash),
        "user_op_hash": _hex(receipt.user_op_hash), "gas_used": receipt.gas_used,
        "charges": {**amount_fields("native", "native", charges.native),
                    **amount_fields("gas", "gas", charges.gas),
                    "tokens": {t: amount_fields("amount", t, v, tokens) for t, v in charges.tokens.items()},
                    "uses": charges.uses},
        "session": session,
    }
    ctx.ui.print(f"{'succeeded' if receipt.success else 'FAILED'} via {receipt.path.replace('_', ' ')}")
    ctx.ui.pairs([(k, v) for k, v in (
        ("transaction", doc["transaction_hash"]), ("user operation", doc["user_op_hash"]),
        ("gas used", receipt.gas_used), ("session", doc["session_id"]),
        ("charged", ", ".join(f"{_asset_label(a, tokens)} {format_asset(a, v, tokens)}"
                              for a, v in charged if v) or "nothing"),
        ("left", _left_text(session)),
    ) if v is not None], indent="  ")
    return (EXIT_OK if receipt.success else 3), doc


def _left_text(session: dict[str, Any]) -> str:
    """What a session has left, from its JSON model: each capped budget (and its period), uses, time."""
    parts = []
    for a in session["assets"]:
        if a["cap"] == "0":
            continue
        text = f"{a['remaining_text']} of {a['cap_text']}" + (" gas" if a["asset"] == "gas" else "")
        if a["period"]:
            text += f" ({a['period_remaining_text']} this period, resets {_utc(a['period_resets_at'])})"
        parts.append(text)
    if session["uses_left"] is not None:
        parts.append(f"{session['uses_left']} of {session['max_uses']} uses")
    parts.append(f"{session['time_left_text']} left (until {_utc(session['valid_until'])})")
    return ", ".join(parts)


def outbox_for(ctx: Context):
    """The outbox of signed intents in the configured home (``<home>/outbox.jsonl``)."""
    from pathlib import Path

    from smartkeys.outbox import Outbox

    return Outbox(Path(ctx.config.home.value) / "outbox.jsonl")


def cmd_pending(ctx: Context) -> Result:
    """List the outbox's unsettled intents; with --settle, look them up and record what became of them."""
    from smartkeys.outbox import PENDING, settle

    if ctx.args.wait < 0:
        raise InvalidInputError("--wait", ctx.args.wait, "a number of seconds >= 0", "e.g. --wait 10")
    outbox = outbox_for(ctx)
    intents = outbox.read() if ctx.args.all else outbox.unsettled()
    if ctx.args.settle and intents:
        w3 = ctx.w3()
        chain_id = int(w3.eth.chain_id)
        bundler = None
        if ctx.config.bundler_url.value:
            from smartkeys.bundler import BundlerClient

            bundler = BundlerClient(ctx.config.bundler_url.value, expected_chain_id=chain_id)
        done = []
        for intent in intents:
            if intent.chain_id != chain_id or (intent.status != PENDING and intent.acknowledged):
                done.append(intent)
                continue
            with ctx.ui.progress(f"settling {_hex(intent.hash)[:14]}…"):
                done.append(settle(w3, outbox, intent, bundler=bundler, wait=ctx.args.wait, acknowledge=True))
        intents = done
    rows = [[i.intent_id[:24], i.status + ("" if i.acknowledged or i.status == PENDING else " (unreported)"),
             "user op" if i.kind == "user_op" else "tx", _hex(i.hash),
             str(i.nonce & (2**64 - 1)) if i.kind == "user_op" else str(i.nonce), i.via, _utc(int(i.created)),
             _hex(i.transaction_hash) or "-"] for i in intents]
    if rows:
        ctx.ui.table(["INTENT", "STATUS", "KIND", "HASH", "SEQ", "VIA", "SIGNED", "TRANSACTION"], rows)
    else:
        ctx.ui.print(f"no unsettled intents in {outbox.path}")
    unknown = [i for i in intents if i.status == PENDING]
    for i in unknown:
        if "refused" in i.note:  # the node no longer takes the recorded payload: say why and what to do
            ctx.ui.info(f"{_hex(i.hash)}: the node refuses the recorded payload ({i.note[:160]}); it cannot land "
                        "while that holds; fix: remove the cause (e.g. fund the sender for gas) and run "
                        "`smartkeys pending --settle` again; once its nonce is used by another, it is dropped")
    if unknown:
        ctx.ui.info(f"{len(unknown)} intent(s) may still land: do not send them again"
                    + ("" if ctx.args.settle else "; settle them with `smartkeys pending --settle`"))
    doc = {"outbox": str(outbox.path), "intents": [i.summary() for i in intents], "unknown": len(unknown)}
    return (4 if unknown and ctx.args.settle else EXIT_OK), doc


def journal_for(ctx: Context):
    """The refusal journal in the configured home (``<home>/refusals.jsonl``)."""
    from pathlib import Path

    from smartkeys.journal import RefusalJournal

    return RefusalJournal(Path(ctx.config.home.value) / "refusals.jsonl")


def cmd_call(ctx: Context) -> Result:
    from smartkeys.account import Call

    target = _address_arg(ctx.args.target, "target")
    if ctx.args.data is not None and ctx.args.function:
        raise InvalidInputError("--data", ctx.args.data, "either FUNCTION ARGS… or --data, not both", "drop one")
    if ctx.args.data is not None:
        try:
            data = bytes.fromhex(ctx.args.data.removeprefix("0x"))
        except ValueError:
            raise InvalidInputError("--data", ctx.args.data, "0x-prefixed hex calldata", "check the hex") from None
    elif ctx.args.function:
        data = encode_call(ctx.args.function, list(ctx.args.args))
    else:
        if ctx.args.args:
            raise InvalidInputError("function", None, "a function signature before its arguments", "e.g. 'transfer(address,uint256)'")
        data = b""
    value = _parse_native(ctx.args.value, "--value") if ctx.args.value else 0
    account, model, via, key, w3 = _agent_prepare(ctx)
    calls = [Call(target, value, data)]
    policy = _pick_session(ctx, w3, account, key, model, calls, via)
    return _submit(ctx, account, key, w3, policy, calls, via, model)


def cmd_send(ctx: Context) -> Result:
    from eth_abi import encode as abi_encode

    from smartkeys.account import Call
    from smartkeys.policy import format_amount

    to = _address_arg(ctx.args.to, "to")
    token_ref = ctx.args.token
    if token_ref is None:
        amount = _parse_native(ctx.args.amount, "amount")
    elif not _ADDRESS_RE.match(token_ref) and not ctx.args.policy:
        raise InvalidInputError("--token", token_ref, "a token address, or a token name with --policy FILE",
                                "pass the token's address, or the policy file whose tokens table names it")
    account, model, via, key, w3 = _agent_prepare(ctx)
    if token_ref is None:
        calls = [Call(to, amount, b"")]
        shown = f"{format_amount(amount, 18, 'ether')} ({amount} wei)"
    else:
        symbol = None
        if _ADDRESS_RE.match(token_ref):
            token = _address_arg(token_ref, "--token")
            decimals, symbol = _token_info(w3, token)
        else:
            entry = model.tokens.get(token_ref) if model is not None else None
            if entry is None:
                known = ", ".join(model.tokens) if model is not None and model.tokens else "none"
                raise InvalidInputError("--token", token_ref, f"a token of the policy's tokens table ({known})",
                                        "use its name exactly, or pass the token's address")
            token, decimals, symbol = entry.address, entry.decimals, token_ref
        amount = _scale_token(ctx.args.amount, token, decimals, symbol, "amount")
        calls = [Call(token, 0, bytes.fromhex("a9059cbb") + abi_encode(["address", "uint256"], [to, amount]))]
        shown = f"{format_amount(amount, decimals, symbol)} ({amount} base units)" if symbol else \
            f"{amount} base units of {token}"
    policy = _pick_session(ctx, w3, account, key, model, calls, via)
    ctx.ui.info(f"sending {shown} to {to}")
    code, doc = _submit(ctx, account, key, w3, policy, calls, via, model)
    doc["amount"] = str(amount)  # base units (wei for native), a decimal string as in every report
    doc["amount_text"] = _amount_text(calls[0].target if token_ref is not None else "native", amount,
                                      (symbol, decimals) if token_ref is not None and symbol else None)
    doc["to"] = to
    doc["token"] = None if token_ref is None else calls[0].target
    return code, doc


def _amount_text(asset: str, amount: int, meta: tuple[str, int] | None) -> str:
    from smartkeys.audit import format_asset

    return format_asset(asset, amount, {asset: meta} if meta else None)


def _token_info(w3: Web3, token: str) -> tuple[int, str | None]:
    abi = [{"type": "function", "name": "decimals", "inputs": [], "outputs": [{"type": "uint8"}], "stateMutability": "view"},
           {"type": "function", "name": "symbol", "inputs": [], "outputs": [{"type": "string"}], "stateMutability": "view"}]
    contract = w3.eth.contract(address=cast(ChecksumAddress, token), abi=abi)
    if not w3.eth.get_code(cast(ChecksumAddress, token)):
        raise InvalidInputError("--token", token, "the address of an ERC-20 contract", "this address has no code on this chain")
    try:
        decimals = int(contract.functions.decimals().call())
    except Exception:  # noqa: BLE001
        raise InvalidInputError("--token", token, "an ERC-20 with decimals()",
                                "name the token in a policy file's tokens table and pass --policy") from None
    try:
        symbol = str(contract.functions.symbol().call())
    except Exception:  # noqa: BLE001
        symbol = None
    return decimals, symbol


# --------------------------------------------------------------------------- audit / watch


def _thresholds(ctx: Context):
    from dataclasses import replace

    from smartkeys.audit import AuditThresholds

    a = ctx.args
    checks: dict[str, tuple[Any, str, Any, Any]] = {  # value, flag, check (None: a duration), expected
        "budget_nearly_used": (a.budget_warn, "--budget-warn", lambda v: 0 < v <= 1, "a fraction in (0, 1], e.g. 0.8"),
        "expiry_soon_s": (a.expiry_warn, "--expiry-warn", None, None),
        "burst_factor": (a.burst_factor, "--burst-factor", lambda v: v > 1, "a factor above 1, e.g. 5"),
        "burst_min_uses": (a.burst_min_uses, "--burst-min-uses", lambda v: v >= 1, "a whole number >= 1"),
        "edge_fraction": (a.edge_fraction, "--edge-fraction", lambda v: 0 < v <= 1, "a fraction in (0, 1], e.g. 0.9"),
    }
    values = {}
    for name, (value, flag, ok, expected) in checks.items():
        if value is None:
            continue
        if name == "expiry_soon_s":
            from smartkeys.policy import parse_duration

            value = parse_duration(value, flag)
        elif not ok(value):
            raise InvalidInputError(flag, value, expected, f"e.g. {flag} {expected.split('e.g. ')[-1]}")
        values[name] = value
    return replace(AuditThresholds(), **values)


def cmd_audit(ctx: Context) -> Result:
    from smartkeys.audit import build_audit

    thresholds = _thresholds(ctx)
    to_block: Any = ctx.args.to_block
    if to_block != "latest":
        try:
            to_block = int(to_block)
        except ValueError:
            raise InvalidInputError("--to-block", to_block, "a block number or 'latest'", "e.g. --to-block 1200") from None
    _check_from_block(ctx)
    if ctx.args.plot and not ctx.args.plot.lower().endswith(".png"):
        raise InvalidInputError("--plot", ctx.args.plot, "a .png file name", "e.g. --plot audit.png")
    account = ctx.account_address()
    w3 = ctx.w3()
    with ctx.ui.progress("reading the account's logs"):
        report = build_audit(w3, account, from_block=ctx.args.from_block, to_block=to_block,
                             journal=journal_for(ctx), thresholds=thresholds, names=_address_names(ctx))
    files: dict[str, str] = {}
    if ctx.args.csv:
        path = ctx.path(ctx.args.csv)
        with open(path, "w", newline="", encoding="utf-8") as fp:
            report.write_csv(fp)
        files["csv"] = str(path)
    if ctx.args.plot:
        plot_path = ctx.path(ctx.args.plot)
        with ctx.ui.progress("plotting"):
            report.plot(str(plot_path))
        files["plot"] = str(plot_path)
    doc = report.to_dict()
    _print_audit(ctx, report, doc["sessions"])
    for kind, written in files.items():
        ctx.ui.info(f"wrote {kind} to {written}")
    doc["files"] = files
    return EXIT_OK, doc


def _print_audit(ctx: Context, report, docs=()) -> None:
    ui = ctx.ui
    ui.print(f"audit of {report.account} on chain {report.chain_id}, blocks {report.from_block}..{report.to_block} "
             f"(epoch {report.epoch})")
    if not report.sessions:
        ui.print("no sessions granted in this range")
        return
    rows = []
    for s in report.sessions:
        status = s.status
        if s.revocation is not None and s.revocation.kind in ("rotated", "renewed"):
            status = s.revocation.kind  # revoked by its successor, which carries on its counters
        if s.status in ("active", "not-yet-valid") and s.policy.valid_until > report.now:
            from smartkeys.refusals import duration_text

            status += f" ({duration_text(s.policy.valid_until - report.now)} left)"
        rows += _session_rows([_hex(s.session_id)[:18] + "…", s.key, status, _uses_text(s.uses, s.max_uses),
                               len(s.refusals)], s.assets, report.tokens, left=True)
    ui.print()
    ui.table(["SESSION", "KEY", "STATUS", "USES", "REFUSED", "ASSET", "SPENT", "CAP", "LEFT"], rows)
    for s in report.sessions:
        if s.policy.allow_uncapped_assets:
            ui.print(f"WARNING: session {_hex(s.session_id)[:18]}… ({s.status}) has allow_uncapped_assets: its key "
                     "could move assets that no cap limits, and this audit shows only what the caps measure")
    _print_rules(ctx, report.sessions, docs, blank=True)
    flags = report.flags
    ui.print()
    if flags:
        ui.print(f"{len(flags)} flag(s):")
        ui.table(["FLAG", "SESSION", "MESSAGE"], [[f.code, _hex(f.session_id)[:18] + "…", f.message] for f in flags],
                 indent="  ")
    else:
        ui.print("no flags")
    ui.print()
    ui.print("timeline:")
    ui.table(["TIME", "BLOCK", "KIND", "SESSION", "WHAT"],
             [[_utc(e.time), e.block_number if e.block_number is not None else "-", e.kind,
               (_hex(e.session_id) or "")[:14], _entry_text(report, e)] for e in report.entries], indent="  ")


def _entry_text(report, e) -> str:
    parts = [c.label for c in e.calls]
    parts += [report.format_amount(a, v) for a, v in e.charges.items() if v]
    if e.note:
        parts.append(e.note)
    if e.flags:
        parts.append("flags: " + ", ".join(f.code for f in e.flags))
    return "; ".join(parts)


def cmd_watch(ctx: Context) -> Result:
    import threading

    from smartkeys.audit import watch

    thresholds = _thresholds(ctx)
    if ctx.args.interval <= 0:
        raise InvalidInputError("--interval", ctx.args.interval, "a positive number of seconds", "e.g. --interval 2")
    account = ctx.account_address()
    w3 = ctx.w3()
    stop = getattr(ctx, "stop_event", None) or threading.Event()
    ctx.ui.info(f"watching {account} (Ctrl-C to stop)")
    count = 0
    names = _Names(w3)
    try:
        for entry in watch(w3, account, from_block=ctx.args.from_block, poll_interval=ctx.args.interval, stop=stop,
                           journal=journal_for(ctx), thresholds=thresholds):
            count += 1
            if ctx.ui.json_mode:
                ctx.ui.emit_json_line(entry.to_dict())
            else:
                ctx.ui.print(f"{_utc(entry.time)}  block {entry.block_number if entry.block_number is not None else '-'}"
                             f"  {entry.kind:<10} {(_hex(entry.session_id) or '')[:14]:<14}  "
                             f"{_entry_text(names.seeing(entry.charges), entry)}")
                ctx.ui.out.flush()
            if ctx.args.max_events and count >= ctx.args.max_events:
                break
    except KeyboardInterrupt:
        ctx.ui.info(f"stopped after {count} event(s)")
    return EXIT_OK, None  # type: ignore[return-value]  # entries were streamed


class _Names:
    """Amounts of the watched entries in human units, with token names looked up once each."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.cache: dict[str, tuple[str, int]] = {}
        self.tokens: dict[str, tuple[str, int]] = {}

    def seeing(self, assets) -> _Names:
        self.tokens = _token_names(self.w3, assets, self.cache)
        return self

    def format_amount(self, asset: str, amount: int) -> str:
        from smartkeys.audit import format_asset

        return format_asset(asset, amount, self.tokens)
