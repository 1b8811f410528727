"""Signers other than a local key: a remote signer over JSON-RPC (a loopback server the test starts, holding the
owner's key with eth-account) and a custom ``BaseAccount`` that is not a ``LocalAccount`` (the shape of a
hardware-wallet or KMS adapter). Results are checked on chain; refusals leave nonces and state unchanged.
"""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import _hash_eip191_message
from eth_account.signers.base import BaseAccount
from eth_account.signers.local import LocalAccount
from loopback_signer import LoopbackSigner

from smartkeys.account import Call, Owner
from smartkeys.bundler import SelfBundler
from smartkeys.errors import (
    SignerResponseError,
    SignerUnsupportedError,
    get_error_class,
)
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.preflight import read_session_state
from smartkeys.signers import JsonRpcSigner

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
TRANSFER = "transfer(address,uint256)"
CAP = 50 * 10**6


def transfer_data(to: str, amount: int) -> bytes:
    return bytes.fromhex("a9059cbb") + abi_encode(["address", "uint256"], [to, amount])


@pytest.fixture
def remote(chain):
    servers: list[LoopbackSigner] = []

    def start(keys, **kw) -> LoopbackSigner:
        server = LoopbackSigner(keys, **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def policy_for(chain, key, token) -> SessionPolicy:
    return SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 86_400, gas_budget=10**18,
                         permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, CAP),),
                         max_uses=10)


@pytest.mark.parametrize("api", ["eth", "web3signer", "clef"])
def test_owner_grants_and_revokes_through_a_remote_json_rpc_signer(chain, owner, token, session_key, fund, bundler,
                                                                   remote, api):
    """The account was delegated once with the keystore key; from then on the owner signs remotely."""
    from smartkeys.account import SessionAgent

    server = remote([chain.accounts[1]])
    signer = JsonRpcSigner(server.url, api=api)
    assert signer.address == owner.address and not isinstance(signer, LocalAccount)
    remote_owner = Owner(chain.w3, signer)
    policy = policy_for(chain, session_key, token)

    assert remote_owner.grant(policy) == policy.session_id
    assert remote_owner.session_report(policy).live is True
    sign_tx = {"eth": "eth_signTransaction", "web3signer": "eth_signTransaction", "clef": "account_signTransaction"}
    assert server.calls.count(sign_tx[api]) == 1

    fund(session_key.address)
    agent = SessionAgent(chain.w3, owner.address, session_key, policy)
    agent.transfer(token.address, RECIPIENT, 7, via="direct")
    assert token.functions.balanceOf(RECIPIENT).call() == 7

    remote_owner.revoke(policy.session_id)
    assert server.calls.count(sign_tx[api]) == 2
    assert remote_owner.session_report(policy).live is False
    state_before = read_session_state(chain.w3, owner.address, policy)
    with pytest.raises(get_error_class("SessionNotActive")) as info:
        agent.send_direct([Call(token.address, 0, transfer_data(RECIPIENT, 1))])
    assert info.value.sessionId == policy.session_id
    assert token.functions.balanceOf(RECIPIENT).call() == 7
    assert read_session_state(chain.w3, owner.address, policy) == state_before


def test_owner_operation_through_a_remote_signer_is_signed_as_typed_data(chain, owner, token, bundler, remote):
    server = remote([chain.accounts[1]])
    remote_owner = Owner(chain.w3, JsonRpcSigner(server.url))
    result = remote_owner.send_user_op([Call(token.address, 0, transfer_data(RECIPIENT, 11))],
                                       bundler=SelfBundler(bundler))
    assert result.success and result.sender == owner.address
    assert token.functions.balanceOf(RECIPIENT).call() == 11
    assert "eth_signTypedData_v4" in server.calls  # the userOpHash is EIP-712: the signer sees the fields


def test_remote_signer_cannot_sign_an_authorization_so_delegate_sends_nothing(chain, remote, fund):
    eoa = Account.create()
    fund(eoa.address)
    server = remote([eoa])
    remote_owner = Owner(chain.w3, JsonRpcSigner(server.url))
    nonce = chain.w3.eth.get_transaction_count(eoa.address)
    with pytest.raises(SignerUnsupportedError) as info:
        remote_owner.delegate()
    assert info.value.operation == "EIP-7702 authorization"
    assert "keystore key" in info.value.fix
    assert chain.w3.eth.get_transaction_count(eoa.address) == nonce
    assert bytes(chain.w3.eth.get_code(eoa.address)) == b""
    assert not any(m.startswith(("eth_sign", "account_sign")) for m in server.calls)


def test_sponsor_sends_the_set_code_transaction_through_a_remote_signer_that_knows_type_4(chain, remote, fund):
    eoa, sponsor = Account.create(), Account.create()
    fund(sponsor.address)
    server = remote([sponsor])
    owner = Owner(chain.w3, eoa)

    with pytest.raises(SignerUnsupportedError) as info:
        owner.delegate(sponsor=JsonRpcSigner(server.url))
    assert info.value.operation == "type-4 (EIP-7702) transaction"
    assert bytes(chain.w3.eth.get_code(eoa.address)) == b""

    receipt = owner.delegate(sponsor=JsonRpcSigner(server.url, set_code_transactions=True))
    assert receipt["status"] == 1 and receipt["type"] == 4
    assert owner.delegation() == owner.implementation
    assert chain.w3.eth.get_transaction_count(sponsor.address) == 1


