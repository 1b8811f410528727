"""Session key hygiene: keys never leak, key files are encrypted 0600 keystores, bad files are refused."""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import stat

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from smartkeys.errors import SmartKeysError
from smartkeys.keystore import (
    DEFAULT_ENV_VAR,
    InsecureKeystoreError,
    KeyEnvError,
    KeystoreError,
    KeystoreExistsError,
    PlaintextKeyError,
    SessionKey,
    WrongPasswordError,
    generate_key,
    load_key_from_env,
    load_keystore,
    save_keystore,
)

FAST_N = 2**14  # scrypt work factor for speed; one test uses the default
PASSWORD = "correct horse battery staple"

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")


def secret_forms(key: SessionKey) -> list[str]:
    """The private key as hex: with and without 0x, lower and upper case."""
    raw = bytes(key.account.key).hex()
    return [raw, raw.upper(), "0x" + raw, "0X" + raw.upper(), "0x" + raw.upper()]


def assert_no_secret(text: str, key: SessionKey) -> None:
    lowered = text.lower()
    raw = bytes(key.account.key).hex()
    assert raw not in lowered, "private key hex leaked"
    for form in secret_forms(key):
        assert form not in text


@pytest.fixture
def key() -> SessionKey:
    return generate_key()


@pytest.fixture
def keyfile(tmp_path, key):
    return save_keystore(key, tmp_path / "agent.json", PASSWORD, scrypt_n=FAST_N)


# ------------------------------------------------------------------------------- SessionKey


def test_generate_key_gives_distinct_keys_with_checksummed_addresses():
    a, b = generate_key(), generate_key()
    assert a.address != b.address
    assert a.address == Account.from_key(a.export_private_key_hex()).address
    assert a.address.startswith("0x") and a.address != a.address.lower()


def test_repr_and_str_show_only_the_address(key):
    assert repr(key) == f"SessionKey(address={key.address})"
    assert str(key) == key.address
    assert f"{key}" == key.address
    assert_no_secret(repr(key) + str(key) + f"{key!r}", key)


def test_signing_goes_through_the_wrapped_account(key):
    signed = key.account.sign_message(encode_defunct(text="hello"))
    assert Account.recover_message(encode_defunct(text="hello"), signature=signed.signature) == key.address


def test_export_private_key_hex_is_the_only_raw_key_access(key):
    exported = key.export_private_key_hex()
    assert exported.startswith("0x") and len(exported) == 66
    assert Account.from_key(exported).address == key.address
    assert not hasattr(key, "key") and not hasattr(key, "private_key")
    assert not hasattr(key, "__dict__")


def test_pickling_a_session_key_is_refused_without_leaking(key):
    for attempt in (lambda: pickle.dumps(key), lambda: pickle.dumps(key, protocol=2), lambda: copy.deepcopy(key)):
        with pytest.raises(TypeError) as info:
            attempt()
        assert "cannot be pickled" in str(info.value)
        assert_no_secret(str(info.value), key)


def test_json_serialising_a_session_key_fails_without_leaking(key):
    with pytest.raises(TypeError) as info:
        json.dumps({"key": key})
    assert_no_secret(str(info.value), key)


def test_session_key_is_immutable(key):
    with pytest.raises(AttributeError):
        key._account = Account.create()  # type: ignore[misc]


def test_session_key_refuses_non_accounts():
    with pytest.raises(SmartKeysError):
        SessionKey("0x" + "11" * 32)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- save / load


@posix_only
def test_saved_keystore_is_mode_0600_and_loads_back_the_same_address(keyfile, key):
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    loaded = load_keystore(keyfile, PASSWORD)
    assert loaded.address == key.address
    assert loaded.export_private_key_hex() == key.export_private_key_hex()


