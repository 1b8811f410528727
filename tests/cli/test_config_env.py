"""Configuration as users expect it: ``${VAR}`` in smartkeys.toml, ``ETH_RPC_URL`` as the last resort for the
RPC URL, and no bare native amounts on the command line (``--value 1000`` is refused, never read as ether)."""

from __future__ import annotations

import pytest

from smartkeys.cli._commands import _parse_native
from smartkeys.config import ConfigError, resolve_config
from smartkeys.errors import InvalidInputError


def _write(tmp_path, text):
    (tmp_path / "smartkeys.toml").write_text(text)


def test_dollar_brace_variables_in_the_file_are_expanded_and_named_in_the_source(tmp_path):
    _write(tmp_path, 'rpc_url = "https://eth.example/v2/${ALCHEMY_KEY}"\nkeystore = "${WHO}"\n'
                     'bundler_url = "http://${HOST}:${PORT}"\n')
    env = {"ALCHEMY_KEY": "k3y", "WHO": "owner", "HOST": "10.0.0.2", "PORT": "4337"}
    config = resolve_config({}, env, tmp_path)
    assert config.rpc_url.value == "https://eth.example/v2/k3y"
    assert config.rpc_url.source == f"file {tmp_path / 'smartkeys.toml'} with ${{ALCHEMY_KEY}}"
    assert config.keystore.value == "owner"
    assert config.bundler_url.value == "http://10.0.0.2:4337"
    assert "k3y" not in str(config.to_dict())  # the expanded key is redacted like any URL secret


def test_expanded_paths_are_still_relative_to_the_file(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "sk.toml").write_text('home = "${SK_DIR}/home"\n')
    config = resolve_config({"config": "conf/sk.toml"}, {"SK_DIR": "state"}, tmp_path)
    assert config.home.value == str(tmp_path / "conf" / "state" / "home")


@pytest.mark.parametrize("env", [{}, {"ALCHEMY_KEY": ""}, {"ALCHEMY_KEY": "   "}])
def test_an_unset_or_empty_variable_is_an_error_naming_the_entry_and_the_variable(tmp_path, env):
    _write(tmp_path, 'rpc_url = "https://eth.example/v2/${ALCHEMY_KEY}"\n')
    with pytest.raises(ConfigError) as info:
        resolve_config({}, env, tmp_path)
    assert info.value.field.endswith("smartkeys.toml: rpc_url")
    assert "ALCHEMY_KEY" in str(info.value) and "export ALCHEMY_KEY=" in str(info.value)


@pytest.mark.parametrize("text", ['rpc_url = "http://h/${1BAD}"', 'rpc_url = "http://h/${OPEN"', 'rpc_url = "http://h/${}"'])
def test_a_malformed_placeholder_is_refused_with_the_fix(tmp_path, text):
    _write(tmp_path, text + "\n")
    with pytest.raises(ConfigError, match=r"\$\$ for a literal \$"):
        resolve_config({}, {"OPEN": "x"}, tmp_path)


def test_double_dollar_and_a_bare_dollar_stay_literal(tmp_path):
    _write(tmp_path, 'rpc_url = "http://h/a$$b/$plain"\n')
    config = resolve_config({}, {"plain": "EXPANDED"}, tmp_path)
    assert config.rpc_url.value == "http://h/a$b/$plain"
    assert config.rpc_url.source == f"file {tmp_path / 'smartkeys.toml'}"


def test_eth_rpc_url_is_used_when_nothing_else_names_an_rpc(tmp_path):
    config = resolve_config({}, {"ETH_RPC_URL": "https://rpc.example"}, tmp_path)
    assert (config.rpc_url.value, config.rpc_url.source) == ("https://rpc.example", "env ETH_RPC_URL")


def test_eth_rpc_url_loses_to_the_flag_the_smartkeys_variable_and_the_file(tmp_path):
    env = {"ETH_RPC_URL": "https://mainnet.example"}
    assert resolve_config({"rpc_url": "http://flag:1"}, env, tmp_path).rpc_url.value == "http://flag:1"
    both = dict(env, SMARTKEYS_RPC_URL="http://env:2")
    assert resolve_config({}, both, tmp_path).rpc_url.value == "http://env:2"
    _write(tmp_path, 'rpc_url = "http://127.0.0.1:8545"\n')
    config = resolve_config({}, env, tmp_path)
    assert config.rpc_url.value == "http://127.0.0.1:8545" and config.rpc_url.source.startswith("file ")


def test_a_bad_eth_rpc_url_is_reported_under_its_own_name(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_config({}, {"ETH_RPC_URL": "localhost:8545"}, tmp_path)
    assert info.value.field == "ETH_RPC_URL"


@pytest.mark.parametrize("text", ["1000", "0.5", "1_000", "1.", ".5"])
def test_a_bare_native_amount_is_refused_with_both_readings_as_the_fix(text):
    with pytest.raises(InvalidInputError) as info:
        _parse_native(text, "--value")
    assert info.value.field == "--value"
    assert f"'{text} ether' or '{text} wei'" in str(info.value)


@pytest.mark.parametrize("text,wei", [
    ("1000 wei", 1000), ("1000wei", 1000), ("0.5 ether", 5 * 10**17), ("0.1ether", 10**17), ("2 gwei", 2 * 10**9),
    ("0", 0), ("0.0", 0),
])
def test_a_native_amount_with_its_unit_is_read_exactly(text, wei):
    assert _parse_native(text, "--value") == wei
