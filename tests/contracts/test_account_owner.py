"""SmartKeysAccount, the owner's side: 7702 lifecycle, owner execution, owner user operations,
signature checks (ERC-4337 and ERC-1271), access control, receiving, and ERC-7201 storage.

Runs on the embedded chain (``chain`` fixture). ``owner`` is accounts[1] delegated to the account.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eth_abi import decode, encode
from eth_account import Account
from eth_utils import keccak, to_canonical_address
from web3.logs import DISCARD

from smartkeys import artifacts
from smartkeys.account import Call, DelegationError, Owner
from smartkeys.authorization import SECP256K1_N
from smartkeys.encoding import delegation_designator
from smartkeys.entrypoint import EntryPoint
from smartkeys.errors import (
    AuthorizationSkippedError,
    FailedOp,
    TransactionFailedError,
    UnknownRevertError,
    decode_revert,
    get_error_class,
    register_contract_errors,
)
from smartkeys.localchain import ENTRY_POINT_V08
from smartkeys.policy_codec import Permission, TokenCap, selector_of
from smartkeys.tx import REVERT_EXCEPTIONS, revert_data_of, send_transaction
from smartkeys.userop import user_op_hash

ACCOUNT_SOURCE = Path(__file__).resolve().parents[2] / "contracts" / "SmartKeysAccount.sol"
ACCOUNT_ARTIFACT = artifacts.load("SmartKeysAccount")
register_contract_errors(artifacts.load("test/MockTarget")["abi"])

Unauthorized = get_error_class("Unauthorized")
SessionEpochRevoked = get_error_class("SessionEpochRevoked")
Boom = get_error_class("Boom")

SIG_VALIDATION_FAILED = 1
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ERC1271_INVALID = bytes.fromhex("ffffffff")
TRANSFER = selector_of("transfer(address,uint256)")
HALF_N = SECP256K1_N // 2


# ----------------------------------------------------------------------------- helpers


def transfer_data(token, to: str, amount: int) -> bytes:
    return token.encode_abi("transfer", [to, amount])


def sign_raw_hash(account, digest: bytes) -> bytes:
    """65-byte r ‖ s ‖ v (v = 27/28) over a raw 32-byte hash, as the account checks it."""
    signed = Account.unsafe_sign_hash(digest, account.key)
    return signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])


def malleate(signature: bytes) -> bytes:
    """The other valid ECDSA signature for the same key and hash: s -> n - s (high s), v flipped."""
    s = int.from_bytes(signature[32:64], "big")
    v = 28 if signature[64] == 27 else 27
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v])


def validate_as_entry_point(owner, op, op_hash: bytes) -> int:
    """``validateUserOp(op, hash, 0)`` run by eth_call from the EntryPoint; the uint256 it returns.

    Needs the ``entry_point_can_call`` fixture on the embedded chain (see there).
    """
    data = owner.contract.encode_abi("validateUserOp", [op.to_abi_tuple(), op_hash, 0])
    raw = owner.w3.eth.call({"from": ENTRY_POINT_V08, "to": owner.address, "data": data})
    (validation_data,) = decode(["uint256"], bytes(raw))
    return validation_data


def call_revert(w3, tx: dict) -> Exception:
    """The decoded revert of an eth_call that must revert."""
    with pytest.raises(REVERT_EXCEPTIONS) as info:
        w3.eth.call(tx)
    return decode_revert(revert_data_of(info.value) or b"")


def last_receipt(w3):
    """Receipt of the latest block's only transaction (the embedded chain mines one tx per block)."""
    (tx_hash,) = w3.eth.get_block("latest")["transactions"]
    return w3.eth.get_transaction_receipt(tx_hash)


def session_policy_fields(token) -> dict:
    """A small valid scope: ``token.transfer`` with a cap (the ``grant`` fixture adds the window)."""
    return dict(permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 10**9),))


@pytest.fixture
def entry_point_can_call(chain):
    """Let eth_call run "from" the EntryPoint.

    On anvil ``{"from": ENTRY_POINT_V08, "gasPrice": 0}`` is enough. eth-tester (py-evm) checks the fee even in
    eth_call: ``gasPrice: 0`` fails with "max fee per gas (0) is lower than block's base fee", and the default
    price needs a balance the EntryPoint does not have on a fresh chain. A deposit gives it ether.
    """
    chain.send({"to": ENTRY_POINT_V08, "value": 10**18}, chain.accounts[7])


