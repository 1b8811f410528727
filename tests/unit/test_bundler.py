"""``smartkeys.bundler``: a fake transport and a real ``http.server`` on 127.0.0.1 (ephemeral port).

Retries with backoff on 429 / 5xx / connection errors / JSON-RPC rate limits, never on validation errors,
typed errors (AAxx parsed, revert data decoded), timeouts, and parsing of receipts and ops."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eth_abi import encode
from eth_utils import keccak

from smartkeys.bundler import (
    BundlerClient,
    BundlerConnectionError,
    BundlerHTTPError,
    BundlerRPCError,
    BundlerTimeoutError,
    BundlerUserOperationError,
    GasEstimate,
)
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.errors import ChainMismatchError, InvalidInputError, UserOperationError
from smartkeys.preflight import ACCOUNT_ERRORS
from smartkeys.userop import PackedUserOperation

SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OP_HASH = "0x" + "ab" * 32
TX_HASH = "0x" + "cd" * 32


def signed_op() -> PackedUserOperation:
    return PackedUserOperation(
        sender=SENDER, nonce=7, call_data=b"\x01\x02", call_gas_limit=100_000, verification_gas_limit=150_000,
        pre_verification_gas=50_000, max_fee_per_gas=10**10, max_priority_fee_per_gas=10**9, signature=b"\x11" * 65,
    )


class FakeTransport:
    """Answers from a script: each item is a dict (the JSON response), or an exception to raise."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests: list[dict] = []

    def __call__(self, payload):
        self.requests.append(payload)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        return {"jsonrpc": "2.0", "id": payload["id"], **item}


def client(transport, **kwargs):
    delays: list[float] = []
    kwargs.setdefault("backoff", 0.25)
    c = BundlerClient("http://bundler.invalid/rpc?apikey=secret", transport=transport, sleep=delays.append, **kwargs)
    return c, delays


# --------------------------------------------------------------------------- fake transport


def test_send_user_operation_posts_the_rpc_form_and_returns_the_hash():
    fake = FakeTransport({"result": OP_HASH})
    c, _ = client(fake)
    assert c.send_user_operation(signed_op()) == bytes.fromhex("ab" * 32)
    (request,) = fake.requests
    assert request["method"] == "eth_sendUserOperation"
    assert request["params"] == [signed_op().to_rpc(), ENTRY_POINT_V08]


def test_unsigned_op_is_refused_before_any_request():
    fake = FakeTransport({"result": OP_HASH})
    c, _ = client(fake)
    with pytest.raises(InvalidInputError) as info:
        c.send_user_operation(signed_op().replace(signature=b""))
    assert info.value.field == "signature" and fake.requests == []


@pytest.mark.parametrize(
    "failure",
    [BundlerHTTPError(429), BundlerHTTPError(503), ConnectionError("reset"), TimeoutError("slow"),
     {"error": {"code": -32005, "message": "limit exceeded"}},
     {"error": {"code": -32603, "message": "Rate limit reached"}}],
    ids=["429", "503", "connection", "timeout", "-32005", "-32603-rate"],
)
def test_transient_failures_are_retried_with_growing_capped_jittered_backoff(failure):
    fake = FakeTransport(failure, failure, failure, {"result": "0x1"})
    c, delays = client(fake, max_backoff=0.6)
    assert c.chain_id() == 1
    assert len(fake.requests) == 4
    assert len({r["id"] for r in fake.requests}) == 4
    assert 0.125 <= delays[0] <= 0.25 and 0.25 <= delays[1] <= 0.5 and 0.3 <= delays[2] <= 0.6


def test_retry_after_header_is_honoured_up_to_the_cap():
    fake = FakeTransport(BundlerHTTPError(429, retry_after=3.0), BundlerHTTPError(429, retry_after=100.0), {"result": "0x1"})
    c, delays = client(fake, max_backoff=8.0)
    c.chain_id()
    assert delays == [3.0, 8.0]


def test_retries_are_bounded_and_then_raise_a_typed_error():
    fake = FakeTransport(BundlerHTTPError(429))
    c, delays = client(fake, max_retries=2)
    with pytest.raises(BundlerConnectionError) as info:
        c.chain_id()
    assert info.value.status == 429 and len(fake.requests) == 3 and len(delays) == 2
    assert "secret" not in repr(c)


