"""`smartkeys keys import` (a prompt without echo, --stdin, --from-env) and the "fund ADDRESS with ETH"
errors a new user with an empty owner or session key meets. In-process ``main()`` on the embedded chain."""

from __future__ import annotations

import io

import pytest
from eth_account import Account

from smartkeys.keystore import generate_key, load_keystore, save_keystore

PASSWORD = "correct horse battery staple"  # the conftest's
# anvil/Hardhat dev account 0 of the public test mnemonic: a PUBLIC test key
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


class TTYInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def _key_leaked(result, key_hex: str) -> bool:
    digits = key_hex.removeprefix("0x").lower()
    return digits in (result.out + result.err).lower()


# --------------------------------------------------------------------------- keys import


def test_import_from_a_prompt_without_echo_writes_a_0600_keystore_of_the_same_address(cli, home, monkeypatch):
    prompts: list[str] = []
    answers = iter([DEV_KEY, PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt, stream=None: (prompts.append(prompt), next(answers))[1])
    result = cli("--json", "keys", "import", "--label", "owner0", "--light-kdf", stdin=TTYInput(),
                 drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 0, result.err
    doc = result.json
    path = home / "keys" / "owner0.json"
    assert doc == {"ok": True, "command": "keys import", "address": DEV_ADDRESS, "label": "owner0", "file": str(path)}
    assert prompts[0].startswith("Private key") and len(prompts) == 3  # the key, then the password twice
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_keystore(path, PASSWORD).address == DEV_ADDRESS
    assert not _key_leaked(result, DEV_KEY)


def test_import_from_stdin_with_the_password_from_the_environment(cli, home):
    key = Account.create()
    key_hex = "0x" + bytes(key.key).hex()
    result = cli("keys", "import", "--stdin", "--light-kdf", stdin=io.StringIO(key_hex[2:] + "\n"))
    assert result.code == 0, result.err
    label = f"key-{key.address[2:10].lower()}"
    assert f"imported key {key.address}" in result.out and f"--keystore {label}" in result.out
    assert load_keystore(home / "keys" / f"{label}.json", PASSWORD).address == key.address
    assert not _key_leaked(result, key_hex)


def test_import_from_an_environment_variable_names_the_variable_not_the_value(cli, home):
    result = cli("--json", "keys", "import", "--from-env", "OWNER_KEY", "--label", "dev", "--light-kdf",
                 env={"OWNER_KEY": DEV_KEY})
    assert result.code == 0, result.err
    assert result.json["address"] == DEV_ADDRESS
    assert load_keystore(result.json["file"], PASSWORD).address == DEV_ADDRESS
    assert not _key_leaked(result, DEV_KEY)

    missing = cli("keys", "import", "--from-env", "NOT_SET", "--label", "other")
    assert missing.code == 2 and "NOT_SET" in missing.err and "not set" in missing.err


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("0x1234", "got 4 characters"),
        (DEV_KEY[:-1] + "g", "characters other than 0-9 and a-f"),
        ("0x" + "ab" * 33, "got 66 characters"),
        (DEV_ADDRESS, "that is an address"),
        ("test " * 11 + "junk", "mnemonic"),
        ("0x" + "00" * 32, "valid secp256k1 private key"),
    ],
)
def test_import_of_a_bad_key_exits_2_names_the_fix_and_writes_nothing(cli, home, text, fix):
    result = cli("--json", "keys", "import", "--stdin", "--label", "bad", "--light-kdf", stdin=io.StringIO(text + "\n"))
    assert result.code == 2
    assert fix in result.err and "private key" in result.err
    assert result.json["error"]["field"] == "private key"
    assert not (home / "keys" / "bad.json").exists()
    assert text.removeprefix("0x") not in result.out + result.err


def test_import_refuses_an_existing_label_or_address_naming_the_file(cli, home, owner_keystore, chain):
    taken = cli("keys", "import", "--stdin", "--label", "owner", stdin=io.StringIO(DEV_KEY + "\n"))
    assert taken.code == 2 and str(owner_keystore) in taken.err

    owner_hex = "0x" + bytes(chain.accounts[1].key).hex()  # already in owner.json
    before = sorted(p.name for p in (home / "keys").iterdir())
    duplicate = cli("keys", "import", "--stdin", "--label", "again", stdin=io.StringIO(owner_hex + "\n"))
    assert duplicate.code == 2
    assert "already has a keystore" in duplicate.err and str(owner_keystore) in duplicate.err
    assert sorted(p.name for p in (home / "keys").iterdir()) == before
    assert not _key_leaked(duplicate, owner_hex)


def test_import_without_a_terminal_or_a_source_exits_2_with_the_fix(cli):
    result = cli("keys", "import", "--label", "x")
    assert result.code == 2 and "--stdin" in result.err and "--from-env" in result.err


def test_import_needs_a_password_source_when_the_key_is_piped(cli, home):
    result = cli("keys", "import", "--stdin", "--label", "x", stdin=io.StringIO(DEV_KEY + "\n"),
                 drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 2 and "SMARTKEYS_PASSWORD" in result.err
    assert not (home / "keys" / "x.json").exists()


def test_keys_show_address_prints_only_the_address(cli, owner_address):
    result = cli("keys", "show", "owner", "--address")
    assert result.code == 0 and result.out == owner_address + "\n"


# --------------------------------------------------------------------------- a sender without ETH


def test_delegate_by_an_owner_without_eth_exits_2_saying_fund_it(cli, chain, home):
    poor = generate_key()
    save_keystore(poor, home / "keys" / "poor.json", PASSWORD, scrypt_n=2**14)
    block = chain.w3.eth.block_number
    result = cli("--json", "delegate", env={"SMARTKEYS_KEYSTORE": "poor"})
    assert result.code == 2
    assert f"fund {poor.address} with ETH" in result.err and "Traceback" not in result.err
    assert result.json["error"]["exit_code"] == 2
    assert chain.w3.eth.block_number == block

    status = cli("status", env={"SMARTKEYS_KEYSTORE": "poor"})
    assert status.code == 0 and f"fund {poor.address} with ETH" in status.out


def test_send_by_a_session_key_without_eth_exits_2_saying_fund_it_or_use_a_bundler(
        cli, chain, delegated, home, tmp_path):
    key = generate_key()  # not funded
    save_keystore(key, home / "keys" / "broke.json", PASSWORD, scrypt_n=2**14)
    recipient = chain.accounts[5].address
    (tmp_path / "policy.toml").write_text(
        f'key = "{key.address}"\nvalid_for = "1h"\n[[allow]]\nsend_native_to = "{recipient}"\n'
        '[limits]\ngas_budget = "0.05 ether"\nnative = { total = "1 ether" }\n')
    assert cli("grant", "--policy", "policy.toml").code == 0
    for via in ("direct", "user-op"):
        result = cli("send", recipient, "0.01 ether", "--key", "broke", "--via", via, env={"SMARTKEYS_ACCOUNT": delegated})
        assert result.code == 2, result.err
        assert f"fund {key.address} with ETH" in result.err and "--bundler-url" in result.err
        assert "sending 0.01 ether" in result.err
