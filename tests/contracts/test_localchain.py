"""The embedded local chain: canonical deployments, CREATE2, snapshots, time, EIP-7702.

Run with ``pytest -s`` to see the measured gas figures.
"""

import time

import pytest
import rlp
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address

from smartkeys import artifacts
from smartkeys.localchain import (
    CREATE2_DEPLOYER,
    CREATE2_DEPLOYER_RUNTIME,
    ENTRY_POINT_V08,
    SIMPLE7702_ADDRESS,
    LocalChainError,
    create2_address,
    init_code,
    start_local_chain,
)

ZERO_ADDRESS = "0x" + "00" * 20
DELEGATION_PREFIX = bytes.fromhex("ef0100")
# anvil 1.7.1 (Prague) baseline from design.md: one authorization + empty call.
ANVIL_DELEGATION_GAS = 36_837


def _hex(b: str) -> bytes:
    return bytes.fromhex(b[2:] if b.startswith("0x") else b)


def _word(value: int | bytes) -> bytes:
    return value.to_bytes(32, "big") if isinstance(value, int) else value.rjust(32, b"\x00")


# A test-only contract: constructor(uint256 x); runtime returns x (PUSH32 x; MSTORE; RETURN).
_RUNTIME_TAIL = "60005260206000f3"
RETURNS_ARG = {
    "abi": [{"type": "constructor", "stateMutability": "nonpayable",
             "inputs": [{"name": "x", "type": "uint256"}]}],
    "bytecode": "0x"
    + "67" + _RUNTIME_TAIL + "600952"   # mem[33:41] = tail
    + "607f600053"                       # mem[0] = PUSH32
    + "6020602038036001" + "39"          # mem[1:33] = last 32 bytes of code (the argument)
    + "60296000f3",                      # return mem[0:41]
}


def _returning(runtime_hex: str) -> dict:
    """Artifact whose constructor returns ``runtime_hex`` (at most 32 bytes) as the code."""
    code = bytes.fromhex(runtime_hex)
    ctor = bytes([0x60 + len(code) - 1]) + code + bytes.fromhex("600052")
    ctor += bytes([0x60, len(code), 0x60, 32 - len(code), 0xF3])  # return(32 - len, len)
    return {"abi": [], "bytecode": "0x" + ctor.hex()}


# Runtime that stores block.timestamp in slot 0 and block.number in slot 1 on any call.
RECORD_BLOCK_RUNTIME = "4260005543600155" + "00"
RECORD_BLOCK = _returning(RECORD_BLOCK_RUNTIME)


# ----------------------------------------------------------------- canonical deployments


def test_startup_time_and_proxy(local_chain):
    t0 = time.perf_counter()
    fresh = start_local_chain()
    elapsed = time.perf_counter() - t0
    print(f"\n[localchain] start_local_chain(): {elapsed * 1000:.0f} ms (block {fresh.w3.eth.block_number})")
    assert fresh.w3.eth.get_code(CREATE2_DEPLOYER) == CREATE2_DEPLOYER_RUNTIME
    assert fresh.w3.eth.get_code(ENTRY_POINT_V08)
    assert elapsed < 10


