"""A loopback "hostile provider": a threaded HTTP JSON-RPC proxy with pluggable fault modes, plus fixtures.

Real nodes and bundlers differ from the embedded chain in ways that break naive clients: public providers
refuse ``eth_getLogs`` over more than 500-10,000 blocks, a bundler URL may serve another chain, answers are
slow, cut, rate-limited or malformed. :class:`FaultProxy` sits in front of a real upstream (anvil, Alto)
on 127.0.0.1 and lets each test choose which of these faults it meets.

Modes
-----
A *mode* is any callable ``mode(request, ctx)`` deciding about ONE JSON-RPC request (a dict):

- return ``None`` to let the next mode (and finally the upstream) answer;
- return a dict: that JSON-RPC response is sent (use :func:`rpc_result` / :func:`rpc_error`);
- return a :class:`RawReply` to control the HTTP answer itself (status, headers, raw body bytes);
- raise :class:`DropConnection` to close the socket without an answer.

``ctx`` is the :class:`ProxyContext`: ``ctx.forward(request)`` asks the upstream (a mode may forward and
then rewrite the answer), ``ctx.proxy`` the proxy (its counters). Modes run in order; a mode may keep state
(count requests, fire once). Adding a fault = writing one small class with ``__call__``.

A new fault is a few lines, e.g.::

    class Delay:
        # answer every ``method`` request ``seconds`` late (then the next mode or the upstream answers)

        def __init__(self, seconds: float, method: str | None = None) -> None:
            self.seconds, self.method = seconds, method

        def __call__(self, request, ctx):
            if self.method in (None, request.get("method")):
                time.sleep(self.seconds)
            return None

Modes here: :class:`LogRangeLimit` (``eth_getLogs`` over more than N blocks refused, in a public provider's
words), :class:`ChainIdOverride` (answers ``eth_chainId`` for another chain), :class:`EntryPointsOverride`
(``eth_supportedEntryPoints`` lists other EntryPoints), :class:`NoHistoricalState` (a pruned node),
:class:`MethodRecorder` (records the methods asked).

Network faults (issue 16; each fires on the ``methods`` given, or all, with probability ``p`` from a seeded
random generator, at most ``times`` times): :class:`Delay` (answers late), :class:`Drop` (closes without an
answer, before or *after* the upstream acted), :class:`CutAnswer` (forwards, then sends half the answer and
closes), :class:`RateLimit` (HTTP 429 with ``Retry-After``), :class:`Malformed` (forwards, then answers
garbage), :class:`SwallowUserOps` + :class:`Down` (a bundler that accepted an operation and died before
bundling it, then is down for a while: the restart case), and :meth:`FaultProxy.switch_upstream` (a node
restarted with its state lost).

Fixtures (registered as a pytest plugin by ``tests/conftest.py``)
-----------------------------------------------------------------
- ``fault_proxy``: a factory ``fault_proxy(upstream_url, *modes) -> FaultProxy``, started; every proxy it
  made is closed after the test.
- ``anvil_node`` (session): an anvil :class:`~smartkeys.localchain.LocalChain` with the canonical deployments:
  the ``local_chain`` when ``--chain anvil`` is given, else one started for the session.
- ``long_anvil`` (session): another anvil whose head is past block 100,000 (a "long chain"); tests snapshot
  and revert it through ``long_chain``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import pytest

__all__ = [
    "ChainIdOverride",
    "CutAnswer",
    "Delay",
    "Down",
    "Drop",
    "DropConnection",
    "EntryPointsOverride",
    "FaultProxy",
    "LogRangeLimit",
    "Malformed",
    "MethodRecorder",
    "Mode",
    "NoHistoricalState",
    "RateLimit",
    "SwallowUserOps",
    "ProxyContext",
    "RawReply",
    "rpc_error",
    "rpc_result",
]

LONG_CHAIN_BLOCKS = 100_000


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class RawReply:
    """An HTTP answer sent as it is: ``status``, ``body`` bytes (possibly not JSON), extra ``headers``."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_at: int | None = None  # send only this many body bytes (Content-Length announces all), then close


class DropConnection(Exception):
    """Raised by a mode: close the connection without answering."""


def rpc_result(request: dict[str, Any], result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}


def rpc_error(request: dict[str, Any], code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request.get("id"), "error": error}