@pytest.fixture
def target(deploy):
    return deploy("test/MockTarget")


@pytest.fixture
def recipient(chain):
    return chain.accounts[9].address


@pytest.fixture
def stranger(chain):
    return chain.accounts[6]


# ----------------------------------------------------------------------------- delegation


def test_self_sponsored_delegation_round_trip_sets_exact_designator_then_clears_code(chain):
    w3 = chain.w3
    owner = Owner(w3, chain.accounts[2])
    assert w3.eth.get_code(owner.address) == b""

    receipt = owner.delegate()
    assert receipt["from"] == owner.address
    code = bytes(w3.eth.get_code(owner.address))
    assert code == bytes.fromhex("ef0100") + to_canonical_address(owner.implementation)
    assert code == delegation_designator(owner.implementation)
    assert owner.delegation() == owner.implementation

    receipt = owner.undelegate()
    assert receipt["from"] == owner.address
    assert w3.eth.get_code(owner.address) == b""
    assert owner.delegation() is None


def test_sponsored_delegation_round_trip_is_paid_by_the_sponsor(chain):
    w3 = chain.w3
    owner, sponsor = Owner(w3, chain.accounts[3]), chain.accounts[4]
    owner_balance = w3.eth.get_balance(owner.address)
    owner_nonce = w3.eth.get_transaction_count(owner.address)

    for action, expected_code in (
        (owner.delegate, bytes.fromhex("ef0100") + to_canonical_address(owner.implementation)),
        (owner.undelegate, b""),
    ):
        sponsor_balance = w3.eth.get_balance(sponsor.address)
        receipt = action(sponsor=sponsor)
        assert receipt["status"] == 1 and receipt["from"] == sponsor.address
        assert bytes(w3.eth.get_code(owner.address)) == expected_code
        assert w3.eth.get_balance(sponsor.address) == (
            sponsor_balance - receipt["gasUsed"] * receipt["effectiveGasPrice"]
        )
        assert w3.eth.get_balance(owner.address) == owner_balance  # the owner paid nothing

    # each processed authorization bumps the authority's nonce; the owner sent no transaction
    assert w3.eth.get_transaction_count(owner.address) == owner_nonce + 2


@pytest.mark.parametrize("payer", ["self-sponsored", "sponsored"])
def test_wrong_nonce_authorization_is_refused_before_sending(chain, monkeypatch, payer):
    import smartkeys.account as account_module

    w3 = chain.w3
    owner = Owner(w3, chain.accounts[5])
    sponsor = chain.accounts[4] if payer == "sponsored" else None
    before = (w3.eth.block_number, w3.eth.get_transaction_count(owner.address))
    # Force the classic mistake: self-sponsored, the current nonce (not nonce + 1); sponsored, nonce + 1.
    monkeypatch.setattr(account_module, "authorization_nonce", lambda current, self_sponsored: current + (not self_sponsored))

    with pytest.raises(AuthorizationSkippedError) as info:
        owner.delegate(sponsor=sponsor)
    assert isinstance(info.value, DelegationError) and info.value.tx_hash is None
    assert info.value.auth_nonce == before[1] + (payer == "sponsored")
    assert info.value.expected_nonce == before[1] + (payer == "self-sponsored")
    assert (w3.eth.block_number, w3.eth.get_transaction_count(owner.address)) == before  # nothing sent


def test_authorization_skipped_on_chain_is_a_typed_error_after_mining(chain, monkeypatch):
    import smartkeys.account as account_module

    w3 = chain.w3
    owner = Owner(w3, chain.accounts[5])
    nonce = w3.eth.get_transaction_count(owner.address)
    # As if another transaction of the EOA got mined between the check and this one: the check passes, the
    # chain skips the tuple.
    monkeypatch.setattr(account_module, "authorization_nonce", lambda current, self_sponsored: current)
    monkeypatch.setattr(Owner, "_check_auth_nonce", lambda self, auth, tx_nonce, delegate: None)

    with pytest.raises(AuthorizationSkippedError, match="authorization skipped in transaction") as info:
        owner.delegate()
    err = info.value
    assert (err.auth_nonce, err.expected_nonce, err.current_delegation) == (nonce, nonce + 1, None)
    assert w3.eth.get_code(owner.address) == b""
    assert w3.eth.get_transaction_count(owner.address) == nonce + 1  # the tx itself was mined
    receipt = last_receipt(w3)
    assert receipt["status"] == 1 and receipt["from"] == owner.address  # the chain skipped it silently
    assert err.tx_hash == "0x" + bytes(receipt["transactionHash"]).hex()