def test_accounts_funded_and_distinct(chain, accounts):
    assert len(accounts) >= 10
    addrs = {a.address for a in accounts}
    assert len(addrs) == len(accounts)
    assert chain.deployer.address not in addrs
    for a in accounts:
        assert chain.w3.eth.get_balance(a.address) == 1_000_000 * 10**18
        assert chain.w3.eth.get_transaction_count(a.address) == 0
    # w3.eth.accounts start with the funded accounts, in order (anvil also lists the deployer after them)
    assert list(chain.w3.eth.accounts)[: len(accounts)] == [a.address for a in accounts]
    # deterministic (anvil's default first account)
    assert accounts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_entrypoint_at_canonical_address(chain):
    w3 = chain.w3
    art = artifacts.load("vendor/EntryPoint")
    code = bytes(w3.eth.get_code(ENTRY_POINT_V08))
    expected = _hex(art["deployedBytecode"])
    assert len(code) == len(expected)
    # EntryPoint has immutables (senderCreator, EIP-712 cache): outside them the code is the
    # artifact's; inside them the artifact holds zero placeholders.
    diffs = [i for i, (a, b) in enumerate(zip(code, expected, strict=True)) if a != b]
    assert diffs, "immutables should have been filled in"
    assert all(expected[i] == 0 for i in diffs)
    assert len(diffs) < 300

    ep = w3.eth.contract(address=ENTRY_POINT_V08, abi=art["abi"])
    sender_creator = ep.functions.senderCreator().call()
    # created with `new SenderCreator()` in the constructor: CREATE from the EntryPoint, nonce 1
    assert sender_creator == to_checksum_address(keccak(rlp.encode([to_canonical_address(ENTRY_POINT_V08), 1]))[12:])
    assert w3.eth.get_code(sender_creator)

    _fields, name, version, chain_id, verifying, _salt, _ext = ep.functions.eip712Domain().call()
    assert chain_id == chain.chain_id
    assert verifying == ENTRY_POINT_V08
    domain_sep = keccak(
        keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
        + keccak(text=name) + keccak(text=version) + _word(chain_id) + _word(to_canonical_address(ENTRY_POINT_V08))
    )
    assert ep.functions.getDomainSeparatorV4().call() == domain_sep
    # the immutable values really sit in the code
    for value in (domain_sep, _word(chain.chain_id), to_canonical_address(sender_creator)):
        assert value in code


def test_simple7702_at_canonical_address(chain):
    art = artifacts.load("vendor/Simple7702Account")
    assert bytes(chain.w3.eth.get_code(SIMPLE7702_ADDRESS)) == _hex(art["deployedBytecode"])
    acct = chain.w3.eth.contract(address=SIMPLE7702_ADDRESS, abi=art["abi"])
    assert acct.functions.entryPoint().call() == ENTRY_POINT_V08


# ----------------------------------------------------------------- CREATE2 through the proxy


def test_deploy_create2_idempotent(chain):
    w3 = chain.w3
    block = w3.eth.block_number
    nonce = w3.eth.get_transaction_count(chain.deployer.address)
    assert chain.deploy_create2("vendor/Simple7702Account") == SIMPLE7702_ADDRESS
    assert chain.deploy_create2("vendor/EntryPoint", 0x0A59DBFF790C23C976A548690C27297883CC66B4C67024F9117B0238995E35E9) == ENTRY_POINT_V08
    assert w3.eth.block_number == block  # nothing sent
    assert w3.eth.get_transaction_count(chain.deployer.address) == nonce

    art = artifacts.load("vendor/Simple7702Account")
    addr = chain.deploy_create2(art, salt=1)
    assert addr == create2_address(CREATE2_DEPLOYER, 1, init_code(art)) != SIMPLE7702_ADDRESS
    assert bytes(w3.eth.get_code(addr)) == _hex(art["deployedBytecode"])
    assert w3.eth.block_number == block + 1
    assert chain.deploy_create2(art, salt=1) == addr
    assert w3.eth.block_number == block + 1


def test_deploy_create2_constructor_args(chain, accounts):
    w3 = chain.w3
    a = chain.deploy_create2(RETURNS_ARG, salt=7, constructor_args=[12345])
    b = chain.deploy_create2(RETURNS_ARG, salt=7, constructor_args=[67890], sender=accounts[1])
    assert a != b
    assert a == create2_address(CREATE2_DEPLOYER, 7, _hex(RETURNS_ARG["bytecode"]) + encode(["uint256"], [12345]))
    assert int.from_bytes(w3.eth.call({"to": a}), "big") == 12345
    assert int.from_bytes(w3.eth.call({"to": b}), "big") == 67890
    assert w3.eth.get_transaction_count(accounts[1].address) == 1


def test_deploy_create2_failure_is_reported(chain):
    reverting = {"abi": [], "bytecode": "0x60006000fd"}  # constructor: revert(0, 0)
    with pytest.raises(LocalChainError):
        chain.deploy_create2(reverting)


# ----------------------------------------------------------------- snapshots