def test_saved_keystore_is_scrypt_v3_json_without_the_key_in_clear(keyfile, key):
    text = keyfile.read_text()
    data = json.loads(text)
    assert data["version"] == 3
    assert data["crypto"]["kdf"] == "scrypt"
    assert data["address"].lower() == key.address[2:].lower()
    assert_no_secret(text, key)
    assert [p.name for p in keyfile.parent.iterdir()] == ["agent.json"], "temporary file left behind"


@posix_only
def test_default_work_factor_keystore_round_trips(tmp_path, key):
    path = save_keystore(key, tmp_path / "default.json", PASSWORD)
    assert json.loads(path.read_text())["crypto"]["kdfparams"]["n"] == 2**18
    assert load_keystore(path, PASSWORD).address == key.address


@posix_only
def test_mode_is_0600_even_with_a_permissive_umask(tmp_path, key):
    old = os.umask(0)
    try:
        path = save_keystore(key, tmp_path / "k.json", PASSWORD, scrypt_n=FAST_N)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_existing_file_is_not_overwritten_unless_asked(keyfile, key):
    before = keyfile.read_bytes()
    other = generate_key()
    with pytest.raises(KeystoreExistsError) as info:
        save_keystore(other, keyfile, PASSWORD, scrypt_n=FAST_N)
    assert str(keyfile) in str(info.value) and "overwrite=True" in str(info.value)
    assert keyfile.read_bytes() == before
    save_keystore(other, keyfile, PASSWORD, scrypt_n=FAST_N, overwrite=True)
    assert load_keystore(keyfile, PASSWORD).address == other.address


def test_missing_directory_is_a_keystore_error(tmp_path, key):
    with pytest.raises(KeystoreError) as info:
        save_keystore(key, tmp_path / "nope" / "k.json", PASSWORD, scrypt_n=FAST_N)
    assert "does not exist" in str(info.value)


@pytest.mark.parametrize("password", ["", None, b"bytes"])
def test_empty_or_non_text_password_is_refused(tmp_path, key, password):
    with pytest.raises(SmartKeysError) as info:
        save_keystore(key, tmp_path / "k.json", password, scrypt_n=FAST_N)  # type: ignore[arg-type]
    assert info.value.field == "password"
    assert not (tmp_path / "k.json").exists()


def test_weak_work_factor_is_refused(tmp_path, key):
    with pytest.raises(SmartKeysError) as info:
        save_keystore(key, tmp_path / "k.json", PASSWORD, scrypt_n=1024)
    assert info.value.field == "scrypt_n"


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o666, 0o620, 0o602])
def test_group_or_world_accessible_keystore_is_refused(keyfile, mode):
    os.chmod(keyfile, mode)
    with pytest.raises(InsecureKeystoreError) as info:
        load_keystore(keyfile, PASSWORD)
    message = str(info.value)
    assert f"chmod 600 {keyfile}" in message
    assert info.value.path == str(keyfile)


@posix_only
def test_owner_only_read_mode_is_accepted(keyfile, key):
    os.chmod(keyfile, 0o400)
    assert load_keystore(keyfile, PASSWORD).address == key.address


@posix_only
@pytest.mark.parametrize("form", ["raw", "0x", "upper", "newline", "json-string", "json-object"])
def test_plaintext_key_file_is_refused_without_echoing_it(tmp_path, key, form):
    raw = bytes(key.account.key).hex()
    content = {
        "raw": raw,
        "0x": "0x" + raw,
        "upper": raw.upper(),
        "newline": "0x" + raw + "\n",
        "json-string": json.dumps("0x" + raw),
        "json-object": json.dumps({"privateKey": "0x" + raw}),
    }[form]
    path = tmp_path / "plain.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(PlaintextKeyError) as info:
        load_keystore(path, PASSWORD)
    assert "unencrypted" in str(info.value)
    assert_no_secret(str(info.value) + repr(info.value), key)


@posix_only
def test_non_keystore_json_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"hello": "world"}))
    os.chmod(path, 0o600)
    with pytest.raises(KeystoreError) as info:
        load_keystore(path, PASSWORD)
    assert "not a Web3 Secret Storage v3 keystore" in str(info.value)