@pytest.mark.parametrize("payer", ["self-sponsored", "sponsored"])
def test_redelegation_revokes_old_sessions_by_default(
    chain, owner, token, grant, session_key, fund, recipient, payer
):
    agent = grant(session_key, **session_policy_fields(token))
    fund(session_key.address)
    agent.send_direct([Call(token.address, 0, transfer_data(token, recipient, 1))])  # live before
    sponsor = chain.accounts[4] if payer == "sponsored" else None

    # Leaving with keep_sessions=True (so undelegate's own ERC-7779 revocation is skipped): coming back
    # through delegate() still revokes them.
    owner.undelegate(sponsor=sponsor, keep_sessions=True)
    receipt = owner.delegate(sponsor=sponsor)

    # revoked in the delegation transaction itself: no moment where the old keys are live again
    (revoked,) = owner.contract.events.AllSessionsRevoked().process_receipt(receipt, errors=DISCARD)
    assert revoked["args"]["newEpoch"] == 1

    live, _uses, _native, _gas, granted_epoch = owner.contract.functions.sessionStatus(agent.session_id).call()
    assert not live
    assert owner.contract.functions.sessionEpoch().call() == 1
    balance = token.functions.balanceOf(recipient).call()
    with pytest.raises(SessionEpochRevoked) as info:
        agent.send_direct([Call(token.address, 0, transfer_data(token, recipient, 1))])
    assert (info.value.grantedEpoch, info.value.currentEpoch) == (granted_epoch, 1) == (0, 1)
    assert info.value.sessionId == agent.session_id
    assert token.functions.balanceOf(recipient).call() == balance


def test_redelegation_with_keep_sessions_keeps_old_sessions_live(
    chain, owner, token, grant, session_key, fund, recipient
):
    agent = grant(session_key, **session_policy_fields(token))
    fund(session_key.address)

    owner.undelegate(keep_sessions=True)
    owner.delegate(keep_sessions=True)

    live, *_ = owner.contract.functions.sessionStatus(agent.session_id).call()
    assert live
    assert owner.contract.functions.sessionEpoch().call() == 0
    balance = token.functions.balanceOf(recipient).call()
    agent.send_direct([Call(token.address, 0, transfer_data(token, recipient, 5))])
    assert token.functions.balanceOf(recipient).call() == balance + 5


# ----------------------------------------------------------------------------- owner execution


def test_owner_execute_single_call_moves_tokens_and_ether(chain, owner, token, target, recipient):
    w3 = chain.w3
    token_before = token.functions.balanceOf(recipient).call()
    owner_tokens = token.functions.balanceOf(owner.address).call()

    receipt = owner.execute(token.address, 0, transfer_data(token, recipient, 1234))
    assert receipt["from"] == owner.address and receipt["to"] == owner.address
    assert token.functions.balanceOf(recipient).call() == token_before + 1234
    assert token.functions.balanceOf(owner.address).call() == owner_tokens - 1234

    owner.execute(target.address, 777, target.encode_abi("ping", [3]))
    assert w3.eth.get_balance(target.address) == 777
    assert target.functions.counter().call() == 3


def test_owner_execute_batch_runs_every_call_in_order(chain, owner, token, target, recipient):
    token_before = token.functions.balanceOf(recipient).call()
    owner.execute_batch(
        [
            Call(token.address, 0, transfer_data(token, recipient, 10)),
            Call(target.address, 5, target.encode_abi("ping", [2])),
            Call(target.address, 0, target.encode_abi("ping", [40])),
        ]
    )
    assert token.functions.balanceOf(recipient).call() == token_before + 10
    assert target.functions.counter().call() == 42
    assert chain.w3.eth.get_balance(target.address) == 5