def test_snapshot_revert_is_reusable(chain, accounts):
    w3 = chain.w3
    a, b = accounts[0], accounts[1]
    bal_b = w3.eth.get_balance(b.address)
    block = w3.eth.block_number
    snap = chain.snapshot()
    for round_ in range(3):
        chain.send({"to": b.address, "value": 10**18}, a)
        chain.send({"to": b.address, "value": 10**18}, a)
        assert w3.eth.get_balance(b.address) == bal_b + 2 * 10**18
        assert w3.eth.get_transaction_count(a.address) == 2
        chain.revert(snap)
        assert w3.eth.get_balance(b.address) == bal_b, round_
        assert w3.eth.get_transaction_count(a.address) == 0
        assert w3.eth.block_number == block


def test_nested_snapshots(chain, accounts):
    w3 = chain.w3
    a, b = accounts[0], accounts[1]
    s0 = chain.snapshot()
    chain.send({"to": b.address, "value": 1}, a)
    s1 = chain.snapshot()
    chain.send({"to": b.address, "value": 1}, a)
    chain.revert(s1)
    assert w3.eth.get_transaction_count(a.address) == 1
    chain.revert(s0)
    assert w3.eth.get_transaction_count(a.address) == 0
    if chain.backend == "eth-tester":
        chain.revert(s1)  # a snapshot on a reverted-away branch is still reachable
        assert w3.eth.get_transaction_count(a.address) == 1
    else:  # anvil drops snapshots taken after the one reverted to
        with pytest.raises(LookupError):
            chain.revert(s1)
    with pytest.raises(LookupError):
        chain.revert(10**9)


@pytest.mark.parametrize("run", [1, 2])
def test_chain_fixture_isolates_tests(chain, accounts, run):
    # Both runs must see a pristine accounts[0]; the first run's changes are reverted.
    w3 = chain.w3
    assert w3.eth.get_transaction_count(accounts[0].address) == 0
    assert w3.eth.get_code(accounts[0].address) == b""
    chain.send({"to": accounts[9].address, "value": 5}, accounts[0])
    auth = Account.sign_authorization(
        {"chainId": chain.chain_id, "address": SIMPLE7702_ADDRESS, "nonce": 1}, accounts[0].key
    )
    chain.send({"to": accounts[1].address, "authorizationList": [auth]}, accounts[1])
    assert w3.eth.get_code(accounts[0].address) == DELEGATION_PREFIX + to_canonical_address(SIMPLE7702_ADDRESS)


# ----------------------------------------------------------------- time


def test_set_next_block_timestamp_exact(chain, accounts):
    w3 = chain.w3
    recorder = chain.deploy_create2(RECORD_BLOCK, salt=1)
    assert w3.eth.get_code(recorder) == _hex(RECORD_BLOCK_RUNTIME)

    target = chain.time() + 1000
    chain.set_next_block_timestamp(target)
    receipt = chain.send({"to": recorder}, accounts[0])
    assert w3.eth.get_block(receipt["blockNumber"])["timestamp"] == target
    assert int.from_bytes(w3.eth.get_storage_at(recorder, 0), "big") == target  # what the EVM saw
    assert int.from_bytes(w3.eth.get_storage_at(recorder, 1), "big") == receipt["blockNumber"]
    assert chain.time() == target

    # consecutive exact timestamps, one second apart (validAfter/validUntil boundaries)
    for ts in (target + 1, target + 2):
        chain.set_next_block_timestamp(ts)
        chain.send({"to": recorder}, accounts[0])
        assert int.from_bytes(w3.eth.get_storage_at(recorder, 0), "big") == ts

    # mine() honours it too
    chain.set_next_block_timestamp(target + 500)
    number = chain.mine()
    assert w3.eth.get_block(number)["timestamp"] == target + 500
    # later blocks never go back (eth-tester moves 1 s per block; anvil may repeat a timestamp)
    chain.send({"to": recorder}, accounts[0])
    assert chain.time() >= target + 500