def test_aa24_validation_error_is_not_retried_and_carries_its_code():
    fake = FakeTransport({"error": {"code": -32507, "message": "AA24 signature error"}}, {"result": OP_HASH})
    c, delays = client(fake)
    with pytest.raises(BundlerUserOperationError) as info:
        c.send_user_operation(signed_op())
    assert len(fake.requests) == 1 and delays == []
    assert isinstance(info.value, UserOperationError)
    assert info.value.code == "AA24" and info.value.rpc_code == -32507
    assert "signature rejected" in str(info.value)  # the AA24 hint


def test_http_400_and_invalid_params_are_not_retried():
    c, delays = client(FakeTransport(BundlerHTTPError(400, "bad")))
    with pytest.raises(BundlerConnectionError) as http:
        c.chain_id()
    assert http.value.status == 400 and delays == []
    c, _ = client(FakeTransport({"error": {"code": -32602, "message": "invalid params"}}))
    with pytest.raises(BundlerRPCError) as rpc:
        c.chain_id()
    assert rpc.value.code == -32602 and rpc.value.method == "eth_chainId"


def test_revert_data_in_the_error_is_decoded_into_the_contract_error():
    expired = ACCOUNT_ERRORS["SessionExpired"]
    data = "0x" + (expired.error_selector + encode(["uint48", "uint256"], [100, 101])).hex()
    fake = FakeTransport({"error": {"code": -32521, "message": "execution reverted", "data": {"revertData": data}}})
    c, _ = client(fake)
    with pytest.raises(BundlerUserOperationError) as info:
        c.estimate_user_operation_gas(signed_op())
    assert isinstance(info.value.inner, expired)
    assert info.value.inner.values == (100, 101) and info.value.rpc_code == -32521


def test_failed_op_with_revert_data_gives_the_aa_code_and_the_inner_error():
    inactive = ACCOUNT_ERRORS["SessionNotActive"]
    inner = inactive.error_selector + b"\x22" * 32
    failed = keccak(text="FailedOpWithRevert(uint256,string,bytes)")[:4] + encode(
        ["uint256", "string", "bytes"], [0, "AA23 reverted", inner]
    )
    fake = FakeTransport({"error": {"code": -32500, "message": "", "data": "0x" + failed.hex()}})
    c, _ = client(fake)
    with pytest.raises(BundlerUserOperationError) as info:
        c.estimate_user_operation_gas(signed_op())
    assert info.value.code == "AA23"
    assert isinstance(info.value.inner, inactive) and info.value.inner.values == (b"\x22" * 32,)


def test_estimate_is_parsed_and_applied():
    fake = FakeTransport({"result": {"preVerificationGas": "0xc350", "verificationGasLimit": "0x249f0",
                                     "callGasLimit": "0x186a0"}})
    c, _ = client(fake)
    estimate = c.estimate_user_operation_gas(signed_op())
    assert estimate == GasEstimate(50_000, 150_000, 100_000)
    assert estimate.apply(signed_op().replace(call_gas_limit=1)).call_gas_limit == 100_000


def test_expected_chain_id_is_checked_before_sending():
    fake = FakeTransport({"result": "0x2"})
    c, _ = client(fake, expected_chain_id=1)
    with pytest.raises(ChainMismatchError):
        c.send_user_operation(signed_op())
    assert [r["method"] for r in fake.requests] == ["eth_chainId"]


RECEIPT = {
    "userOpHash": OP_HASH, "entryPoint": ENTRY_POINT_V08.lower(), "sender": SENDER.lower(), "nonce": "0x7",
    "paymaster": "0x0000000000000000000000000000000000000000", "actualGasCost": "0x5208",
    "actualGasUsed": "0x100", "success": False, "reason": None, "logs": [],
    "receipt": {"transactionHash": TX_HASH, "blockNumber": "0x10", "status": "0x1"},
}


def test_receipt_is_parsed_and_a_missing_receipt_is_none():
    fake = FakeTransport({"result": None}, {"result": RECEIPT})
    c, _ = client(fake)
    assert c.get_user_operation_receipt(OP_HASH) is None
    receipt = c.get_user_operation_receipt(OP_HASH)
    assert receipt.sender == SENDER and receipt.nonce == 7 and receipt.paymaster is None
    assert receipt.actual_gas_cost == 21_000 and receipt.success is False
    assert receipt.transaction_hash == bytes.fromhex("cd" * 32) and receipt.block_number == 16