def test_failing_inner_call_reverts_whole_batch_with_decoded_boom(chain, owner, token, target, recipient):
    w3 = chain.w3
    calls = [
        Call(token.address, 0, transfer_data(token, recipient, 10)),
        Call(target.address, 0, target.encode_abi("ping", [1])),
        Call(target.address, 0, target.encode_abi("fail", [7])),
    ]
    token_before = token.functions.balanceOf(recipient).call()

    # preflight: the estimate reverts with the inner custom error, nothing is sent
    nonce = w3.eth.get_transaction_count(owner.address)
    with pytest.raises(Boom) as info:
        owner.execute_batch(calls)
    assert info.value.args["code"] == 7
    assert w3.eth.get_transaction_count(owner.address) == nonce

    # mined anyway (explicit gas): the transaction fails and the earlier calls are undone
    data = owner.contract.encode_abi("executeBatch", [[c.as_tuple() for c in calls]])
    with pytest.raises(TransactionFailedError) as mined:
        send_transaction(w3, chain.accounts[1], {"to": owner.address, "data": data}, gas=500_000)
    assert mined.value.receipt["status"] == 0
    assert isinstance(mined.value.revert, Boom) and mined.value.revert.args["code"] == 7
    assert token.functions.balanceOf(recipient).call() == token_before
    assert target.functions.counter().call() == 0


def test_failing_single_execute_bubbles_the_decoded_inner_error(owner, target):
    with pytest.raises(Boom) as info:
        owner.execute(target.address, 0, target.encode_abi("fail", [99]))
    assert info.value.args["code"] == 99


# ----------------------------------------------------------------------------- owner user operations


def test_owner_user_op_succeeds_and_local_hash_equals_entry_point_hash(chain, owner, bundler, token, recipient):
    ep = EntryPoint(chain.w3)
    op = owner.sign_user_op(owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 500))]))
    local = user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    assert local == ep.get_user_op_hash(op)
    before = token.functions.balanceOf(recipient).call()

    (result,) = ep.handle_ops([op], bundler)

    assert result.success and result.user_op_hash == local
    assert result.sender == owner.address and result.nonce == 0
    assert token.functions.balanceOf(recipient).call() == before + 500
    assert ep.get_nonce(owner.address) == 1


def test_owner_send_user_op_self_bundled_runs_the_call(chain, owner, bundler, token, recipient):
    before = token.functions.balanceOf(recipient).call()
    result = owner.send_user_op([Call(token.address, 0, transfer_data(token, recipient, 321))], bundler=bundler)
    assert result.success and result.actual_gas_used > 0
    assert token.functions.balanceOf(recipient).call() == before + 321


def test_owner_batch_user_op_runs_every_call(chain, owner, bundler, token, target, recipient):
    before = token.functions.balanceOf(recipient).call()
    op = owner.build_user_op(
        [
            Call(token.address, 0, transfer_data(token, recipient, 3)),
            Call(target.address, 9, target.encode_abi("ping", [4])),
        ]
    )
    assert op.call_data[:4] == bytes.fromhex(ACCOUNT_ARTIFACT["methodIdentifiers"][
        "executeBatch((address,uint256,bytes)[])"])
    (result,) = EntryPoint(chain.w3).handle_ops([owner.sign_user_op(op)], bundler)
    assert result.success
    assert token.functions.balanceOf(recipient).call() == before + 3
    assert target.functions.counter().call() == 4
    assert chain.w3.eth.get_balance(target.address) == 9


def test_owner_user_op_with_failing_call_reports_decoded_boom(chain, owner, bundler, target):
    with pytest.raises(Boom) as info:
        # estimation of the call gas already reverts with the inner error
        owner.send_user_op([Call(target.address, 0, target.encode_abi("fail", [5]))], bundler=bundler)
    assert info.value.args["code"] == 5


# ----------------------------------------------------------------------------- signatures (4337)


def test_good_owner_signature_validates_to_zero(chain, owner, token, recipient, entry_point_can_call):
    op = owner.sign_user_op(owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 1))]))
    assert validate_as_entry_point(owner, op, user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)) == 0


def test_bad_owner_signature_returns_sig_validation_failed(
    chain, owner, token, recipient, stranger, entry_point_can_call
):
    op = owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 1))])
    op_hash = user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    forged = op.replace(signature=sign_raw_hash(stranger, op_hash))
    assert validate_as_entry_point(owner, forged, op_hash) == SIG_VALIDATION_FAILED


def test_bad_owner_signature_makes_handle_ops_fail_with_aa24(chain, owner, bundler, token, recipient, stranger):
    ep = EntryPoint(chain.w3)
    op = owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 1))])
    forged = op.replace(signature=sign_raw_hash(stranger, user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)))
    before = token.functions.balanceOf(recipient).call()

    with pytest.raises(FailedOp) as info:
        ep.handle_ops([forged], bundler)

    assert info.value.code == "AA24" and info.value.op_index == 0
    assert ep.get_nonce(owner.address) == 0
    assert token.functions.balanceOf(recipient).call() == before


