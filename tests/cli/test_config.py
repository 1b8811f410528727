"""``resolve_config``: flags > environment > smartkeys.toml > defaults, each value with its source."""

from __future__ import annotations

import pytest

from smartkeys.config import ConfigError, redact_url, resolve_config

ACCOUNT = "0x000000000000000000000000000000000000bEEF"


def test_defaults_when_nothing_is_set(tmp_path):
    config = resolve_config({}, {"HOME": str(tmp_path)}, tmp_path)
    assert config.rpc_url.value == "http://127.0.0.1:8545" and config.rpc_url.source == "default"
    assert config.home.value == str(tmp_path / ".smartkeys")
    assert config.keys_dir.value == str(tmp_path / ".smartkeys" / "keys")
    assert config.account.value is None and config.config_file is None


def test_flag_beats_env_beats_file(tmp_path):
    (tmp_path / "smartkeys.toml").write_text('rpc_url = "http://file:1"\nchain_id = 5\nbundler_url = "http://b:3"\n')
    env = {"SMARTKEYS_RPC_URL": "http://env:2", "SMARTKEYS_CHAIN_ID": "7"}
    config = resolve_config({"rpc_url": "http://flag:3"}, env, tmp_path)
    assert (config.rpc_url.value, config.rpc_url.source) == ("http://flag:3", "flag --rpc-url")
    assert (config.chain_id.value, config.chain_id.source) == (7, "env SMARTKEYS_CHAIN_ID")
    assert config.bundler_url.value == "http://b:3" and config.bundler_url.source.startswith("file ")
    assert config.config_file == str(tmp_path / "smartkeys.toml")


def test_file_paths_are_relative_to_the_file_and_smartkeys_table_is_accepted(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "sk.toml").write_text('[smartkeys]\nhome = "h"\nkeystore = "keys/owner.json"\n')
    config = resolve_config({"config": "conf/sk.toml"}, {}, tmp_path)
    assert config.home.value == str(tmp_path / "conf" / "h")
    assert config.keys_dir.value == str(tmp_path / "conf" / "h" / "keys")
    assert config.keystore.value == str(tmp_path / "conf" / "keys" / "owner.json")


def test_missing_explicit_config_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        resolve_config({"config": "nope.toml"}, {}, tmp_path)


def test_unknown_file_key_gets_a_suggestion(tmp_path):
    (tmp_path / "smartkeys.toml").write_text('rpc_ur = "http://x:1"\n')
    with pytest.raises(ConfigError, match="did you mean 'rpc_url'"):
        resolve_config({}, {}, tmp_path)


def test_secrets_in_the_file_are_refused_without_echoing_them(tmp_path):
    (tmp_path / "smartkeys.toml").write_text('password = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        resolve_config({}, {}, tmp_path)
    assert "hunter2" not in str(info.value) and "SMARTKEYS_PASSWORD" in str(info.value)


@pytest.mark.parametrize("field,value,message", [
    ("account", "0x1234", "account"),
    ("chain_id", "mainnet", "chain"),
    ("rpc_url", "localhost:8545", "scheme"),
])
def test_bad_values_name_the_flag(tmp_path, field, value, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config({field: value}, {}, tmp_path)


def test_to_dict_redacts_api_keys_in_urls(tmp_path):
    config = resolve_config({"rpc_url": "https://eth.example/v2/SECRETKEY", "account": ACCOUNT}, {}, tmp_path)
    shown = config.to_dict()
    assert "SECRETKEY" not in str(shown)
    assert shown["rpc_url"] == {"value": "https://eth.example/***", "source": "flag --rpc-url"}
    assert shown["account"]["value"] == ACCOUNT
    assert redact_url("http://user:pw@host:1/") == "http://***@host:1/"
