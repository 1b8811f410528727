"""The owner's commands sign through a remote JSON-RPC signer (`--signer-url`, the API Clef and Web3Signer
serve) instead of the keystore: no keystore and no password are needed, a signer that cannot sign an
EIP-7702 authorization is refused before anything is sent, and a URL that names no known API is refused
with the field and the fix (issue 14, item 4)."""

from __future__ import annotations

import pytest
from loopback_signer import LoopbackSigner

NO_KEYSTORE = ("SMARTKEYS_KEYSTORE", "SMARTKEYS_PASSWORD")


@pytest.fixture
def remote(chain):
    signer = LoopbackSigner([chain.accounts[1]])  # the owner EOA's key lives in the signer only
    yield signer
    signer.close()


def _session_status(cli, session_id: str, env: dict[str, str]) -> str:
    doc = cli("--json", "status", env=env, drop=NO_KEYSTORE).json
    (session,) = [s for s in doc["sessions"] if s["session_id"] == session_id]
    return session["status"]


@pytest.mark.parametrize("scheme", ["http", "clef+http", "web3signer+http"])
def test_grant_and_revoke_through_a_remote_signer_without_keystore(cli, delegated, policy_file, remote, scheme,
                                                                   owner_address):
    env = {"SMARTKEYS_SIGNER_URL": remote.url.replace("http", scheme, 1)}
    granted = cli("--json", "grant", "--policy", str(policy_file), env=env, drop=NO_KEYSTORE)
    assert granted.code == 0, granted.err
    session_id = granted.json["session_id"]
    transaction_method = "account_signTransaction" if scheme.startswith("clef") else "eth_signTransaction"
    assert transaction_method in remote.calls
    assert _session_status(cli, session_id, env) == "live"

    revoked = cli("--json", "revoke", session_id, env=env, drop=NO_KEYSTORE)
    assert revoked.code == 0, revoked.err
    assert _session_status(cli, session_id, env) == "revoked"
    # `status` found the account from the signer itself: the signer's only account is the owner
    assert cli("--json", "status", env=env, drop=NO_KEYSTORE).json["account"]["address"] == owner_address


def test_delegate_through_a_remote_signer_is_refused_before_anything_is_sent(cli, chain, remote, owner_address):
    nonce = chain.w3.eth.get_transaction_count(owner_address)
    result = cli("--json", "delegate", env={"SMARTKEYS_SIGNER_URL": remote.url}, drop=NO_KEYSTORE)
    assert result.code != 0
    error = result.json["error"]
    assert "authorization" in error["message"].lower() and "keystore" in (error.get("hint") or error["message"])
    assert chain.w3.eth.get_code(owner_address) == b""
    assert chain.w3.eth.get_transaction_count(owner_address) == nonce
    assert not any("SignTransaction" in c for c in remote.calls)


def test_a_signer_that_does_not_serve_the_configured_account_is_refused(cli, delegated, policy_file, chain):
    stranger = LoopbackSigner([chain.accounts[2]])
    try:
        result = cli("--json", "grant", "--policy", str(policy_file),
                     env={"SMARTKEYS_SIGNER_URL": stranger.url, "SMARTKEYS_ACCOUNT": chain.accounts[1].address},
                     drop=NO_KEYSTORE)
    finally:
        stranger.close()
    assert result.code == 2 and result.json["error"]["field"] == "address"
    assert not any("SignTransaction" in c for c in stranger.calls)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8550", "127.0.0.1:8550", "ledger+http://127.0.0.1:1"])
def test_a_signer_url_that_names_no_api_is_refused_with_the_fix(cli, url):
    result = cli("--json", "status", env={"SMARTKEYS_SIGNER_URL": url})
    assert result.code == 2
    assert "SMARTKEYS_SIGNER_URL" in result.json["error"]["field"]
    assert "clef+http://" in result.err