def test_high_s_malleated_owner_signature_returns_sig_validation_failed(
    chain, owner, token, recipient, entry_point_can_call
):
    op = owner.sign_user_op(owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 1))]))
    op_hash = user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    high_s = malleate(op.signature)
    assert int.from_bytes(high_s[32:64], "big") > HALF_N
    # the malleated signature is a valid ECDSA signature by the owner (plain ecrecover accepts it)...
    v, r, s = high_s[64], int.from_bytes(high_s[:32], "big"), int.from_bytes(high_s[32:64], "big")
    assert Account._recover_hash(op_hash, vrs=(v, r, s)) == owner.address
    # ...but the account only accepts low s
    assert validate_as_entry_point(owner, op.replace(signature=high_s), op_hash) == SIG_VALIDATION_FAILED


@pytest.mark.parametrize(
    "signature",
    [
        bytes(65),  # r = s = 0, v = 0
        bytes(32) + (1).to_bytes(32, "big") + b"\x1b",  # r = 0: ecrecover returns the zero address
        (1).to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1d",  # v = 29
        b"",
        b"\x01" * 64,  # 64 bytes (compact form is not accepted)
    ],
    ids=["all-zero", "r-zero", "v-29", "empty", "64-bytes"],
)
def test_garbage_signature_recovering_nothing_returns_sig_validation_failed(
    chain, owner, token, recipient, signature, entry_point_can_call
):
    op = owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 1))])
    op_hash = user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    assert validate_as_entry_point(owner, op.replace(signature=signature), op_hash) == SIG_VALIDATION_FAILED


# ----------------------------------------------------------------------------- ERC-1271


def test_owner_signature_passes_erc1271(chain, owner):
    digest = keccak(b"an order the owner signed")
    signature = sign_raw_hash(chain.accounts[1], digest)
    assert owner.contract.functions.isValidSignature(digest, signature).call() == ERC1271_MAGIC


def test_session_key_signature_fails_erc1271(chain, owner, token, grant, session_key):
    agent = grant(session_key, **session_policy_fields(token))
    assert owner.contract.functions.sessionStatus(agent.session_id).call()[0]  # the session is live
    digest = keccak(b"a permit the agent would like to sign")
    assert owner.contract.functions.isValidSignature(digest, sign_raw_hash(session_key, digest)).call() == (
        ERC1271_INVALID
    )


@pytest.mark.parametrize(
    "make_signature",
    [
        lambda digest, owner_account: sign_raw_hash(Account.create(), digest),
        lambda digest, owner_account: sign_raw_hash(owner_account, keccak(digest)),  # owner, other hash
        lambda digest, owner_account: malleate(sign_raw_hash(owner_account, digest)),  # owner, high s
        lambda digest, owner_account: sign_raw_hash(owner_account, digest)[:64],  # truncated
        lambda digest, owner_account: sign_raw_hash(owner_account, digest) + b"\x00",  # 66 bytes
        lambda digest, owner_account: b"",
        lambda digest, owner_account: bytes(65),
    ],
    ids=["random-key", "owner-other-hash", "owner-high-s", "64-bytes", "66-bytes", "empty", "zeros"],
)
def test_non_owner_or_malformed_signature_fails_erc1271(chain, owner, make_signature):
    digest = keccak(b"some hash")
    signature = make_signature(digest, chain.accounts[1])
    assert owner.contract.functions.isValidSignature(digest, signature).call() == ERC1271_INVALID


# ----------------------------------------------------------------------------- access control

OWNER_ONLY_CALLS = {
    "execute": lambda c, policy, sid: c.encode_abi("execute", [c.address, 0, b""]),
    "executeBatch": lambda c, policy, sid: c.encode_abi("executeBatch", [[]]),
    "grantSession": lambda c, policy, sid: c.encode_abi("grantSession", [policy]),
    "revokeSession": lambda c, policy, sid: c.encode_abi("revokeSession", [sid]),
    "revokeAllSessions": lambda c, policy, sid: c.encode_abi("revokeAllSessions", []),
    "rotateSessionSigner": lambda c, policy, sid: c.encode_abi("rotateSessionSigner", [policy, policy]),
    "renewSessionPolicy": lambda c, policy, sid: c.encode_abi("renewSessionPolicy", [policy, policy]),
}