def test_wait_for_receipt_polls_until_mined_and_times_out_with_a_typed_error():
    fake = FakeTransport({"result": None}, {"result": None}, {"result": RECEIPT})
    c, delays = client(fake)
    assert c.wait_for_receipt(OP_HASH, timeout=5, poll_interval=0.01).nonce == 7
    assert len(fake.requests) == 3 and len(delays) == 2
    never = BundlerClient("http://x", transport=FakeTransport({"result": None}))
    start = time.monotonic()
    with pytest.raises(BundlerTimeoutError):
        never.wait_for_receipt(OP_HASH, timeout=0.05, poll_interval=0.01)
    assert time.monotonic() - start < 2


def test_user_operation_by_hash_round_trips_the_op():
    body = {"userOperation": signed_op().to_rpc(), "entryPoint": ENTRY_POINT_V08, "blockNumber": None,
            "blockHash": None, "transactionHash": None}
    c, _ = client(FakeTransport({"result": body}))
    found = c.get_user_operation_by_hash(OP_HASH)
    assert found.user_operation == signed_op() and found.block_number is None


# --------------------------------------------------------------------------- real HTTP server


class _Server:
    def __init__(self, handler_logic):
        calls = self.calls = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers["Content-Length"])
                payload = json.loads(self.rfile.read(length))
                calls.append((time.monotonic(), payload))
                status, body, headers = handler_logic(len(calls), payload)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_server_answering_429_twice_is_retried_with_backoff():
    def logic(n, payload):
        if n <= 2:
            return 429, {"error": "slow down"}, {}
        return 200, {"jsonrpc": "2.0", "id": payload["id"], "result": [ENTRY_POINT_V08.lower()]}, {}

    with _Server(logic) as server:
        c = BundlerClient(server.url, backoff=0.05, max_backoff=1.0)
        assert c.supported_entry_points() == [ENTRY_POINT_V08]
    assert len(server.calls) == 3
    gaps = [b[0] - a[0] for a, b in zip(server.calls, server.calls[1:], strict=False)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # jittered 0.05 * 2**attempt, at least half of it


def test_http_server_aa24_error_is_not_retried():
    def logic(n, payload):
        return 200, {"jsonrpc": "2.0", "id": payload["id"],
                     "error": {"code": -32507, "message": "AA24 signature error"}}, {}

    with _Server(logic) as server:
        c = BundlerClient(server.url, backoff=0.01)
        with pytest.raises(BundlerUserOperationError) as info:
            c.send_user_operation(signed_op())
    assert info.value.code == "AA24" and len(server.calls) == 1


def test_http_server_too_slow_raises_a_typed_timeout():
    def logic(n, payload):
        time.sleep(0.5)
        return 200, {"jsonrpc": "2.0", "id": payload["id"], "result": "0x1"}, {}

    with _Server(logic) as server:
        c = BundlerClient(server.url, timeout=0.1, max_retries=1, backoff=0.01)
        with pytest.raises(BundlerTimeoutError) as info:
            c.chain_id()
        assert isinstance(info.value, TimeoutError) and info.value.method == "eth_chainId"
    assert len(server.calls) == 2  # one retry, then the typed error


def test_connection_refused_is_retried_then_raises_connection_error():
    with _Server(lambda n, p: (200, {}, {})) as server:
        url = server.url
    delays: list[float] = []
    c = BundlerClient(url, max_retries=2, sleep=delays.append)
    with pytest.raises(BundlerConnectionError) as info:
        c.chain_id()
    assert len(delays) == 2 and not isinstance(info.value, BundlerTimeoutError)


@pytest.mark.parametrize("body", [b'{"jsonrpc": "2.0", "id": 1, "result": ' + b"[" * 70_000 + b"]" * 70_000 + b"}",
                                  b"<html>not json</html>", b"\xff\xfe"], ids=["70000-deep", "html", "not-utf8"])
def test_a_hostile_bundler_answer_is_a_typed_error_not_a_crash(body):
    """A bundler URL is configuration; what answers there may be hostile. JSON 70,000 deep would overflow the
    json module's C stack (eth-account raises the recursion limit to 100,000) and kill the process."""
    with _Server(lambda n, payload: (200, body, {})) as server:
        with pytest.raises(BundlerConnectionError) as info:
            BundlerClient(server.url, max_retries=0).chain_id()
    # A broken answer is a transport fault, not a refusal: for eth_sendUserOperation it means "outcome unknown"
    # (the operation may have been accepted), which the exactly-once path settles by hash.
    assert "broken answer" in str(info.value) and info.value.method == "eth_chainId"
