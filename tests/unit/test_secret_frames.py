"""A key or passphrase that fails to parse is nowhere in the exception: not in its message, not in any local
variable of any frame its traceback carries (error reporters such as Sentry record frame locals), not in a
chained ``__cause__``/``__context__``.

Each case feeds a distinctive secret through a real entry point with a realistic mistake (a typo, quotes, a
truncated key, a wrong password, a plaintext key file) and walks every frame of the traceback.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest
from eth_account import Account
from secret_leaks import leaks  # tests/secret_leaks.py

from smartkeys.errors import SmartKeysError


def _key_hex() -> str:
    return "0x" + bytes(Account.create().key).hex()


def _raised(func, *args, **kwargs) -> BaseException:
    with pytest.raises(SmartKeysError) as info:
        func(*args, **kwargs)
    return info.value


def test_the_walker_finds_a_secret_in_a_frame_local():
    """The check itself can fail: a parser (compiled outside the test files) that keeps the key in a local."""
    key = _key_hex()
    namespace: dict[str, Any] = {}
    exec(compile("def careless(text):\n    parsed = text.strip()\n    raise ValueError('bad key')\n",  # noqa: S102
                 "<careless parser>", "exec"), namespace)
    with pytest.raises(ValueError) as info:
        namespace["careless"](" " + key + " ")
    assert leaks(info.value, key) == ["local 'text' of careless (<careless parser>)",
                                      "local 'parsed' of careless (<careless parser>)"]


@pytest.mark.parametrize(
    "mistake",
    [
        lambda k: k[:-1],                      # one digit short
        lambda k: f'"{k}"',                    # quoted, as copied from a .env file
        lambda k: k + "z",                     # a stray character
        lambda k: k.replace("0x", "0x ", 1),   # a space inside
        lambda k: "0x" + "00" * 32,            # hex, but not a key (zero)
        lambda k: "0x" + "ff" * 32,            # hex, but above the curve order
    ],
    ids=["short", "quoted", "stray-char", "space", "zero", "above-order"],
)
def test_a_bad_key_in_the_environment_is_in_no_frame(mistake):
    from smartkeys.keystore import KeyEnvError, load_key_from_env

    value = mistake(_key_hex())
    secret = value.strip('"').replace(" ", "").removeprefix("0x")[:40]
    exc = _raised(load_key_from_env, "AGENT_KEY", environ={"AGENT_KEY": value, "OTHER": "x"})
    assert isinstance(exc, KeyEnvError) and exc.var == "AGENT_KEY"
    assert leaks(exc, secret) == []


def test_a_bad_deployer_key_in_the_environment_is_in_no_frame():
    from smartkeys.deploy import KEY_ENV_VAR, load_deployer_key

    value = _key_hex()[:-2] + "'"
    exc = _raised(load_deployer_key, None, environ={KEY_ENV_VAR: value})
    assert leaks(exc, value[2:40]) == []


def test_a_wrong_password_is_in_no_frame(tmp_path):
    from smartkeys.keystore import WrongPasswordError, generate_key, load_keystore, save_keystore

    path = save_keystore(generate_key(), tmp_path / "k.json", "the right one", scrypt_n=2**14)
    password = "wrong-" + secrets.token_hex(12)
    exc = _raised(load_keystore, path, password)
    assert isinstance(exc, WrongPasswordError)
    assert leaks(exc, password) == []


def test_a_plaintext_key_file_is_refused_and_its_key_is_in_no_frame(tmp_path):
    from smartkeys.keystore import PlaintextKeyError, load_keystore

    key = _key_hex()
    path = tmp_path / "plain.json"
    path.write_text(f'{{"private_key": "{key}"}}')
    os.chmod(path, 0o600)
    exc = _raised(load_keystore, path, "a password")
    assert isinstance(exc, PlaintextKeyError)
    assert leaks(exc, key, "a password") == []


def test_a_malformed_key_given_to_the_signers_is_in_no_frame():
    from smartkeys.authorization import sign_authorization
    from smartkeys.userop import PackedUserOperation, sign_user_op

    bad = _key_hex()[:-1]  # 63 digits
    exc = _raised(sign_authorization, bad, "0x" + "11" * 20, 1, 0)
    assert leaks(exc, bad[2:]) == []
    op = PackedUserOperation(sender="0x" + "22" * 20, nonce=0)
    exc = _raised(sign_user_op, op, bad, "0x" + "33" * 20, 1)
    assert leaks(exc, bad[2:]) == []


def test_an_untyped_error_inside_a_secret_handler_becomes_a_typed_one_without_its_message():
    """A library error whose message quotes the value is replaced; its frames and chain go with it."""
    from smartkeys._secrets import SecretHandlingError, secret_frames_dropped

    key = _key_hex()

    @secret_frames_dropped
    def parse(text):
        raise ValueError(f"cannot parse {text}")

    with pytest.raises(SecretHandlingError) as info:
        parse(key)
    assert "ValueError" in str(info.value)
    assert leaks(info.value, key) == []


def test_a_secret_in_the_configuration_file_is_in_no_frame(tmp_path):
    from smartkeys.config import ConfigError, resolve_config

    password = "pw-" + secrets.token_hex(12)
    (tmp_path / "smartkeys.toml").write_text(f'rpc_url = "http://127.0.0.1:8545"\npassword = "{password}"\n')
    exc = _raised(resolve_config, {}, {"SMARTKEYS_PASSWORD": password}, tmp_path)
    assert isinstance(exc, ConfigError)
    assert leaks(exc, password) == []
