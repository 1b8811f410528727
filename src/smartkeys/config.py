"""Command-line configuration: flags > environment variables > project file > defaults.

:func:`resolve_config` is pure: it takes the parsed flags, an environment mapping and a working directory,
reads at most one file (``--config FILE``, else ``smartkeys.toml`` in ``cwd`` if present) and returns a
:class:`Config` whose every value carries its source (``"flag --rpc-url"``, ``"env SMARTKEYS_RPC_URL"``,
``"file ./smartkeys.toml"``, ``"default"``).

=================  ===================  ====================  =====================================
setting            flag                 environment           default
=================  ===================  ====================  =====================================
``rpc_url``        ``--rpc-url``        SMARTKEYS_RPC_URL     ``http://127.0.0.1:8545``
``chain_id``       ``--chain-id``       SMARTKEYS_CHAIN_ID    none (any chain; checked when set)
``home``           ``--home``           SMARTKEYS_HOME        ``~/.smartkeys``
``keys_dir``       ``--keys-dir``       SMARTKEYS_KEYS_DIR    ``<home>/keys``
``keystore``       ``--keystore``       SMARTKEYS_KEYSTORE    none (owner keystore: a path or a label)
``account``        ``--account``        SMARTKEYS_ACCOUNT     the owner keystore's address
``bundler_url``    ``--bundler-url``    SMARTKEYS_BUNDLER_URL none (self-bundled user operations)
``signer_url``     ``--signer-url``     SMARTKEYS_SIGNER_URL  none (the owner signs with its keystore)
=================  ===================  ====================  =====================================

The project file is TOML with these keys at top level (or under a ``[smartkeys]`` table). Relative paths in
it are relative to the file's directory. Secrets have no place in it: ``password``, ``private_key`` and the
like are refused, as are unknown keys (with a suggestion). A string value may name environment variables as
``${VAR}`` (``rpc_url = "https://eth.example/v2/${ALCHEMY_KEY}"``), expanded from the same environment; an unset
or empty variable is an error naming the entry and the variable, and ``$$`` is a literal ``$``.

``ETH_RPC_URL`` (the variable Foundry's tools read) is a fallback for ``rpc_url``: it is used only when no flag,
``SMARTKEYS_RPC_URL`` or file entry gives one, so a project file pointing at a local node wins over a
shell-wide mainnet URL.
"""

from __future__ import annotations

import difflib
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

from smartkeys._secrets import secret_frames_dropped
from smartkeys.encoding import checked_address
from smartkeys.errors import InvalidInputError

__all__ = [
    "CONFIG_FILE_NAME",
    "Config",
    "ConfigError",
    "DEFAULT_RPC_URL",
    "ENV_VARS",
    "FALLBACK_ENV_VARS",
    "Setting",
    "redact_url",
    "resolve_config",
]

CONFIG_FILE_NAME = "smartkeys.toml"
DEFAULT_RPC_URL = "http://127.0.0.1:8545"

#: setting -> environment variable
ENV_VARS: Mapping[str, str] = {
    "rpc_url": "SMARTKEYS_RPC_URL",
    "chain_id": "SMARTKEYS_CHAIN_ID",
    "home": "SMARTKEYS_HOME",
    "keys_dir": "SMARTKEYS_KEYS_DIR",
    "keystore": "SMARTKEYS_KEYSTORE",
    "account": "SMARTKEYS_ACCOUNT",
    "bundler_url": "SMARTKEYS_BUNDLER_URL",
    "signer_url": "SMARTKEYS_SIGNER_URL",
}
#: setting -> widely used environment variable, read after the project file (before the default)
FALLBACK_ENV_VARS: Mapping[str, str] = {"rpc_url": "ETH_RPC_URL"}
_FLAGS = {name: "--" + name.replace("_", "-") for name in ENV_VARS}
_URLS = ("rpc_url", "bundler_url", "signer_url")  # may carry credentials: printed redacted
_PATHS = ("home", "keys_dir")  # anchored to the working directory (flags, env) or the file's directory
_SECRET_WORDS = ("password", "passphrase", "private", "secret", "mnemonic", "seed")


class ConfigError(InvalidInputError):
    """A configuration value (flag, environment variable or file entry) is invalid. Exit code 2."""