@pytest.mark.parametrize("function", sorted(OWNER_ONLY_CALLS))
@pytest.mark.parametrize("caller", ["stranger", "session_key"])
def test_owner_function_from_non_owner_reverts_with_unauthorized(
    chain, owner, token, grant, session_key, fund, recipient, function, caller
):
    agent = grant(session_key, **session_policy_fields(token))
    sender = chain.accounts[6] if caller == "stranger" else session_key
    fund(session_key.address)
    data = OWNER_ONLY_CALLS[function](owner.contract, agent.policy.encode(), agent.session_id)
    nonce = chain.w3.eth.get_transaction_count(sender.address)

    with pytest.raises(Unauthorized) as info:
        send_transaction(chain.w3, sender, {"to": owner.address, "data": data})

    assert info.value.caller == sender.address
    assert chain.w3.eth.get_transaction_count(sender.address) == nonce  # refused before sending
    # mined anyway: fails, and the session and epoch are untouched
    with pytest.raises(TransactionFailedError) as mined:
        send_transaction(chain.w3, sender, {"to": owner.address, "data": data}, gas=300_000)
    assert isinstance(mined.value.revert, Unauthorized)
    assert owner.contract.functions.sessionStatus(agent.session_id).call()[0]
    assert owner.contract.functions.sessionEpoch().call() == 0


@pytest.mark.parametrize("caller", ["stranger", "owner-itself"])
def test_validate_user_op_from_anyone_but_entry_point_reverts_with_unauthorized(
    chain, owner, token, recipient, caller, entry_point_can_call
):
    op = owner.sign_user_op(owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 1))]))
    op_hash = user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    data = owner.contract.encode_abi("validateUserOp", [op.to_abi_tuple(), op_hash, 0])
    sender = chain.accounts[6].address if caller == "stranger" else owner.address

    err = call_revert(chain.w3, {"from": sender, "to": owner.address, "data": data})

    assert isinstance(err, Unauthorized) and err.caller == sender
    # the same call from the EntryPoint passes (the op is well signed)
    assert validate_as_entry_point(owner, op, op_hash) == 0


def test_validate_user_op_from_stranger_cannot_pull_funds(chain, owner, token, recipient, stranger):
    op = owner.sign_user_op(owner.build_user_op([Call(token.address, 0, transfer_data(token, recipient, 1))]))
    op_hash = user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    data = owner.contract.encode_abi("validateUserOp", [op.to_abi_tuple(), op_hash, 10**18])
    balance = chain.w3.eth.get_balance(owner.address)
    with pytest.raises(Unauthorized):
        send_transaction(chain.w3, stranger, {"to": owner.address, "data": data})
    with pytest.raises(TransactionFailedError):
        send_transaction(chain.w3, stranger, {"to": owner.address, "data": data}, gas=300_000)
    assert chain.w3.eth.get_balance(owner.address) == balance


# ----------------------------------------------------------------------------- receiving


def test_plain_ether_transfer_to_delegated_eoa_is_accepted(chain, owner):
    w3 = chain.w3
    before = w3.eth.get_balance(owner.address)
    receipt = chain.send({"to": owner.address, "value": 12345}, chain.accounts[7])
    assert receipt["status"] == 1
    assert w3.eth.get_balance(owner.address) == before + 12345


def test_nft_receiver_hooks_return_their_selectors(chain, owner):
    fns = owner.contract.functions
    stranger = chain.accounts[6].address
    assert fns.onERC721Received(stranger, stranger, 1, b"").call() == bytes.fromhex("150b7a02")
    assert fns.onERC1155Received(stranger, stranger, 1, 2, b"").call() == bytes.fromhex("f23a6e61")
    assert fns.onERC1155BatchReceived(stranger, stranger, [1, 2], [3, 4], b"").call() == bytes.fromhex("bc197c81")


@pytest.mark.parametrize(
    ("interface_id", "supported"),
    [
        ("01ffc9a7", True),  # IERC165
        ("4e2312e0", True),  # IERC1155Receiver
        ("ffffffff", False),  # never, per ERC-165
        ("80ac58cd", False),  # IERC721 (the account is not a token)
    ],
)
def test_supports_interface_reports_erc165_and_erc1155_receiver(owner, interface_id, supported):
    assert owner.contract.functions.supportsInterface(bytes.fromhex(interface_id)).call() is supported