def test_signer_answering_with_another_key_is_refused_before_anything_is_sent(chain, owner, token, session_key,
                                                                           bundler, remote):
    server = remote([chain.accounts[1]], lie_with=Account.create())
    remote_owner = Owner(chain.w3, JsonRpcSigner(server.url))
    policy = policy_for(chain, session_key, token)
    nonce = chain.w3.eth.get_transaction_count(owner.address)

    with pytest.raises(SignerResponseError) as info:
        remote_owner.grant(policy)
    assert "sender" in str(info.value)
    with pytest.raises(SignerResponseError) as info:
        remote_owner.send_user_op([Call(token.address, 0, transfer_data(RECIPIENT, 1))], bundler=bundler)
    assert info.value.operation == "EIP-712 typed data" and "recovers to" in str(info.value)
    assert chain.w3.eth.get_transaction_count(owner.address) == nonce
    assert owner.session_id_used(policy.session_id) is False
    assert token.functions.balanceOf(RECIPIENT).call() == 0


class VaultAccount(BaseAccount):
    """A BaseAccount that is not a LocalAccount: the key stays in a "vault" (here a closure), as a KMS or
    hardware-wallet adapter keeps it; only the four abstract methods of eth-account's BaseAccount exist."""

    def __init__(self) -> None:
        key = Account.create()
        self._address = key.address
        self._sign_hash = lambda digest: Account._sign_hash(digest, key.key)
        self._sign_tx = key.sign_transaction
        self.used: list[str] = []

    @property
    def address(self):
        return self._address

    def sign_message(self, signable_message):
        self.used.append("sign_message")
        return self._sign_hash(_hash_eip191_message(signable_message))

    def unsafe_sign_hash(self, message_hash):
        self.used.append("unsafe_sign_hash")
        return self._sign_hash(message_hash)

    def sign_transaction(self, transaction_dict, blobs=None):
        self.used.append("sign_transaction")
        return self._sign_tx(transaction_dict)


@pytest.mark.parametrize("path", ["user_op", "direct"])
def test_custom_base_account_acts_as_an_agent_on_both_paths(chain, owner, token, fund, bundler, grant, path):
    vault = VaultAccount()
    fund(vault.address)
    agent = grant(vault, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, CAP),),
                  max_uses=10)
    receipt = agent.transfer(token.address, RECIPIENT, 5, via=path, bundler=bundler if path == "user_op" else None)
    assert receipt.success and receipt.path == path
    assert token.functions.balanceOf(RECIPIENT).call() == 5
    assert read_session_state(chain.w3, owner.address, agent.policy).uses == 1
    assert vault.used == (["sign_message"] if path == "user_op" else ["sign_transaction"])

    with pytest.raises(get_error_class("TokenSpendCapExceeded")):
        agent.transfer(token.address, RECIPIENT, CAP, via=path, bundler=bundler if path == "user_op" else None)
    assert token.functions.balanceOf(RECIPIENT).call() == 5
    assert len(vault.used) == 1  # refused before anything was signed


def test_custom_base_account_signs_the_owner_authorization_with_unsafe_sign_hash(chain, fund, bundler):
    vault = VaultAccount()
    fund(vault.address)
    owner = Owner(chain.w3, vault)
    receipt = owner.delegate()
    assert receipt["type"] == 4 and owner.delegation() == owner.implementation
    assert vault.used == ["unsafe_sign_hash", "sign_transaction"]


def test_self_bundler_with_a_custom_base_account_keeps_the_outbox_record_of_its_signed_bundle(
        chain, owner, token, session_key, grant, tmp_path):
    """The self-bundler's handleOps transaction is signed by a BaseAccount that is not a LocalAccount; the
    outbox holds that very signed bundle (via "self_bundled") before it is sent, and a retry is refused."""
    from eth_account.typed_transactions import TypedTransaction
    from eth_utils import to_checksum_address
    from hexbytes import HexBytes

    from smartkeys.deployments import ENTRY_POINT_V08
    from smartkeys.errors import DuplicateIntentError
    from smartkeys.outbox import LANDED, Outbox

    relayer = VaultAccount()
    chain.send({"to": relayer.address, "value": 10**18}, chain.accounts[7])
    agent = grant(session_key, permissions=(Permission(token.address, TRANSFER),),
                  token_caps=(TokenCap(token.address, CAP),), max_uses=10)
    agent.outbox = Outbox(tmp_path / "outbox.jsonl")

    receipt = agent.transfer(token.address, RECIPIENT, 9, via="user_op", bundler=SelfBundler(relayer),
                             intent="invoice-7")
    (intent,) = agent.outbox.read()
    assert intent.via == "self_bundled" and intent.status == LANDED and intent.hash == receipt.user_op_hash
    raw = bytes.fromhex(intent.payload["raw"][2:])
    assert Account.recover_transaction(raw) == relayer.address
    assert "0x" + bytes(chain.w3.eth.get_transaction(receipt.transaction_hash)["hash"]).hex() == \
        intent.payload["tx_hash"]
    assert to_checksum_address(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["to"]) == ENTRY_POINT_V08
    assert relayer.used == ["sign_transaction"]
    assert token.functions.balanceOf(RECIPIENT).call() == 9

    with pytest.raises(DuplicateIntentError):
        agent.transfer(token.address, RECIPIENT, 9, via="user_op", bundler=SelfBundler(relayer), intent="invoice-7")
    assert token.functions.balanceOf(RECIPIENT).call() == 9 and relayer.used == ["sign_transaction"]
