"""A policy compiled from the friendly model is granted, then read back from its SessionGranted log."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hexbytes import HexBytes

from smartkeys.errors import InvalidInputError
from smartkeys.policy import (
    SESSION_GRANTED_TOPIC,
    PolicyIntegrityError,
    PolicyNotFoundError,
    decompile,
    parse_policy,
    policy_from_chain,
)
from smartkeys.policy_codec import PermissionMode

ROUTER = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"
PAYMASTER = "0xDDdDddDdDdddDDddDDddDDDDdDdDDdDDdDDDDDDd"


def friendly(key_address: str, token_address: str, payee: str, **extra) -> dict:
    data = {
        "key": key_address,
        "valid_for": "24h",
        "tokens": {"USDC": {"address": token_address, "decimals": 6}},
        "contracts": {"router": ROUTER},
        "allow": [
            {"contract": "USDC", "functions": ["transfer(address,uint256)"]},
            {"contract": "router", "functions": "*"},
            {"send_native_to": payee},
        ],
        "limits": {
            "native": {"per_call": "0.1 ether", "total": "1 ether", "per_period": "0.2 ether", "period": "day"},
            "tokens": {"USDC": {"total": "100.5 USDC", "per_period": "20 USDC", "period": "per day"}},
            "max_uses": 10,
            "gas_budget": "0.05 ether",
            "paymasters": [PAYMASTER],
        },
    }
    data.update(extra)
    return data


def test_granted_policy_reads_back_equal(chain, owner, token, session_key):
    policy = parse_policy(friendly(session_key.address, token.address, chain.accounts[9].address)).compile(chain.time())
    session_id = owner.grant(policy)

    back = policy_from_chain(chain.w3, owner.address, session_id)

    assert back == policy
    assert back.encode() == policy.encode()
    assert back.token_caps[0].cap == 100_500_000
    assert [p.mode for p in back.permissions] == [
        PermissionMode.EXACT, PermissionMode.ANY_SELECTOR, PermissionMode.EMPTY_CALLDATA]


def test_chain_policy_decompiles_to_human_units(chain, owner, token, session_key):
    policy = parse_policy(friendly(session_key.address, token.address, chain.accounts[9].address)).compile(chain.time())
    session_id = owner.grant(policy)

    model = decompile(policy_from_chain(chain.w3, owner.address, "0x" + session_id.hex()),
                      tokens={"USDC": (token.address, 6)}, contracts={"router": ROUTER})

    data = model.to_dict()
    assert data["limits"]["tokens"]["USDC"] == {"total": "100.5 USDC", "per_period": "20 USDC", "period": "day"}
    assert data["limits"]["native"]["per_call"] == "0.1 ether"
    assert data["allow"][1] == {"contract": "router", "functions": "*"}
    assert model.compile(chain.time()) == policy


def test_each_session_id_reads_its_own_policy(chain, owner, token, session_key):
    payee = chain.accounts[9].address
    first = parse_policy(friendly(session_key.address, token.address, payee)).compile(chain.time())
    second = parse_policy(friendly(session_key.address, token.address, payee, salt=7)).compile(chain.time())
    id1, id2 = owner.grant(first), owner.grant(second)
    assert id1 != id2
    assert policy_from_chain(chain.w3, owner.address, id1) == first
    assert policy_from_chain(chain.w3, owner.address, id2) == second


def test_unknown_session_id_is_not_found(chain, owner):
    with pytest.raises(PolicyNotFoundError) as info:
        policy_from_chain(chain.w3, owner.address, b"\x01" * 32)
    assert owner.address in str(info.value)


def test_logs_of_other_accounts_do_not_match(chain, owner, token, session_key):
    policy = parse_policy(friendly(session_key.address, token.address, chain.accounts[9].address)).compile(chain.time())
    session_id = owner.grant(policy)
    with pytest.raises(PolicyNotFoundError):
        policy_from_chain(chain.w3, chain.accounts[2].address, session_id)


def test_event_topic_matches_the_account_abi(owner):
    topic = owner.contract.events.SessionGranted().topic
    assert bytes(HexBytes(topic)) == SESSION_GRANTED_TOPIC


def test_bad_session_id_is_refused_before_any_rpc_call():
    class NoRPC:
        class eth:  # noqa: N801
            @staticmethod
            def get_logs(_):
                raise AssertionError("no RPC call expected")

    with pytest.raises(InvalidInputError) as info:
        policy_from_chain(NoRPC, ROUTER, b"\x01" * 31)
    assert info.value.field == "session_id"


def test_a_log_whose_policy_does_not_hash_to_the_id_is_refused(chain, owner, token, session_key):
    """A lying RPC (or a wrong filter) cannot pass another policy off as this session's."""
    policy = parse_policy(friendly(session_key.address, token.address, chain.accounts[9].address)).compile(chain.time())
    other = parse_policy(friendly(session_key.address, token.address, chain.accounts[9].address, salt=1)).compile(chain.time())
    claimed = policy.session_id

    class LyingRPC:
        class eth:  # noqa: N801
            @staticmethod
            def get_logs(_):
                return [{
                    "topics": [SESSION_GRANTED_TOPIC, claimed, b"\x00" * 12 + bytes.fromhex(policy.key[2:])],
                    "data": abi_encode(["uint32", "bytes"], [0, other.encode()]),
                }]

    with pytest.raises(PolicyIntegrityError):
        policy_from_chain(LyingRPC, owner.address, claimed, from_block=0, to_block=0)  # the fake has no blocks
    assert keccak(other.encode()) != claimed
