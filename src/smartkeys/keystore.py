"""Session keys and encrypted keystores.

A session key is an agent's key: it must never show up in logs, reprs, exceptions or serialised objects.

- :func:`generate_key` returns a :class:`SessionKey`, which wraps an ``eth_account`` ``LocalAccount``:
  sign through ``key.account``; its ``repr``/``str`` show only the address; pickling raises; the raw key is
  reachable only through the explicitly named :meth:`SessionKey.export_private_key_hex`.
- :func:`save_keystore` writes a Web3 Secret Storage v3 file (``Account.encrypt(..., kdf="scrypt")``)
  atomically, mode 0600, never over an existing file unless asked.
- :func:`load_keystore` refuses files other users may read or write, plaintext key files and wrong passwords,
  each with its own error.
- :func:`load_key_from_env` reads a hex key injected by a secrets runtime (``SMARTKEYS_SESSION_KEY``).

Errors::

    SmartKeysError
    └── KeystoreError                  .path (may be None)
        ├── KeystoreExistsError        refusing to overwrite (+FileExistsError)
        ├── InsecureKeystoreError      group/other permission bits set: chmod 600 PATH
        ├── PlaintextKeyError          an unencrypted key file
        ├── WrongPasswordError         MAC mismatch
        └── KeyEnvError                variable missing or malformed

Messages name paths, addresses and variables, never key material.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from eth_account import Account
from eth_account.signers.local import LocalAccount

from smartkeys._secrets import secret_frames_dropped
from smartkeys.errors import InvalidInputError, SmartKeysError

__all__ = [
    "DEFAULT_ENV_VAR",
    "DEFAULT_SCRYPT_N",
    "InsecureKeystoreError",
    "KeyEnvError",
    "KeystoreError",
    "KeystoreExistsError",
    "PlaintextKeyError",
    "SessionKey",
    "WrongPasswordError",
    "check_keystore_params",
    "generate_key",
    "load_key_from_env",
    "load_keystore",
    "read_keystore_json",
    "save_keystore",
]

log = logging.getLogger(__name__)

DEFAULT_ENV_VAR = "SMARTKEYS_SESSION_KEY"
#: scrypt work factor written by :func:`save_keystore` (geth's "standard" setting).
DEFAULT_SCRYPT_N = 2**18
_MIN_SCRYPT_N = 2**14
_MAX_KEYSTORE_BYTES = 64 * 1024
_HEX_KEY_RE = re.compile(r"^(0[xX])?[0-9a-fA-F]{64}$")


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


class KeystoreError(SmartKeysError):
    """A key file or key source could not be used safely. ``.path`` names the file when there is one."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(message)


class KeystoreExistsError(KeystoreError, FileExistsError):
    """:func:`save_keystore` would overwrite an existing file (pass ``overwrite=True`` to allow it)."""


class InsecureKeystoreError(KeystoreError):
    """The key file is readable or writable by group or others."""


class PlaintextKeyError(KeystoreError):
    """The file holds an unencrypted private key."""


class WrongPasswordError(KeystoreError):
    """The password does not decrypt the keystore (MAC mismatch)."""


class KeyEnvError(KeystoreError):
    """The environment variable holding the session key is missing or malformed."""

    def __init__(self, message: str, *, var: str) -> None:
        self.var = var
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# SessionKey
# --------------------------------------------------------------------------------------------


class SessionKey:
    """A session key: an ``eth_account`` ``LocalAccount`` that keeps its secret out of sight.

    ``repr``/``str`` show the address only; pickling and copying raise :class:`TypeError`;
    ``json.dumps`` fails as for any object. Sign with ``key.account`` (``sign_message``,
    ``sign_transaction``, ``unsafe_sign_hash`` or pass it to :class:`~smartkeys.account.SessionAgent`).
    """

    __slots__ = ("_account",)
    _account: LocalAccount  # set once in __init__ (object.__setattr__: the class refuses assignment)

    def __init__(self, account: LocalAccount) -> None:
        if not isinstance(account, LocalAccount):
            raise InvalidInputError("account", type(account).__name__, "an eth_account LocalAccount", "use generate_key() or load_keystore()")
        object.__setattr__(self, "_account", account)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("SessionKey is immutable")

    @property
    def address(self) -> str:
        """The key's checksummed address."""
        return self._account.address

    @property
    def account(self) -> LocalAccount:
        """The wrapped ``LocalAccount``, for signing. Do not log or serialise it."""
        return self._account

    def export_private_key_hex(self) -> str:
        """The raw private key as ``0x``-prefixed hex. Only for handing the key to a secrets store."""
        return "0x" + bytes(self._account.key).hex()

    def __repr__(self) -> str:
        return f"SessionKey(address={self.address})"

    def __str__(self) -> str:
        return self.address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SessionKey) and other.address == self.address

    def __hash__(self) -> int:
        return hash(("SessionKey", self.address))

    def _refuse(self, *_: Any) -> NoReturn:
        raise TypeError(
            f"SessionKey({self.address}) cannot be pickled or copied: it holds a private key; "
            "save it with smartkeys.keystore.save_keystore() instead"
        )

    __reduce__ = _refuse
    __reduce_ex__ = _refuse
    __getstate__ = _refuse
    __copy__ = _refuse
    __deepcopy__ = _refuse