def test_ierc1155_receiver_interface_id_is_the_xor_of_its_selectors():
    ids = ACCOUNT_ARTIFACT["methodIdentifiers"]
    a = int(ids["onERC1155Received(address,address,uint256,uint256,bytes)"], 16)
    b = int(ids["onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)"], 16)
    assert a ^ b == 0x4E2312E0


# ----------------------------------------------------------------------------- ERC-7201 storage


def erc7201_slot(namespace: str) -> int:
    inner = int.from_bytes(keccak(text=namespace), "big") - 1
    return int.from_bytes(keccak(encode(["uint256"], [inner])), "big") & ~0xFF


SESSION_SLOT = erc7201_slot("smartkeys.account.sessions")


def test_erc7201_slot_formula_matches_the_contract_constant():
    source = ACCOUNT_SOURCE.read_text()
    match = re.search(r"SESSION_STORAGE_SLOT\s*=\s*(0x[0-9a-fA-F]{64})\s*;", source)
    assert match, "SESSION_STORAGE_SLOT constant not found"
    assert int(match.group(1), 16) == SESSION_SLOT
    assert "@custom:storage-location erc7201:smartkeys.account.sessions" in source
    assert SESSION_SLOT & 0xFF == 0


def test_revoke_all_writes_the_epoch_at_the_namespace_slot(chain, owner):
    w3 = chain.w3
    assert int.from_bytes(w3.eth.get_storage_at(owner.address, SESSION_SLOT), "big") == 0
    owner.revoke_all()
    assert int.from_bytes(w3.eth.get_storage_at(owner.address, SESSION_SLOT), "big") == 1
    owner.revoke_all()
    assert int.from_bytes(w3.eth.get_storage_at(owner.address, SESSION_SLOT), "big") == 2
    assert owner.contract.functions.sessionEpoch().call() == 2
    # nothing at the conventional slots
    assert int.from_bytes(w3.eth.get_storage_at(owner.address, 0), "big") == 0


def test_grant_writes_the_status_word_at_the_namespaced_mapping_slot(chain, owner, token, grant, session_key):
    w3 = chain.w3
    owner.revoke_all()  # epoch 1, so the status word's epoch field is not the trivial one
    agent = grant(session_key, **session_policy_fields(token))
    status_slot = int.from_bytes(keccak(agent.session_id + (SESSION_SLOT + 1).to_bytes(32, "big")), "big")

    word = int.from_bytes(w3.eth.get_storage_at(owner.address, status_slot), "big")
    live, uses, native_spent, gas_spent, granted_epoch = owner.contract.functions.sessionStatus(agent.session_id).call()
    assert word != 0 and live
    assert word >> 224 == granted_epoch + 1 == 2
    assert word & 0xFFFFFFFF == uses
    assert (word >> 32) & (2**96 - 1) == native_spent
    assert (word >> 128) & (2**96 - 1) == gas_spent

    owner.revoke(agent.session_id)
    # Revoking sets the top bit and keeps the rest: the id stays used (it can never be granted again) and
    # what the session did stays readable.
    revoked = int.from_bytes(w3.eth.get_storage_at(owner.address, status_slot), "big")
    assert revoked == word | (1 << 255)
    assert not owner.contract.functions.sessionStatus(agent.session_id).call()[0]


def test_artifact_storage_layout_has_no_plain_storage_variables():
    layout = ACCOUNT_ARTIFACT["storageLayout"]
    assert layout is not None and "storage" in layout
    assert layout["storage"] == []


# ----------------------------------------------------------------------------- no initializer, no fallback


def test_abi_has_no_initializer_or_owner_setter():
    names = [e["name"] for e in ACCOUNT_ARTIFACT["abi"] if e["type"] == "function"]
    assert names  # the ABI was read
    suspicious = [n for n in names if re.search(r"init|setup|owner|upgrade", n, re.IGNORECASE)]
    assert suspicious == []
    assert not any(e["type"] in ("constructor", "fallback") for e in ACCOUNT_ARTIFACT["abi"])


@pytest.mark.parametrize("data", ["deadbeef", "8129fc1c", "c4d66de8" + "00" * 32, "13af4035" + "00" * 32, "00"])
def test_unknown_selector_reverts_without_fallback(chain, owner, data):
    # deadbeef; initialize(); initialize(address); setOwner(address); one stray byte
    err = call_revert(chain.w3, {"from": chain.accounts[6].address, "to": owner.address, "data": bytes.fromhex(data)})
    assert isinstance(err, UnknownRevertError) and err.data == b""