def test_missing_keystore_names_the_path(tmp_path):
    with pytest.raises(KeystoreError) as info:
        load_keystore(tmp_path / "absent.json", PASSWORD)
    assert "absent.json" in str(info.value)


def test_wrong_password_is_a_typed_error_without_chained_library_errors(keyfile, key):
    with pytest.raises(WrongPasswordError) as info:
        load_keystore(keyfile, "not the password")
    err = info.value
    assert isinstance(err, KeystoreError) and isinstance(err, SmartKeysError)
    assert not isinstance(err, ValueError)
    assert err.__cause__ is None and err.__context__ is None
    assert "not the password" not in str(err)
    assert_no_secret(str(err), key)


@posix_only
def test_tampered_address_is_refused(keyfile):
    data = json.loads(keyfile.read_text())
    data["address"] = "11" * 20
    keyfile.write_text(json.dumps(data))
    with pytest.raises(KeystoreError) as info:
        load_keystore(keyfile, PASSWORD)
    assert "altered" in str(info.value)


# ------------------------------------------------------------------------------- environment


def test_key_from_env_with_and_without_prefix(monkeypatch, key):
    raw = bytes(key.account.key).hex()
    for value in ("0x" + raw, raw, "  0x" + raw.upper() + "\n"):
        monkeypatch.setenv(DEFAULT_ENV_VAR, value)
        assert load_key_from_env().address == key.address
    assert load_key_from_env("OTHER", environ={"OTHER": raw}).address == key.address


def test_missing_env_var_names_the_variable(monkeypatch):
    monkeypatch.delenv(DEFAULT_ENV_VAR, raising=False)
    with pytest.raises(KeyEnvError) as info:
        load_key_from_env()
    assert DEFAULT_ENV_VAR in str(info.value) and "not set" in str(info.value)
    assert info.value.var == DEFAULT_ENV_VAR


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1],                   # 63 digits
        lambda raw: raw + "00",                 # 66 digits
        lambda raw: raw[:-1] + "g",             # not hex
        lambda raw: "0" * 64,                   # zero is not a valid secp256k1 key
        lambda raw: "f" * 64,                   # above the curve order
    ],
)
def test_malformed_env_key_is_refused_without_echoing_it(mangle, key):
    value = mangle(bytes(key.account.key).hex())
    with pytest.raises(KeyEnvError) as info:
        load_key_from_env("AGENT_KEY", environ={"AGENT_KEY": value})
    err = info.value
    assert "AGENT_KEY" in str(err)
    assert value not in str(err) and value.upper() not in str(err)
    assert value[:16] not in str(err)
    assert err.__context__ is None and err.__cause__ is None


# ------------------------------------------------------------------------------- logging


