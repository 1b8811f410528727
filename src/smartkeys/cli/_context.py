"""What every command shares: configuration, the chain connection, keys, passwords, and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from eth_typing import ChecksumAddress
from web3 import Web3

from smartkeys._secrets import secret_frames_dropped
from smartkeys.cli._ui import UI, Aborted
from smartkeys.config import Config, redact_url, resolve_config
from smartkeys.errors import InvalidInputError, SmartKeysError

__all__ = [
    "EXIT_ABORTED",
    "EXIT_ERROR",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "CommandError",
    "Context",
    "NetworkError",
    "exit_code_for",
    "is_insufficient_funds",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NETWORK = 4
EXIT_ABORTED = 5

PASSWORD_ENV = "SMARTKEYS_PASSWORD"
SESSION_KEY_ENV = "SMARTKEYS_SESSION_KEY"
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_RPC_TIMEOUT = 30
_PASSWORD_FILE_MAX_BYTES = 4096


class CommandError(SmartKeysError):
    """A command cannot go on; ``exit_code`` says why (usage by default) and ``hint`` how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_USAGE) -> None:
        self.hint = hint
        self.exit_code = exit_code
        super().__init__(message + (f"; fix: {hint}" if hint else ""))


from smartkeys.errors import NetworkError  # noqa: E402 - re-exported: exit code 4


def _network_exceptions() -> tuple[type[BaseException], ...]:

    import requests
    from web3 import exceptions as w3e

    from smartkeys.bundler import BundlerConnectionError, BundlerRPCError
    from smartkeys.errors import NonceConflictError, OutcomeUnknownError

    names = ("ProviderConnectionError", "TimeExhausted", "Web3RPCError", "TooManyRequests", "BadResponseFormat",
             "BadFunctionCallOutput")
    found = tuple(getattr(w3e, n) for n in names if hasattr(w3e, n))
    return (NetworkError, OutcomeUnknownError, NonceConflictError, requests.RequestException, ConnectionError,
            TimeoutError, BundlerConnectionError, BundlerRPCError, json.JSONDecodeError, *found)


#: How nodes say "the sender cannot pay": geth/anvil send ("insufficient funds for gas * price + value"),
#: eth-tester ("Sender … cannot afford txn gas"); anvil's estimate for an empty sender says
#: "gas required exceeds allowance: 0" (the allowance is what the balance buys).
_NO_FUNDS = re.compile(r"insufficient funds|cannot afford txn", re.IGNORECASE)
_NO_ALLOWANCE = re.compile(r"gas required exceeds allowance", re.IGNORECASE)
_LOW_BALANCE_WEI = 10**16  # below 0.01 ETH, "exceeds allowance" is the balance's doing, not the block gas limit's