@dataclass(frozen=True)
class Setting:
    """One resolved value and where it came from."""

    name: str
    value: Any
    source: str

    @property
    def is_set(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Config:
    """The resolved configuration. Holds no secrets (passwords and keys are never configuration)."""

    rpc_url: Setting
    chain_id: Setting
    home: Setting
    keys_dir: Setting
    keystore: Setting
    account: Setting
    bundler_url: Setting
    signer_url: Setting
    config_file: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def settings(self) -> list[Setting]:
        return [self.rpc_url, self.chain_id, self.home, self.keys_dir, self.keystore, self.account, self.bundler_url,
                self.signer_url]

    def to_dict(self) -> dict[str, Any]:
        """``{name: {"value": ..., "source": ...}}`` plus ``config_file``; safe to print."""
        out: dict[str, Any] = {}
        for s in self.settings():
            value = redact_url(s.value) if s.name in _URLS and s.value else s.value
            out[s.name] = {"value": _plain(value), "source": s.source}
        out["config_file"] = self.config_file
        return out


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def redact_url(url: str) -> str:
    """``url`` safe to print: providers put API keys in the userinfo, path or query, so only the scheme,
    host and port are kept (``https://eth.example/v2/KEY`` -> ``https://eth.example/***``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***"
    authority, slash, tail = rest.partition("/")
    query = "?" in authority
    authority = authority.split("?", 1)[0]
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    hidden = bool(tail.strip("/")) or query
    return f"{scheme}://{authority}" + ("/***" if hidden else slash)


def _get(args: Any, name: str) -> Any:
    if args is None:
        return None
    if isinstance(args, Mapping):
        return args.get(name)
    return getattr(args, name, None)


#: Largest configuration file read (it holds a handful of settings).
CONFIG_MAX_BYTES = 64 * 1024


@secret_frames_dropped  # a refused `password = ...` entry is in ``data``
def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    from smartkeys.safe_files import FileInputError, FileMissingError, load_file

    try:
        data = load_file(path, "TOML", kind="configuration file", max_bytes=CONFIG_MAX_BYTES, max_values=1_000)
    except FileMissingError:
        if explicit:
            raise ConfigError("--config", str(path), "an existing TOML file", "check the path") from None
        return {}
    except FileInputError as exc:  # special file, too large, not UTF-8, bad TOML, too deep, ...
        raise ConfigError("--config" if explicit else str(path), str(path),
                          f"a readable TOML configuration file, but {exc.problem}", exc.hint) from None
    if isinstance(data.get("smartkeys"), dict):
        extra = [k for k in data if k != "smartkeys"]
        if extra:
            raise ConfigError(f"{path}: {extra[0]}", extra[0], "every setting inside the [smartkeys] table",
                              "move it under [smartkeys]")
        data = data["smartkeys"]
    for key in data:
        if key in ENV_VARS:
            continue
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ConfigError(f"{path}: {key}", "<not shown>", "no secrets in the configuration file",
                              "remove it; pass passwords with --password-file or SMARTKEYS_PASSWORD")
        close = difflib.get_close_matches(key, list(ENV_VARS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(ENV_VARS)}"
        raise ConfigError(f"{path}: {key}", key, "a known setting", hint)
    return data


class _EnvTemplate(string.Template):
    """``${VAR}`` and ``$$`` only (string.Template's pattern, without the bare ``$VAR`` form, so a ``$`` in a
    URL is left alone); ``${`` without a valid name and a closing brace is invalid."""

    # text here: Template.__init_subclass__ compiles it into the Pattern that typeshed declares
    pattern: ClassVar[Any] = r"""
    \$(?:
      (?P<escaped>\$) |
      \{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\} |
      (?P<named>(?!)) |
      (?P<invalid>\{)
    )
    """


def _expand(value: Any, where: str, env: Mapping[str, str]) -> tuple[Any, list[str]]:
    """``value`` with ``${VAR}`` replaced from ``env``, and the names used. Non-strings are returned as they are."""
    if not isinstance(value, str) or "$" not in value:
        return value, []
    template = _EnvTemplate(value)
    names: list[str] = []
    for match in template.pattern.finditer(value):
        if match.group("invalid") is not None:
            raise ConfigError(where, value, "${NAME} with a name of letters, digits and _",
                              "close the brace, or write $$ for a literal $")
        name = match.group("braced")
        if name is not None:
            if not env.get(name, "").strip():
                raise ConfigError(where, "${" + name + "}", f"the environment variable {name} to be set",
                                  f"export {name}=..., or write the value in the file")
            names.append(name)
    return template.substitute(env), names


def _check(name: str, value: Any, where: str) -> Any:
    """Validate one raw value from ``where`` (a flag, variable or file entry)."""
    if value is None:
        return None
    if name == "chain_id":
        if isinstance(value, bool):
            raise ConfigError(where, value, "a positive chain id", "e.g. 1 (mainnet) or 31337 (anvil)")
        try:
            number = int(str(value).strip(), 0) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise ConfigError(where, value, "a positive chain id", "e.g. 1 (mainnet) or 31337 (anvil)") from None
        if number <= 0:
            raise ConfigError(where, value, "a positive chain id", "e.g. 1 (mainnet) or 31337 (anvil)")
        return number
    if not isinstance(value, str):
        raise ConfigError(where, value, "text", "quote the value")
    text = value.strip()
    if not text:
        return None
    if name == "account":
        try:
            return checked_address(text, where, allow_zero=False)
        except InvalidInputError as exc:
            raise ConfigError(where, text, exc.expected, exc.hint) from None
    if name == "signer_url":
        from smartkeys.signers import parse_signer_url

        try:
            parse_signer_url(text)
        except InvalidInputError as exc:
            raise ConfigError(where, redact_url(text), exc.expected, exc.hint) from None
        return text
    if name in _URLS:
        if "://" not in text:
            raise ConfigError(where, redact_url(text), "a URL like http://127.0.0.1:8545",
                              "add the scheme (http:// or https://)")
        return text
    return text


@secret_frames_dropped  # ``env`` may hold SMARTKEYS_PASSWORD / SMARTKEYS_SESSION_KEY
def resolve_config(args: Any, env: Mapping[str, str], cwd: str | os.PathLike[str]) -> Config:
    """Resolve every setting from ``args`` (flags: attributes or keys named as the settings, None when
    not given, plus ``config``), ``env`` and the project file. Raises :class:`ConfigError` (exit 2)."""
    cwd = Path(cwd)
    explicit = _get(args, "config")
    file_path = (cwd / Path(explicit).expanduser()) if explicit else cwd / CONFIG_FILE_NAME
    file_data = _read_file(file_path, explicit=bool(explicit))
    file_label = str(file_path) if (explicit or file_data or file_path.exists()) else None
    base = file_path.parent

    values: dict[str, Setting] = {}
    for name, var in ENV_VARS.items():
        flag_value = _get(args, name)
        if flag_value is not None:
            value, source = _check(name, flag_value, _FLAGS[name]), f"flag {_FLAGS[name]}"
            if name in _PATHS and value is not None:
                value = str(cwd / Path(value).expanduser())
        elif env.get(var, "").strip():
            value, source = _check(name, env[var], var), f"env {var}"
            if name in _PATHS and value is not None:
                value = str(cwd / Path(value).expanduser())
        elif name in file_data:
            where = f"{file_path}: {name}"
            raw, used = _expand(file_data[name], where, env)
            value, source = _check(name, raw, where), f"file {file_path}"
            if used:
                source += " with " + ", ".join("${" + n + "}" for n in used)
            if value is not None and (name in _PATHS or (name == "keystore" and ("/" in value or value.endswith(".json")))):
                value = str(base / Path(value).expanduser())
        elif env.get(FALLBACK_ENV_VARS.get(name, ""), "").strip():
            var = FALLBACK_ENV_VARS[name]
            value, source = _check(name, env[var], var), f"env {var}"
        else:
            value, source = None, "default"
        values[name] = Setting(name, value, source)

    if values["rpc_url"].value is None:
        values["rpc_url"] = Setting("rpc_url", DEFAULT_RPC_URL, "default")
    if values["home"].value is None:
        values["home"] = Setting("home", str(Path(env.get("HOME") or Path.home()) / ".smartkeys"), "default")
    if values["keys_dir"].value is None:
        values["keys_dir"] = Setting("keys_dir", str(Path(values["home"].value) / "keys"), "default (<home>/keys)")
    return Config(**cast(dict[str, Any], values), config_file=file_label)  # each key names a Setting field