class ProxyContext:
    """What a mode may use: ``forward(request)`` to the upstream, and the ``proxy`` itself."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    def forward(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.proxy.forward(request)

    def block_number(self) -> int:
        answer = self.forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})
        return int(answer["result"], 16)


class Mode(Protocol):
    def __call__(self, request: dict[str, Any], ctx: ProxyContext) -> dict[str, Any] | RawReply | None: ...


# --------------------------------------------------------------------------- modes


#: How public providers word a refused log range (code, message template); ``{limit}`` is the block limit.
PROVIDER_LOG_RANGE_ERRORS: dict[str, tuple[int, str]] = {
    "alchemy": (-32602, "Log response size exceeded. You can make eth_getLogs requests with up to a {limit} "
                        "block range and no limit on the response size, or you can request any block range "
                        "with a cap of 10K logs in the response."),
    "quicknode": (-32602, "eth_getLogs is limited to a {limit} range"),
    "geth-style": (-32000, "exceed maximum block range: {limit}"),
    "infura-style": (-32005, "query exceeds max block range {limit}"),
    "generic": (-32600, "block range too large: requested range exceeds the limit of {limit} blocks"),
}


class LogRangeLimit:
    """Refuse ``eth_getLogs`` whose inclusive block range holds more than ``max_blocks`` blocks.

    Tags are resolved like a node does (``latest``/``pending``/``safe``/``finalized`` = the head,
    ``earliest`` = 0, a missing ``fromBlock``/``toBlock`` = the head); a ``blockHash`` query passes.
    ``style`` picks one of :data:`PROVIDER_LOG_RANGE_ERRORS`. ``refused`` and ``served`` count answers.
    """

    def __init__(self, max_blocks: int = 500, style: str = "alchemy") -> None:
        self.max_blocks = max_blocks
        self.code, template = PROVIDER_LOG_RANGE_ERRORS[style]
        self.message = template.format(limit=f"{max_blocks:,}" if style == "quicknode" else max_blocks)
        self.refused = 0
        self.served = 0
        self.widest = 0  # the widest range served
        self._lock = threading.Lock()

    def _block(self, value: Any, ctx: ProxyContext) -> int:
        if value is None or value in ("latest", "pending", "safe", "finalized"):
            return ctx.block_number()
        if value == "earliest":
            return 0
        return int(value, 16) if isinstance(value, str) else int(value)

    def __call__(self, request, ctx):
        if request.get("method") != "eth_getLogs":
            return None
        params = request.get("params") or [{}]
        flt = params[0] if params and isinstance(params[0], dict) else {}
        if "blockHash" in flt:
            return None
        lo, hi = self._block(flt.get("fromBlock"), ctx), self._block(flt.get("toBlock"), ctx)
        span = hi - lo + 1
        with self._lock:
            if span > self.max_blocks:
                self.refused += 1
                return rpc_error(request, self.code, self.message)
            self.served += 1
            self.widest = max(self.widest, span)
        return None


class ChainIdOverride:
    """Answer ``eth_chainId`` (and ``net_version``) as if the upstream served ``chain_id``; all else passes."""

    def __init__(self, chain_id: int = 1) -> None:
        self.chain_id = chain_id
        self.asked = 0

    def __call__(self, request, ctx):
        if request.get("method") == "eth_chainId":
            self.asked += 1
            return rpc_result(request, hex(self.chain_id))
        if request.get("method") == "net_version":
            return rpc_result(request, str(self.chain_id))
        return None


class EntryPointsOverride:
    """Answer ``eth_supportedEntryPoints`` with ``entry_points`` (e.g. only EntryPoint v0.7)."""

    def __init__(self, entry_points: list[str]) -> None:
        self.entry_points = list(entry_points)

    def __call__(self, request, ctx):
        if request.get("method") == "eth_supportedEntryPoints":
            return rpc_result(request, self.entry_points)
        return None


class NoHistoricalState:
    """A pruned full node: state queries (``eth_getTransactionCount``, ``eth_getBalance``, ``eth_getCode``,
    ``eth_getStorageAt``, ``eth_call``) at a block more than ``keep`` blocks behind the head are refused."""

    _STATE_METHODS = {"eth_getTransactionCount": 1, "eth_getBalance": 1, "eth_getCode": 1, "eth_getStorageAt": 2,
                      "eth_call": 1}

    def __init__(self, keep: int = 128) -> None:
        self.keep = keep
        self.refused = 0

    def __call__(self, request, ctx):
        index = self._STATE_METHODS.get(request.get("method"))
        params = request.get("params") or []
        if index is None or len(params) <= index:
            return None
        block = params[index]
        if not isinstance(block, str) or not block.startswith("0x"):
            return None  # a tag (latest, pending, ...) or a block hash object
        if int(block, 16) < ctx.block_number() - self.keep:
            self.refused += 1
            return rpc_error(request, -32000, "missing trie node (path ) state is not available")
        return None


class MethodRecorder:
    """Record every method seen (``methods``, in order); never answers itself."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, request, ctx):
        with self._lock:
            self.methods.append(str(request.get("method")))
        return None