def is_insufficient_funds(exc: BaseException, balance: int | None = None) -> bool:
    """Whether ``exc`` (a node's refusal of a transaction) means its sender has too little ETH (``balance``
    wei, when known)."""
    from smartkeys.errors import RevertError

    if isinstance(exc, (RevertError, CommandError)):
        return False
    text = str(exc)
    if _NO_FUNDS.search(text):
        return True
    return bool(_NO_ALLOWANCE.search(text)) and balance is not None and balance < _LOW_BALANCE_WEI


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an exception (see ``smartkeys --help``)."""
    from smartkeys.errors import (
        ChainMismatchError,
        NoSessionAllowsError,
        NotDelegatedError,
        RevertError,
        TransactionFailedError,
        UnknownImplementationError,
        UserOperationError,
    )
    from smartkeys.keystore import KeystoreError
    from smartkeys.logs import LogQueryError
    from smartkeys.policy import PolicyIntegrityError, PolicyNotFoundError

    if isinstance(exc, (Aborted, KeyboardInterrupt)):
        return EXIT_ABORTED
    if isinstance(exc, CommandError):
        return exc.exit_code
    if isinstance(exc, (InvalidInputError, KeystoreError, ChainMismatchError, PolicyNotFoundError, NotDelegatedError,
                        UnknownImplementationError, LogQueryError,
                        PolicyIntegrityError, FileNotFoundError, IsADirectoryError, PermissionError)):
        return EXIT_USAGE
    from smartkeys.errors import DuplicateIntentError, SignerResponseError, SignerUnsupportedError

    if isinstance(exc, SignerUnsupportedError):  # this signer cannot sign that payload: configuration
        return EXIT_USAGE
    if isinstance(exc, SignerResponseError):  # the signer declined or answered unusably: nothing was sent
        return EXIT_REFUSED

    if isinstance(exc, (RevertError, UserOperationError, TransactionFailedError, NoSessionAllowsError,
                        DuplicateIntentError)):
        return EXIT_REFUSED
    if isinstance(exc, _network_exceptions()):
        return EXIT_NETWORK
    return EXIT_ERROR


class Context:
    """One command invocation: parsed flags, environment, resolved configuration, UI, chain connection."""

    def __init__(self, args: argparse.Namespace, env: Mapping[str, str], ui: UI, *, web3: Web3 | None,
                 cwd: str | os.PathLike[str]) -> None:
        self.args = args
        self.env = env
        self.ui = ui
        self.cwd = Path(cwd)
        self._injected = web3
        self._w3: Web3 | None = None
        self.config: Config = resolve_config(args, env, self.cwd)

    # -- chain -------------------------------------------------------------------------

    @property
    def rpc_label(self) -> str:
        return "injected Web3" if self._injected is not None else redact_url(self.config.rpc_url.value)

    def w3(self) -> Web3:
        """The connected ``Web3``; its chain id checked against ``chain_id`` when configured."""
        if self._w3 is not None:
            return self._w3
        from smartkeys.tx import check_chain_id

        w3 = self._injected
        if w3 is None:
            from smartkeys.rpc import connect

            w3 = connect(self.config.rpc_url.value, timeout=_RPC_TIMEOUT)  # typed faults, safe retries, deadline
        try:
            with self.ui.progress(f"connecting to {self.rpc_label}"):
                check_chain_id(w3, self.config.chain_id.value)
        except SmartKeysError:
            raise
        except Exception as exc:  # noqa: BLE001 - an injected provider's fault: mapped, with the cause
            if exit_code_for(exc) != EXIT_NETWORK:
                raise
            if isinstance(exc, (OSError, TimeoutError)):  # ConnectionError, requests' faults: no answer
                raise NetworkError(
                    f"cannot reach the RPC node at {self.rpc_label} ({type(exc).__name__}); "
                    "fix: start a node (e.g. `smartkeys node`) or set --rpc-url / SMARTKEYS_RPC_URL"
                ) from exc
            raise NetworkError(  # it answered, with an error or something unusable: "start a node" would mislead
                f"the RPC node at {self.rpc_label} answered eth_chainId with an error or an unusable answer "
                f"({type(exc).__name__}: {str(exc)[:120]}); fix: check that --rpc-url / SMARTKEYS_RPC_URL points "
                "at an Ethereum JSON-RPC node, and its logs"
            ) from exc
        self._w3 = w3
        return w3

    @property
    def chain_id(self) -> int:
        return int(self.w3().eth.chain_id)

    @contextmanager
    def gas_payer(self, address: str, role: str, *, alternative: str = "") -> Iterator[None]:
        """Turn a node's "insufficient funds" refusal of what the block sends into an exit-2 error that names
        ``address`` (the ``role`` that pays the gas: the owner, the session key) and the fix: fund it."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is the funds refusal
            from smartkeys.errors import InsufficientFundsError

            if isinstance(exc, InsufficientFundsError) and exc.address == address:
                pass  # the SDK's own check: said again below with the role and the alternative
            elif isinstance(exc, SmartKeysError) and not isinstance(exc, NetworkError):
                raise
            try:
                wei: int | None = int(self.w3().eth.get_balance(cast(ChecksumAddress, address)))
            except Exception:  # noqa: BLE001 - diagnostics only
                wei = None
            if not isinstance(exc, InsufficientFundsError) and not is_insufficient_funds(exc, wei):
                raise
            balance = "unknown" if wei is None else f"{Decimal(wei) / Decimal(10**18)} ETH"
            raise CommandError(
                f"{role} {address} cannot pay for gas (balance {balance}); nothing was sent",
                hint=f"fund {address} with ETH, then run the command again{alternative}",
            ) from None

    # -- files and keys ----------------------------------------------------------------

    def path(self, value: str) -> Path:
        return self.cwd / Path(value).expanduser()

    @property
    def keys_dir(self) -> Path:
        return Path(self.config.keys_dir.value)

    def find_keystore(self, ref: str, what: str) -> Path:
        """A keystore file named by path, by label (``<keys dir>/<label>.json``) or by address."""
        if _ADDRESS_RE.match(ref):
            for entry in keystore_entries(self.keys_dir):
                if entry["address"] and entry["address"].lower() == ref.lower():
                    return Path(entry["file"])
            raise CommandError(f"no keystore for address {ref} in {self.keys_dir} ({what})",
                               hint="run `smartkeys keys list`, or pass the keystore's path")
        candidates = [self.path(ref), self.keys_dir / ref, self.keys_dir / f"{ref}.json"]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise CommandError(f"no keystore {ref!r} ({what}): not a file, nor a label in {self.keys_dir}",
                           hint="check the path, or run `smartkeys keys list`")

    @secret_frames_dropped
    def password(self, what: str, *, twice: bool = False) -> str:
        """The keystore password: ``--password-file``, else ``SMARTKEYS_PASSWORD``, else a silent prompt."""
        file = getattr(self.args, "password_file", None)
        if file:
            from smartkeys.safe_files import FileInputError, read_text

            path = self.path(file)
            try:  # a regular file only: a FIFO would block, /dev/zero would never end
                text = read_text(path, kind="--password-file", max_bytes=_PASSWORD_FILE_MAX_BYTES)
            except FileInputError as exc:
                raise CommandError(f"cannot use --password-file {path}: {exc.problem}", hint=exc.hint) from None
            if os.name != "nt" and stat.S_IMODE(path.stat().st_mode) & 0o077:
                self.ui.info(f"warning: password file {path} is readable by others; chmod 600 {path}")
            password = text.rstrip("\r\n")
            if not password:
                raise CommandError(f"--password-file {path} is empty", hint="write the password on its first line")
            return password
        if self.env.get(PASSWORD_ENV):
            return self.env[PASSWORD_ENV]
        if not self.ui.interactive:
            raise CommandError(f"a password is needed for {what} and stdin is not a terminal",
                               hint=f"pass --password-file FILE or set {PASSWORD_ENV}")
        return self.ui.password(f"Password for {what}: ", twice=twice)

    def owner_keystore_path(self) -> Path:
        setting = self.config.keystore
        if not setting.value:
            raise CommandError("no owner keystore configured",
                               hint="pass --keystore FILE (or a label from `smartkeys keys list`), "
                                    "or set SMARTKEYS_KEYSTORE")
        return self.find_keystore(setting.value, "owner keystore")

    def remote_signer(self):
        """The owner's :class:`~smartkeys.signers.JsonRpcSigner` when ``signer_url`` is set, else None.
        Its account is ``account`` if set (the signer must serve it), else the signer's only account."""
        url = self.config.signer_url.value
        if not url:
            return None
        from smartkeys.signers import JsonRpcSigner, parse_signer_url

        api, endpoint = parse_signer_url(url)
        with self.ui.progress("asking the remote signer for its accounts"):
            return JsonRpcSigner(endpoint, self.config.account.value or None, api=api)

    @secret_frames_dropped
    def owner_key(self):
        """The owner's signer: the remote signer when ``signer_url`` is set (no keystore, no password), else
        the ``LocalAccount`` decrypted from the configured keystore (asks for its password)."""
        from smartkeys.keystore import load_keystore

        remote = self.remote_signer()
        if remote is not None:
            return remote
        path = self.owner_keystore_path()
        password = self.password(f"owner keystore {path.name}")  # this frame is dropped from any traceback
        with self.ui.progress("decrypting the owner keystore"):
            key = load_keystore(path, password)
        account_setting = self.config.account
        if account_setting.value and account_setting.value != key.address:
            raise CommandError(
                f"the owner keystore holds {key.address} but the account is {account_setting.value} "
                f"({account_setting.source})",
                hint="owner commands act on the keystore's own address: unset the account or fix the keystore",
            )
        return key.account

    def account_address(self) -> str:
        """The smartkeys account: ``account`` if set, else the owner keystore's address (read without a password),
        else the remote signer's account (``signer_url``)."""
        if self.config.account.value:
            return self.config.account.value
        if self.config.keystore.value:
            address = read_keystore_address(self.owner_keystore_path())
            if address:
                return address
        remote = self.remote_signer()
        if remote is not None:
            return remote.address
        raise CommandError("no account configured",
                           hint="pass --account 0x… (or set SMARTKEYS_ACCOUNT), configure the owner keystore, "
                                "or a remote signer (--signer-url)")


def read_keystore_address(path: Path) -> str | None:
    """The public ``address`` field of a keystore file (no decryption), checksummed, or None."""
    from smartkeys.keystore import KeystoreError, read_keystore_json

    try:
        data = read_keystore_json(path)
    except KeystoreError:
        return None
    address = data.get("address") if isinstance(data, dict) else None
    if isinstance(address, str) and re.fullmatch(r"(0x)?[0-9a-fA-F]{40}", address):
        return Web3.to_checksum_address("0x" + address.removeprefix("0x"))
    return None


def keystore_entries(keys_dir: Path) -> list[dict[str, Any]]:
    """Every ``*.json`` keystore in ``keys_dir``: label (file stem), address (public field), file, mode."""
    if not keys_dir.is_dir():
        return []
    out = []
    for path in sorted(keys_dir.glob("*.json")):
        if not path.is_file():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        out.append({
            "label": path.stem,
            "address": read_keystore_address(path),
            "file": str(path),
            "mode": f"{mode:04o}",
            "secure": not (mode & 0o077),
        })
    return out