def test_set_next_block_timestamp_rejects_past(chain):
    now = chain.time()
    with pytest.raises(ValueError):
        chain.set_next_block_timestamp(now)
    with pytest.raises(ValueError):
        chain.set_next_block_timestamp(now - 10)


def test_eth_call_sees_latest_block_context(chain, accounts):
    # eth_call runs in the latest mined block's context on eth-tester.
    addr = chain.deploy_create2(_returning("4260005243602052" + "60406000f3"), salt=3)  # (timestamp, number)
    out = chain.w3.eth.call({"to": addr})
    latest = chain.w3.eth.get_block("latest")
    assert int.from_bytes(out[:32], "big") == latest["timestamp"]
    assert int.from_bytes(out[32:], "big") == latest["number"]


def test_mine_and_revert_drop_pending_timestamp(chain):
    w3 = chain.w3
    start = w3.eth.block_number
    assert chain.mine(3) == start + 3
    snap = chain.snapshot()
    chain.set_next_block_timestamp(chain.time() + 10_000)
    chain.revert(snap)
    chain.mine()
    assert chain.time() < w3.eth.get_block(start + 3)["timestamp"] + 10_000


# ----------------------------------------------------------------- EIP-7702


def _designator(target: str) -> bytes:
    return DELEGATION_PREFIX + to_canonical_address(target)


def test_7702_self_sponsored_round_trip(chain, accounts):
    w3 = chain.w3
    eoa = accounts[3]
    nonce = w3.eth.get_transaction_count(eoa.address)
    auth = Account.sign_authorization(
        {"chainId": chain.chain_id, "address": SIMPLE7702_ADDRESS, "nonce": nonce + 1}, eoa.key
    )
    receipt = chain.send({"to": eoa.address, "authorizationList": [auth]}, eoa)
    print(f"\n[7702] self-sponsored delegation + empty call: {receipt['gasUsed']} gas")
    assert receipt["status"] == 1
    assert receipt["type"] == 4
    assert w3.eth.get_code(eoa.address) == _designator(SIMPLE7702_ADDRESS)
    assert w3.eth.get_transaction_count(eoa.address) == nonce + 2  # tx + authorization
    assert receipt["gasUsed"] == ANVIL_DELEGATION_GAS

    # the EOA now runs Simple7702Account: it can execute() on itself
    art = artifacts.load("vendor/Simple7702Account")
    as_account = w3.eth.contract(address=eoa.address, abi=art["abi"])
    assert as_account.functions.entryPoint().call() == ENTRY_POINT_V08
    sink = accounts[8].address
    before = w3.eth.get_balance(sink)
    data = as_account.encode_abi("execute", args=[sink, 12345, b""])
    r = chain.send({"to": eoa.address, "data": data}, eoa)
    assert r["status"] == 1
    assert w3.eth.get_balance(sink) == before + 12345
    # ...and a stranger cannot
    with pytest.raises(Exception, match="not from self or EntryPoint"):
        chain.send({"to": eoa.address, "data": data}, accounts[7])

    # delegating to the zero address clears the code
    nonce = w3.eth.get_transaction_count(eoa.address)
    clear = Account.sign_authorization({"chainId": chain.chain_id, "address": ZERO_ADDRESS, "nonce": nonce + 1}, eoa.key)
    r = chain.send({"to": eoa.address, "authorizationList": [clear]}, eoa)
    assert r["status"] == 1
    assert w3.eth.get_code(eoa.address) == b""


def test_7702_self_sponsored_wrong_nonce_is_skipped(chain, accounts):
    w3 = chain.w3
    eoa = accounts[3]
    nonce = w3.eth.get_transaction_count(eoa.address)
    # current nonce instead of nonce + 1: the tx is valid, the authorization is ignored
    auth = Account.sign_authorization({"chainId": chain.chain_id, "address": SIMPLE7702_ADDRESS, "nonce": nonce}, eoa.key)
    receipt = chain.send({"to": accounts[2].address, "authorizationList": [auth], "gas": 100_000}, eoa)
    assert receipt["status"] == 1
    assert w3.eth.get_code(eoa.address) == b""
    assert w3.eth.get_transaction_count(eoa.address) == nonce + 1