# --------------------------------------------------------------------------- network faults (issue 16)


class _Fault:
    """Shared firing rule: ``methods`` (None: all), probability ``p`` (seeded), at most ``times`` firings."""

    def __init__(self, methods: tuple[str, ...] | None = None, *, p: float = 1.0, times: int | None = None,
                 seed: int = 16) -> None:
        import random

        self.methods = None if methods is None else tuple(methods)
        self.p = p
        self.times = times
        self.fired = 0
        self.seen = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def fires(self, request: dict[str, Any]) -> bool:
        if self.methods is not None and request.get("method") not in self.methods:
            return False
        with self._lock:
            self.seen += 1
            if self.times is not None and self.fired >= self.times:
                return False
            if self._rng.random() >= self.p:
                return False
            self.fired += 1
            return True


class Delay(_Fault):
    """Answer ``seconds`` late (then let the next mode / the upstream answer)."""

    def __init__(self, seconds: float, methods=None, **kw: Any) -> None:
        super().__init__(methods, **kw)
        self.seconds = seconds

    def __call__(self, request, ctx):
        if self.fires(request):
            time.sleep(self.seconds)
        return None


class Drop(_Fault):
    """Close the connection without an answer; ``after_forward``: only once the upstream has acted on it."""

    def __init__(self, methods=None, *, after_forward: bool = True, **kw: Any) -> None:
        super().__init__(methods, **kw)
        self.after_forward = after_forward

    def __call__(self, request, ctx):
        if self.fires(request):
            if self.after_forward:
                ctx.forward(request)
            raise DropConnection
        return None


