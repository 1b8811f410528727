"""Owner delegates only to known smartkeys deployments, unless the caller opts in by an alarming name.

An EIP-7702 delegation hands the target's code full control of the EOA. ``Owner(w3, eoa, implementation=X)``
used to sign and send a delegation to any contract X.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from smartkeys.account import Owner
from smartkeys.delegation import DEPLOYMENTS_DIR_ENV, known_implementations
from smartkeys.deployments import SIMPLE7702_ADDRESS, account_address
from smartkeys.errors import UnknownImplementationError

SRC = Path(__file__).resolve().parents[2] / "src" / "smartkeys"


@pytest.fixture
def no_deployments_file(tmp_path, monkeypatch):
    monkeypatch.setenv(DEPLOYMENTS_DIR_ENV, str(tmp_path / "none"))


@pytest.mark.parametrize("which", ["token", "simple7702", "eoa", "zero"])
def test_owner_refuses_an_implementation_that_is_not_a_smartkeys_deployment(chain, token, which, no_deployments_file):
    target = {"token": token.address, "simple7702": SIMPLE7702_ADDRESS, "eoa": chain.accounts[6].address,
              "zero": "0x" + "00" * 20}[which]
    eoa = chain.accounts[3]
    before = (chain.w3.eth.block_number, chain.w3.eth.get_transaction_count(eoa.address))
    with pytest.raises(UnknownImplementationError) as info:
        Owner(chain.w3, eoa, implementation=target).delegate()
    err = info.value
    assert err.implementation.lower() == target.lower() and err.known == (account_address(),)
    assert "dangerously_allow_unknown_implementation=True" in str(err) and "deployments/" in str(err)
    assert (chain.w3.eth.block_number, chain.w3.eth.get_transaction_count(eoa.address)) == before
    assert chain.w3.eth.get_code(eoa.address) == b""


@pytest.mark.parametrize("flag", [1, "yes", "True"])
def test_only_the_literal_true_opts_in(chain, flag, no_deployments_file):
    with pytest.raises(UnknownImplementationError):
        Owner(chain.w3, chain.accounts[3], implementation=SIMPLE7702_ADDRESS,
              dangerously_allow_unknown_implementation=flag)


def test_explicit_opt_in_delegates_to_the_reference_account(chain, no_deployments_file):
    owner = Owner(chain.w3, chain.accounts[3], implementation=SIMPLE7702_ADDRESS,
                  dangerously_allow_unknown_implementation=True)
    owner.delegate()
    assert owner.delegation() == SIMPLE7702_ADDRESS


def test_the_canonical_address_and_the_chains_deployments_file_are_accepted(chain, tmp_path, monkeypatch):
    recorded = chain.accounts[6].address  # what `smartkeys deploy` would have written for this chain
    (tmp_path / f"{chain.chain_id}.json").write_text(json.dumps(
        {"chain_id": chain.chain_id, "contracts": {"SmartKeysAccount": {"address": recorded}}}))
    (tmp_path / "1.json").write_text(json.dumps(
        {"chain_id": 1, "contracts": {"SmartKeysAccount": {"address": SIMPLE7702_ADDRESS}}}))
    monkeypatch.setenv(DEPLOYMENTS_DIR_ENV, str(tmp_path))
    assert known_implementations(chain.chain_id) == (account_address(), recorded)
    assert Owner(chain.w3, chain.accounts[3], implementation=account_address()).implementation == account_address()
    assert Owner(chain.w3, chain.accounts[3], implementation=recorded).implementation == recorded
    with pytest.raises(UnknownImplementationError):  # another chain's file does not count here
        Owner(chain.w3, chain.accounts[3], implementation=SIMPLE7702_ADDRESS)


def test_only_the_authorization_builder_signs_eip7702_payloads():
    """Every EIP-7702 signature goes through smartkeys.authorization.sign_authorization (checked inputs)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "authorization.py":
            continue
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "``", "*")))
        if re.search(r"Account\.sign_authorization\(|\.sign_authorization\(\{|SetCodeAuthorization\(|"
                     r"sign_set_code|Authorization\([^)]*\)\.hash\(\)", code):
            offenders.append(path.name)
    assert offenders == []


def test_the_implementation_cannot_be_swapped_after_the_check(chain, token):
    owner = Owner(chain.w3, chain.accounts[3])
    with pytest.raises(AttributeError):
        owner.implementation = token.address
    assert owner.implementation == account_address()