def test_7702_sponsored_round_trip(chain, accounts):
    w3 = chain.w3
    eoa, payer = accounts[4], accounts[5]
    nonce = w3.eth.get_transaction_count(eoa.address)
    eoa_balance = w3.eth.get_balance(eoa.address)
    payer_balance = w3.eth.get_balance(payer.address)
    auth = Account.sign_authorization({"chainId": chain.chain_id, "address": SIMPLE7702_ADDRESS, "nonce": nonce}, eoa.key)
    receipt = chain.send({"to": eoa.address, "authorizationList": [auth]}, payer)
    print(f"\n[7702] sponsored delegation + empty call: {receipt['gasUsed']} gas")
    assert receipt["status"] == 1
    assert receipt["from"] == payer.address
    assert w3.eth.get_code(eoa.address) == _designator(SIMPLE7702_ADDRESS)
    assert w3.eth.get_transaction_count(eoa.address) == nonce + 1
    assert w3.eth.get_balance(eoa.address) == eoa_balance  # the sponsor paid
    assert w3.eth.get_balance(payer.address) == payer_balance - receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert receipt["gasUsed"] == ANVIL_DELEGATION_GAS

    # sponsored clear; chain id 0 authorizations are valid on any chain
    clear = Account.sign_authorization({"chainId": 0, "address": ZERO_ADDRESS, "nonce": nonce + 1}, eoa.key)
    r = chain.send({"to": payer.address, "authorizationList": [clear]}, payer)
    assert r["status"] == 1
    assert w3.eth.get_code(eoa.address) == b""
    # an authorization for another chain id is skipped
    other = Account.sign_authorization({"chainId": chain.chain_id + 1, "address": SIMPLE7702_ADDRESS, "nonce": nonce + 2}, eoa.key)
    r = chain.send({"to": payer.address, "authorizationList": [other], "gas": 100_000}, payer)
    assert r["status"] == 1
    assert w3.eth.get_code(eoa.address) == b""


# ----------------------------------------------------------------- send() and speed


def test_send_fills_fields_and_returns_receipt(chain, accounts):
    w3 = chain.w3
    a, b = accounts[0], accounts[1]
    before = w3.eth.get_balance(b.address)
    receipt = chain.send({"to": b.address.lower(), "value": 7}, a)
    assert receipt["status"] == 1 and receipt["type"] == 2
    assert receipt["gasUsed"] == 21_000
    assert w3.eth.get_balance(b.address) == before + 7
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["nonce"] == 0 and tx["chainId"] == chain.chain_id
    with pytest.raises(ValueError):
        chain.send({"from": b.address, "to": a.address}, a)
    # explicit gas: a reverting tx is mined and its failed receipt returned
    bad = chain.send({"to": CREATE2_DEPLOYER, "data": b"\x00" * 32 + bytes.fromhex("60006000fd"), "gas": 200_000}, a)
    assert bad["status"] == 0


def test_time_per_transaction(chain, accounts):
    n = 40
    t0 = time.perf_counter()
    for _ in range(n):
        chain.send({"to": accounts[1].address, "value": 1}, accounts[0])
    with_estimate = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        chain.send({"to": accounts[1].address, "value": 1, "gas": 21_000}, accounts[0])
    fixed = (time.perf_counter() - t0) / n
    print(f"\n[localchain] per tx with receipt: {with_estimate * 1000:.1f} ms (estimated gas), {fixed * 1000:.1f} ms (fixed gas)")
    assert chain.w3.eth.get_transaction_count(accounts[0].address) == 2 * n
    assert with_estimate < 1.0


def test_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="anvil"):
        start_local_chain("nope")


def test_deploy_extra_hook():
    seen = []

    def hook(c):
        seen.append(c.deploy_create2(RETURNS_ARG, salt=1, constructor_args=[42]))

    c = start_local_chain(deploy_extra=[hook], num_accounts=2)
    assert len(c.accounts) == 2
    assert int.from_bytes(c.w3.eth.call({"to": seen[0]}), "big") == 42