class CutAnswer(_Fault):
    """Forward, then send only the first half of the answer and close (Content-Length announces all of it)."""

    def __call__(self, request, ctx):
        if self.fires(request):
            body = json.dumps(ctx.forward(request)).encode()
            return RawReply(200, body, cut_at=max(1, len(body) // 2))
        return None


class RateLimit(_Fault):
    """HTTP 429 with ``Retry-After: retry_after`` (seconds), without asking the upstream."""

    def __init__(self, methods=None, *, retry_after: float = 1, **kw: Any) -> None:
        super().__init__(methods, **kw)
        self.retry_after = retry_after

    def __call__(self, request, ctx):
        if self.fires(request):
            return RawReply(429, b'{"error":"too many requests"}', {"Retry-After": f"{self.retry_after:g}"})
        return None


class Malformed(_Fault):
    """Forward (the upstream acts), then answer with broken JSON."""

    def __call__(self, request, ctx):
        if self.fires(request):
            ctx.forward(request)
            return RawReply(200, b'{"jsonrpc":"2.0","id":1,"result":0x<html>bad gateway')
        return None


class Down:
    """While ``until`` (a monotonic time) is in the future, close every connection: the process is down."""

    def __init__(self) -> None:
        self.until = 0.0
        self.refused = 0

    def start(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def __call__(self, request, ctx):
        if time.monotonic() < self.until:
            self.refused += 1
            raise DropConnection
        return None


class SwallowUserOps(_Fault):
    """A bundler killed right after accepting: answer ``eth_sendUserOperation`` with the op's hash
    (``hash_of(op_rpc)``) WITHOUT passing it on, then take the bundler down (``down.start(seconds)``)."""

    def __init__(self, hash_of: Callable[[dict[str, Any]], str], down: Down, *, down_seconds: float = 3.0,
                 **kw: Any) -> None:
        super().__init__(("eth_sendUserOperation",), **kw)
        self.hash_of = hash_of
        self.down = down
        self.down_seconds = down_seconds

    def __call__(self, request, ctx):
        if self.fires(request):
            self.down.start(self.down_seconds)
            return rpc_result(request, self.hash_of(request["params"][0]))
        return None


# --------------------------------------------------------------------------- the proxy


class FaultProxy:
    """A JSON-RPC proxy on ``127.0.0.1`` (a free port) in front of ``upstream``, applying ``modes`` in order.

    ``url`` is where clients connect. ``modes`` is a plain list: tests may append or remove modes while the
    proxy runs. ``requests`` counts the JSON-RPC requests received (batch elements each count).
    """

    def __init__(self, upstream: str, *modes: Mode, timeout: float = 30) -> None:
        self.upstream = upstream
        self.modes: list[Mode] = list(modes)
        self.timeout = timeout
        self.requests = 0
        self._count_lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-proxy-{self.url}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def switch_upstream(self, upstream: str) -> None:
        """Point the proxy at another upstream from now on (e.g. a node restarted with its state lost)."""
        self.upstream = upstream

    def forward(self, request: Any) -> Any:
        """Send ``request`` (one or a batch) to the upstream and return its decoded answer."""
        body = json.dumps(request).encode()
        http_request = urllib.request.Request(self.upstream, data=body, method="POST",
                                              headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # JSON-RPC servers send errors with HTTP 4xx/5xx too
            return json.loads(exc.read() or b"null")

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | RawReply:
        with self._count_lock:
            self.requests += 1
        ctx = ProxyContext(self)
        for mode in list(self.modes):
            reply = mode(request, ctx)
            if reply is not None:
                return reply
        return self.forward(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    self._send(RawReply(400, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}'))
                    return
                try:
                    if isinstance(payload, list):
                        answers = [proxy.answer(r) for r in payload]
                        raw_reply = next((a for a in answers if isinstance(a, RawReply)), None)
                        reply: dict | list | RawReply = raw_reply if raw_reply is not None else answers
                    else:
                        reply = proxy.answer(payload)
                except DropConnection:
                    self.close_connection = True
                    return
                except OSError:  # the upstream is down (a restart): the client sees the connection close
                    self.close_connection = True
                    return
                try:
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a delay mode)
                    self.close_connection = True

            def _send(self, reply: Any) -> None:
                if isinstance(reply, RawReply):
                    status, body, headers = reply.status, reply.body, reply.headers
                else:
                    status, body, headers = 200, json.dumps(reply).encode(), {}
                self.send_response(status)
                self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    if name.lower() not in ("content-type", "content-length"):
                        self.send_header(name, value)
                self.end_headers()
                if isinstance(reply, RawReply) and reply.cut_at is not None:
                    self.wfile.write(body[: reply.cut_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def fault_proxy():
    """``fault_proxy(upstream_url, *modes)``: a started :class:`FaultProxy`, closed after the test."""
    made: list[FaultProxy] = []

    def _make(upstream: str, *modes: Mode) -> FaultProxy:
        proxy = FaultProxy(upstream, *modes).start()
        made.append(proxy)
        return proxy

    yield _make
    for proxy in made:
        proxy.close()


@pytest.fixture(scope="session")
def anvil_node(request):
    """An anvil chain with the canonical deployments: the suite's own with ``--chain anvil``, else a new one."""
    if request.config.getoption("--chain") == "anvil":
        yield request.getfixturevalue("local_chain")
        return
    from smartkeys.localchain import start_local_chain

    chain = start_local_chain("anvil")
    yield chain
    chain.close()


@pytest.fixture
def anvil(anvil_node):
    """``anvil_node``, snapshotted before the test and reverted after it (automine restored)."""
    snapshot_id = anvil_node.snapshot()
    try:
        yield anvil_node
    finally:
        anvil_node.w3.provider.make_request("evm_setAutomine", [True])
        anvil_node.revert(snapshot_id)


@pytest.fixture(scope="session")
def long_anvil():
    """An anvil chain whose head is past block :data:`LONG_CHAIN_BLOCKS`: its genesis is numbered 100,000.

    Mining that many blocks is not practical here: anvil 1.7.1's ``anvil_mine`` slows down as the chain grows
    (measured on this machine: 500 blocks 0.6 s, the next 500 10.6 s, then 12.5 s, 18.2 s; 5,000 in one call
    over 30 s). A genesis at 100,000 gives the same block numbers, so a scan "from genesis" (block 0) spans
    more than 100,000 blocks and a range-limited provider refuses it just the same.
    """
    from smartkeys.localchain import start_local_chain

    chain = start_local_chain("anvil", extra_args=["--number", str(LONG_CHAIN_BLOCKS)])
    assert chain.w3.eth.block_number >= LONG_CHAIN_BLOCKS
    yield chain
    chain.close()


@pytest.fixture
def long_chain(long_anvil):
    snapshot_id = long_anvil.snapshot()
    try:
        yield long_anvil
    finally:
        long_anvil.revert(snapshot_id)


class _QuietServer(ThreadingHTTPServer):
    """The proxy's server: a client that hangs up mid-request (the faults make agents do that on purpose)
    is normal here, not a traceback on stderr."""

    def handle_error(self, request, client_address):  # socketserver's hook
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)