@posix_only
def test_debug_logging_never_contains_the_key(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    key = generate_key()
    path = save_keystore(key, tmp_path / "k.json", PASSWORD, scrypt_n=FAST_N)
    loaded = load_keystore(path, PASSWORD)
    monkeypatch.setenv(DEFAULT_ENV_VAR, key.export_private_key_hex())
    load_key_from_env()
    for bad in ("wrong",):
        with pytest.raises(WrongPasswordError):
            load_keystore(path, bad)
    logging.getLogger("test").debug("agent ready: %r %s", loaded, loaded)

    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert key.address in text, "expected the operations to be logged (by address)"
    assert_no_secret(text, key)


def test_errors_pickle_without_the_key(keyfile, key):
    with pytest.raises(WrongPasswordError) as info:
        load_keystore(keyfile, "nope")
    blob = pickle.dumps(info.value)
    restored = pickle.loads(blob)
    assert isinstance(restored, WrongPasswordError) and restored.path == str(keyfile)
    assert bytes(key.account.key) not in blob
    assert bytes(key.account.key).hex().encode() not in blob


# ------------------------------------------------------------------------------- KDF bounds (before deriving)


def _v3(kdf="scrypt", cipher="aes-128-ctr", **params):
    defaults = ({"n": 2**18, "r": 8, "p": 1} if kdf == "scrypt" else {"c": 2**18, "prf": "hmac-sha256"})
    kdfparams = {**defaults, "dklen": 32, "salt": "ab" * 32, **params}
    return {"version": 3, "crypto": {"cipher": cipher, "cipherparams": {"iv": "00" * 16}, "ciphertext": "11" * 32,
                                     "kdf": kdf, "kdfparams": kdfparams, "mac": "22" * 32}}


@pytest.mark.parametrize("doc", [_v3(), _v3(n=2**12, r=8, p=6), _v3(n=2**14, r=8, p=1), _v3("pbkdf2", c=2**20),
                                 _v3(n=2**16, r=32, p=1)],
                         ids=["default", "geth-light", "light", "pbkdf2-max", "r-max"])
def test_keystore_params_within_bounds_are_accepted(doc):
    from smartkeys.keystore import check_keystore_params

    check_keystore_params(doc, "k.json")


@pytest.mark.parametrize(
    ("doc", "field"),
    [(_v3(n=2**19), "kdfparams.n"), (_v3(n=2**30), "kdfparams.n"), (_v3(n=3000), "kdfparams.n"),
     (_v3(n=True), "kdfparams.n"), (_v3(n=1.0 * 2**14), "kdfparams.n"), (_v3(n="16384"), "kdfparams.n"),
     (_v3(r=33), "kdfparams.r"), (_v3(r=0), "kdfparams.r"), (_v3(p=17), "kdfparams.p"),
     (_v3(n=2**18, r=8, p=2), "kdfparams"), (_v3(n=2**18, r=16, p=1), "kdfparams"),
     (_v3(dklen=64), "kdfparams.dklen"), (_v3("pbkdf2", c=2**20 + 1), "kdfparams.c"),
     (_v3("pbkdf2", c=10**12), "kdfparams.c"), (_v3("pbkdf2", prf="hmac-sha512"), "kdfparams.prf"),
     (_v3("argon2id"), "kdf"), (_v3(cipher="aes-256-gcm"), "cipher"), (_v3(salt="zz" * 32), "salt"),
     (_v3(salt="ab" * 10_000), "salt")],
)
def test_keystore_params_out_of_bounds_are_refused_naming_the_field(doc, field):
    from smartkeys.keystore import KeystoreError, check_keystore_params

    with pytest.raises(KeystoreError) as info:
        check_keystore_params(doc, "k.json")
    assert f"crypto.{field} " in str(info.value) and "fix: re-create the keystore" in str(info.value)


def test_a_keystore_with_a_huge_work_factor_is_refused_before_any_derivation(tmp_path, monkeypatch):
    """(Was: over 20 s to refuse.) The KDF is never called: any derivation would fail this test."""
    import json
    import time

    import eth_keyfile.keyfile as keyfile

    from smartkeys.keystore import KeystoreError, load_keystore

    def no_derivation(*args, **kwargs):
        raise AssertionError("a key derivation ran for an out-of-bounds keystore")

    monkeypatch.setattr(keyfile, "_scrypt_hash", no_derivation)
    monkeypatch.setattr(keyfile, "_pbkdf2_hash", no_derivation)
    for doc in (_v3(n=2**24, r=8, p=1), _v3(n=2**18, r=8, p=16), _v3("pbkdf2", c=2**40)):
        path = tmp_path / "k.json"
        path.write_text(json.dumps({**doc, "address": "11" * 20}))
        os.chmod(path, 0o600)
        started = time.perf_counter()
        with pytest.raises(KeystoreError) as info:
            load_keystore(path, "password")
        assert time.perf_counter() - started < 0.5 and "kdfparams" in str(info.value)