def generate_key() -> SessionKey:
    """A fresh random session key (``os.urandom`` through eth-account)."""
    key = SessionKey(Account.create())
    log.debug("generated session key %s", key.address)
    return key


# --------------------------------------------------------------------------------------------
# keystores
# --------------------------------------------------------------------------------------------


def _check_password(password: Any) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidInputError(
            "password", password, "a non-empty text password", "pass the keystore password as a str", secret=True
        )
    return password


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@secret_frames_dropped
def save_keystore(
    key: SessionKey | LocalAccount,
    path: str | os.PathLike[str],
    password: str,
    *,
    overwrite: bool = False,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> Path:
    """Encrypt ``key`` (Web3 Secret Storage v3, scrypt) and write it to ``path`` atomically, mode 0600.

    The file is written to a temporary file in the same directory (created ``O_CREAT | O_EXCL`` with mode
    0600, fsynced) and then linked into place, so ``path`` is either absent or complete. An existing
    ``path`` is refused with :class:`KeystoreExistsError` unless ``overwrite`` is True. ``scrypt_n`` is the
    scrypt work factor (a power of two, at least 2**14; lower it only in tests).
    """
    if isinstance(key, LocalAccount):
        key = SessionKey(key)
    if not isinstance(key, SessionKey):
        raise InvalidInputError("key", type(key).__name__, "a SessionKey", "use generate_key() or load_keystore()")
    password = _check_password(password)
    if isinstance(scrypt_n, bool) or not isinstance(scrypt_n, int) or scrypt_n < _MIN_SCRYPT_N or scrypt_n & (scrypt_n - 1):
        raise InvalidInputError("scrypt_n", scrypt_n, f"a power of two >= {_MIN_SCRYPT_N}", f"use the default {DEFAULT_SCRYPT_N}")
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise KeystoreError(f"cannot write keystore {target}: directory {directory} does not exist; fix: create it first", path=target)
    if target.exists() and not overwrite:
        raise KeystoreExistsError(
            f"refusing to overwrite existing file {target}; fix: pick another path or pass overwrite=True", path=target
        )

    keyfile = Account.encrypt(key.account.key, password, kdf="scrypt", iterations=scrypt_n)
    data = json.dumps(keyfile).encode()

    tmp = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # exact, whatever the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic and refuses to clobber
            except FileExistsError:
                raise KeystoreExistsError(
                    f"refusing to overwrite existing file {target}; fix: pick another path or pass overwrite=True",
                    path=target,
                ) from None
            except OSError:  # pragma: no cover - filesystems without hard links
                if target.exists():
                    raise KeystoreExistsError(f"refusing to overwrite existing file {target}", path=target) from None
                os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(directory)
    log.debug("saved keystore for %s to %s", key.address, target)
    return target


def _looks_plaintext(text: str, parsed: Any) -> bool:
    if _HEX_KEY_RE.match(text.strip()):
        return True
    if isinstance(parsed, str) and _HEX_KEY_RE.match(parsed.strip()):
        return True
    if isinstance(parsed, dict):
        lowered = {k.lower().replace("_", "") for k in parsed if isinstance(k, str)}
        if lowered & {"privatekey", "secretkey", "key"}:
            return True
    return False


def _read_keystore_json(target: Path) -> tuple[Any, str]:
    """``(parsed JSON or None, text)`` of a keystore file, read through :mod:`smartkeys.safe_files`
    (regular file, at most 64 KiB, UTF-8, bounded nesting); other failures raise :class:`KeystoreError`."""
    from smartkeys.safe_files import FileInputError, parse_json, read_bytes

    try:
        raw = read_bytes(target, kind="keystore", max_bytes=_MAX_KEYSTORE_BYTES)
    except FileInputError as exc:
        raise KeystoreError(str(exc), path=target) from None
    text = raw.decode("utf-8", errors="replace")
    try:
        return parse_json(text, path=target, kind="keystore", max_depth=8, max_values=1000), text
    except FileInputError as exc:
        if exc.reason == "syntax":
            return None, text  # not JSON: maybe a plaintext hex key, told apart by the caller
        raise KeystoreError(str(exc), path=target) from None


def read_keystore_json(path: str | os.PathLike[str]) -> Any:
    """The public JSON of a keystore file, without decrypting anything (for its ``address``, ``id``, KDF).

    Read through :mod:`smartkeys.safe_files`: a regular file of at most 64 KiB, UTF-8, nested at most 8
    levels. Raises :class:`KeystoreError` naming the file otherwise, or if it is not JSON.
    """
    target = Path(path)
    parsed, _ = _read_keystore_json(target)
    if parsed is None:
        raise KeystoreError(f"{target} is not JSON; fix: point it at a Web3 Secret Storage v3 keystore", path=target)
    return parsed


# Key-derivation bounds, checked before any derivation: a hostile keystore could otherwise make scrypt or
# PBKDF2 run for minutes or allocate gigabytes. The ceiling is this module's own default (scrypt n=2**18,
# r=8, p=1: 256 MiB, about a second), which also admits geth's "light" setting (n=2**12, r=8, p=6).
MAX_SCRYPT_N = 2**18
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16
_MAX_SCRYPT_COST = 2**18 * 8  # n * r * p: time; n * r: memory (128 * n * r bytes)
MAX_PBKDF2_ITERATIONS = 2**20
_HEX_FIELDS = {"salt": (16, 64), "iv": (16, 16), "ciphertext": (32, 32), "mac": (32, 32)}  # bytes: (min, max)


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def check_keystore_params(data: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Refuse a v3 keystore whose KDF or cipher parameters are outside sane bounds, before deriving anything.

    Accepted: ``kdf`` ``scrypt`` with ``n`` a power of two in [2, :data:`MAX_SCRYPT_N`], ``r`` in
    [1, :data:`MAX_SCRYPT_R`], ``p`` in [1, :data:`MAX_SCRYPT_P`], ``n*r*p`` and ``n*r`` at most 2**21 (the
    default's cost: 256 MiB); or ``pbkdf2`` with ``prf`` ``hmac-sha256`` and ``c`` in
    [1, :data:`MAX_PBKDF2_ITERATIONS`]; ``dklen`` 32; cipher ``aes-128-ctr``; hex ``salt`` (16-64 bytes),
    ``iv`` (16), ``ciphertext`` (32), ``mac`` (32). Raises :class:`KeystoreError` naming the field and the fix.
    Source: Web3 Secret Storage Definition (ethereum.org), geth's keystore parameters.
    """
    where = f"keystore {path}" if path is not None else "keystore"

    def refuse(field: str, what: str) -> NoReturn:
        raise KeystoreError(f"{where}: crypto.{field} {what}; fix: re-create the keystore with save_keystore() "
                            "(or `smartkeys keys import`)", path=path)

    crypto = data.get("crypto") or data.get("Crypto")
    if not isinstance(crypto, Mapping):
        refuse("", "is missing")
    kdf, params = crypto.get("kdf"), crypto.get("kdfparams")
    if not isinstance(params, Mapping):
        refuse("kdfparams", "is missing or not an object")
    if params.get("dklen") != 32:
        refuse("kdfparams.dklen", "must be 32")
    if kdf == "scrypt":
        n, r, p = (_positive_int(params.get(k)) for k in ("n", "r", "p"))
        if n is None or n < 2 or n & (n - 1) or n > MAX_SCRYPT_N:
            refuse("kdfparams.n", f"must be a power of two between 2 and {MAX_SCRYPT_N} (2**18)")
        if r is None or r > MAX_SCRYPT_R:
            refuse("kdfparams.r", f"must be between 1 and {MAX_SCRYPT_R}")
        if p is None or p > MAX_SCRYPT_P:
            refuse("kdfparams.p", f"must be between 1 and {MAX_SCRYPT_P}")
        if n * r * p > _MAX_SCRYPT_COST or n * r > _MAX_SCRYPT_COST:
            refuse("kdfparams", f"n*r*p = {n * r * p} asks for more work than {_MAX_SCRYPT_COST} (scrypt n=2**18, r=8, p=1)")
    elif kdf == "pbkdf2":
        if params.get("prf") != "hmac-sha256":
            refuse("kdfparams.prf", "must be hmac-sha256")
        c = _positive_int(params.get("c"))
        if c is None or c > MAX_PBKDF2_ITERATIONS:
            refuse("kdfparams.c", f"must be between 1 and {MAX_PBKDF2_ITERATIONS} (2**20)")
    else:
        refuse("kdf", "must be scrypt or pbkdf2")
    if crypto.get("cipher") != "aes-128-ctr":
        refuse("cipher", "must be aes-128-ctr")
    cipherparams = crypto.get("cipherparams")
    fields = {"salt": params.get("salt"), "ciphertext": crypto.get("ciphertext"), "mac": crypto.get("mac"),
              "iv": cipherparams.get("iv") if isinstance(cipherparams, Mapping) else None}
    for name, value in fields.items():
        low, high = _HEX_FIELDS[name]
        text = value.removeprefix("0x") if isinstance(value, str) else ""
        if not (2 * low <= len(text) <= 2 * high) or len(text) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", text):
            refuse(name, f"must be {low if low == high else f'{low}-{high}'} bytes of hex")


@secret_frames_dropped
def load_keystore(path: str | os.PathLike[str], password: str) -> SessionKey:
    """Decrypt the keystore at ``path``.

    Refuses (before reading anything secret) files with any group/other permission bit
    (:class:`InsecureKeystoreError`, fix ``chmod 600 PATH``), plaintext key files
    (:class:`PlaintextKeyError`) and wrong passwords (:class:`WrongPasswordError`).
    """
    password = _check_password(password)
    target = Path(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {target}; fix: check the path", path=target) from None
    except OSError as exc:  # a symlink loop, a name too long, a directory we may not search
        raise KeystoreError(f"cannot use keystore {target} ({exc.strerror or type(exc).__name__}); fix: check the path",
                            path=target) from None
    if not stat.S_ISREG(info.st_mode):
        raise KeystoreError(f"{target} is not a regular file; fix: point it at the keystore file", path=target)
    mode = stat.S_IMODE(info.st_mode)
    if os.name != "nt" and mode & 0o077:
        raise InsecureKeystoreError(
            f"keystore {target} has mode {mode:04o}: group or others may read or write it; "
            f"fix: chmod 600 {target}",
            path=target,
        )
    parsed, text = _read_keystore_json(target)
    if _looks_plaintext(text, parsed):
        raise PlaintextKeyError(
            f"{target} holds an unencrypted private key; fix: import it into an encrypted keystore "
            "(save_keystore(SessionKey(Account.from_key(...)), path, password)) and delete the plaintext file",
            path=target,
        )
    del text
    if not isinstance(parsed, dict) or parsed.get("version") != 3 or not isinstance(parsed.get("crypto") or parsed.get("Crypto"), dict):
        raise KeystoreError(
            f"{target} is not a Web3 Secret Storage v3 keystore (JSON with version 3 and a crypto section)", path=target
        )
    check_keystore_params(parsed, target)

    failure: str | None = None
    secret: bytes | None = None
    try:
        secret = bytes(Account.decrypt(parsed, password))
    except Exception as exc:  # noqa: BLE001 - mapped to our errors below, outside this block
        failure = "password" if "MAC mismatch" in str(exc) else type(exc).__name__
    if failure == "password":
        raise WrongPasswordError(f"wrong password for keystore {target}", path=target)
    if failure is not None or secret is None:
        raise KeystoreError(f"keystore {target} is malformed ({failure}); fix: re-create it with save_keystore()", path=target)

    account = _account_from_secret(secret)
    del secret
    if account is None:
        raise KeystoreError(f"keystore {target} does not hold a valid secp256k1 key", path=target)
    stored = parsed.get("address")
    if isinstance(stored, str) and stored.lower().removeprefix("0x") != account.address.lower()[2:]:
        raise KeystoreError(
            f"keystore {target} says address 0x{stored.removeprefix('0x')[:40]} but holds the key of {account.address}; "
            "the file was altered",
            path=target,
        )
    key = SessionKey(account)
    log.debug("loaded keystore %s for %s", target, key.address)
    return key


def _account_from_secret(secret: bytes) -> LocalAccount | None:
    """``Account.from_key`` whose errors (which may quote the key) never escape."""
    try:
        return Account.from_key(secret)
    except Exception:  # noqa: BLE001
        return None


@secret_frames_dropped
def load_key_from_env(var: str = DEFAULT_ENV_VAR, *, environ: Any = None) -> SessionKey:
    """The session key in environment variable ``var`` (hex, with or without ``0x``).

    For runtimes that inject secrets. Missing or malformed values raise :class:`KeyEnvError`; the value is
    never echoed.
    """
    env = os.environ if environ is None else environ
    raw = env.get(var)
    if raw is None or not raw.strip():
        raise KeyEnvError(
            f"environment variable {var} is not set; fix: inject the session key (0x + 64 hex digits) as {var}, "
            "or use load_keystore()",
            var=var,
        )
    text = raw.strip()
    if not _HEX_KEY_RE.match(text):
        raise KeyEnvError(
            f"environment variable {var} is not a private key: expected 64 hex digits (optionally 0x-prefixed), "
            f"got {len(text)} characters (value not shown)",
            var=var,
        )
    account = _account_from_secret(bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text))
    if account is None:
        raise KeyEnvError(f"environment variable {var} is not a valid secp256k1 private key (value not shown)", var=var)
    key = SessionKey(account)
    log.debug("loaded session key %s from environment variable %s", key.address, var)
    return key
