"""The command line parses keys and passwords from the environment, stdin, files and keystores; when one is
refused, the exception the top-level handler receives carries the secret in no frame below it (and not in its
message). The handler itself (``main``) holds the environment by design and prints one line; it is left out."""

from __future__ import annotations

import io
import secrets

import pytest
from eth_account import Account
from secret_leaks import leaks  # tests/secret_leaks.py

import smartkeys.cli as cli_module


@pytest.fixture
def caught(monkeypatch):
    """The exceptions ``main`` turns into an error line, in order."""
    seen: list[BaseException] = []
    real = cli_module._fail

    def record(ui, exc, code, debug):
        seen.append(exc)
        return real(ui, exc, code, debug)

    monkeypatch.setattr(cli_module, "_fail", record)
    return seen


def _key() -> str:
    return "0x" + bytes(Account.create().key).hex()


@pytest.mark.parametrize("mistake", [lambda k: k[:-1], lambda k: f"'{k}'", lambda k: "0x" + "00" * 32],
                         ids=["short", "quoted", "zero"])
def test_keys_import_from_env_with_a_bad_key_keeps_it_out_of_every_frame(cli, caught, mistake):
    value = mistake(_key())
    result = cli("keys", "import", "--from-env", "OWNER_KEY", "--label", "x", "--light-kdf", env={"OWNER_KEY": value})
    assert result.code == 2 and len(caught) == 1
    assert leaks(caught[0], value.strip("'")[2:42], skip=(cli_module.main.__code__,)) == []


def test_keys_import_from_stdin_with_a_bad_key_keeps_it_out_of_every_frame(cli, caught):
    value = _key() + "0"
    result = cli("keys", "import", "--stdin", "--label", "x", "--light-kdf", stdin=io.StringIO(value + "\n"))
    assert result.code == 2 and len(caught) == 1
    assert leaks(caught[0], value[2:42], skip=(cli_module.main.__code__,)) == []


def test_a_bad_session_key_in_the_environment_keeps_it_out_of_every_frame(cli, caught):
    value = _key()[:-3]
    result = cli("send", "0x" + "11" * 20, "0.001", "--account", "0x" + "22" * 20,
                 env={"SMARTKEYS_SESSION_KEY": value})
    assert result.code == 2 and len(caught) == 1, result.err
    assert leaks(caught[0], value[2:42], skip=(cli_module.main.__code__,)) == []


def test_a_wrong_password_keeps_it_out_of_every_frame(cli, caught, tmp_path):
    password = "pw-" + secrets.token_hex(12)
    result = cli("delegate", env={"SMARTKEYS_PASSWORD": password})
    assert result.code == 2 and "wrong password" in result.err and len(caught) == 1
    assert leaks(caught[0], password, skip=(cli_module.main.__code__,)) == []

    password_file = tmp_path / "pw.txt"
    password_file.write_text(password + "\n")
    result = cli("--password-file", str(password_file), "delegate", drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 2 and "wrong password" in result.err and len(caught) == 2
    assert leaks(caught[1], password, skip=(cli_module.main.__code__,)) == []


def test_two_different_passwords_at_the_prompt_are_in_no_frame(monkeypatch):
    import getpass

    from smartkeys.cli._ui import UI
    from smartkeys.errors import InvalidInputError

    first, second = "first-" + secrets.token_hex(8), "second-" + secrets.token_hex(8)
    replies = iter([first, second])
    monkeypatch.setattr(getpass, "getpass", lambda prompt, stream=None: next(replies))
    ui = UI(io.StringIO(), io.StringIO(), io.StringIO(), json_mode=False)
    with pytest.raises(InvalidInputError) as info:
        ui.password("Password: ", twice=True)
    assert leaks(info.value, first, second) == []
