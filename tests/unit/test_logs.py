"""The chunked log reader against scripted providers: each provider's refusal wording, learned limits, errors
that are not range refusals, and the binary search for where an account's logs can start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fault_proxy import PROVIDER_LOG_RANGE_ERRORS  # noqa: E402

from smartkeys.logs import LogQueryError, account_start_block, is_range_limit_error, read_logs  # noqa: E402

ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


class RPCError(Exception):
    """Shaped like web3's Web3RPCError: the error object as the first argument."""


class FakeEth:
    def __init__(self, head, limit, message, code=-32602, log_blocks=(), nonce_from=None, pruned_below=None):
        self.block_number = head
        self.limit, self.message, self.code = limit, message, code
        self.log_blocks = sorted(log_blocks)
        self.nonce_from = nonce_from
        self.pruned_below = pruned_below
        self.calls: list[tuple[int, int]] = []
        self.chain_id = 1

    def get_logs(self, flt):
        lo, hi = flt["fromBlock"], flt["toBlock"]
        self.calls.append((lo, hi))
        if hi - lo + 1 > self.limit:
            raise RPCError({"code": self.code, "message": self.message})
        return [{"blockNumber": b} for b in self.log_blocks if lo <= b <= hi]

    def get_transaction_count(self, account, block):
        if self.pruned_below is not None and block < self.pruned_below:
            raise RPCError({"code": -32000, "message": "missing trie node"})
        return int(self.nonce_from is not None and block >= self.nonce_from)

    def get_block(self, tag):
        return {"number": 0}


class FakeW3:
    def __init__(self, eth):
        self.eth = eth
        self.provider = object.__new__(type("Provider", (), {}))


@pytest.mark.parametrize("style", sorted(PROVIDER_LOG_RANGE_ERRORS))
def test_every_log_is_read_behind_a_500_block_limit_in_each_providers_words(style):
    code, template = PROVIDER_LOG_RANGE_ERRORS[style]
    limit = 500 if style != "quicknode" else 10_000
    eth = FakeEth(head=120_000, limit=limit, code=code, message=template.format(limit=f"{limit:,}" if style == "quicknode" else limit),
                  log_blocks=[0, 499, 500, 50_000, 119_999, 120_000])
    w3 = FakeW3(eth)
    logs = read_logs(w3, ACCOUNT, 0, "latest", chunk=20_000)
    assert [log["blockNumber"] for log in logs] == [0, 499, 500, 50_000, 119_999, 120_000]
    served = [c for c in eth.calls if c[1] - c[0] + 1 <= limit]
    assert all(c[1] - c[0] + 1 <= limit for c in served)
    # the whole range is covered, once, in order
    assert [c for c in served] == sorted(served) and served[0][0] == 0 and served[-1][1] == 120_000
    assert all(b[0] == a[1] + 1 for a, b in zip(served, served[1:], strict=False))
    refused_first = len(eth.calls) - len(served)
    assert refused_first <= 2  # the limit named in the message is taken at once
    eth.calls.clear()
    read_logs(w3, ACCOUNT, 0, 5_000)  # the learned limit is remembered for this provider
    assert all(c[1] - c[0] + 1 <= limit for c in eth.calls)


def test_a_refusal_without_a_number_halves_the_range_until_it_passes():
    eth = FakeEth(head=10_000, limit=300, message="block range too large", log_blocks=[1, 9_999])
    logs = read_logs(FakeW3(eth), ACCOUNT, 0, 10_000, chunk=10_001)
    assert [log["blockNumber"] for log in logs] == [1, 9_999]
    assert max(c[1] - c[0] + 1 for c in eth.calls if c[1] - c[0] + 1 <= 300) <= 300


def test_result_count_limits_shrink_too():
    eth = FakeEth(head=50_000, limit=1_000, code=-32005, message="query returned more than 10000 results")
    assert read_logs(FakeW3(eth), ACCOUNT, 0, 50_000) == []


def test_an_error_that_is_not_a_range_refusal_is_raised_as_is():
    class Broken(FakeEth):
        def get_logs(self, flt):
            raise ConnectionError("connection refused")

    with pytest.raises(ConnectionError):
        read_logs(FakeW3(Broken(10, 1, "")), ACCOUNT, 0, 10)
    assert not is_range_limit_error(RPCError({"code": 3, "message": "execution reverted"}))


def test_a_provider_refusing_even_one_block_raises_log_query_error():
    eth = FakeEth(head=10, limit=0, message="exceed maximum block range: 0")
    with pytest.raises(LogQueryError, match="even for block"):
        read_logs(FakeW3(eth), ACCOUNT, 0, 10)


@pytest.mark.parametrize("first", [1, 2, 777, 99_999, 100_000])
def test_account_start_block_finds_the_first_block_with_a_nonce(first):
    eth = FakeEth(head=100_000, limit=500, message="", nonce_from=first)
    assert account_start_block(FakeW3(eth), ACCOUNT) == first


def test_account_start_block_of_a_fresh_account_is_past_the_head():
    eth = FakeEth(head=100_000, limit=500, message="", nonce_from=None)
    assert account_start_block(FakeW3(eth), ACCOUNT) == 100_001


def test_a_node_without_old_state_asks_for_from_block():
    eth = FakeEth(head=100_000, limit=500, message="", nonce_from=5, pruned_below=99_872)
    with pytest.raises(LogQueryError, match="from_block") as info:
        account_start_block(FakeW3(eth), ACCOUNT)
    assert info.value.field == "from_block" and "--from-block" in str(info.value)
