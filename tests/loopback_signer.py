"""A loopback remote signer for tests: a small JSON-RPC HTTP server on 127.0.0.1 (a free port) that holds keys
with eth-account and signs honestly, answering the methods Web3Signer / geth-style signers serve
(``eth_accounts``, ``eth_signTransaction``, ``eth_signTypedData_v4``, ``eth_signTypedData``, ``personal_sign``,
``eth_sign``) and Clef's external API (``account_list``, ``account_signTransaction`` -> ``{"raw", "tx"}``,
``account_signTypedData``, ``account_signData``).

``LoopbackSigner(keys, lie_with=None)``: ``calls`` lists the methods called, in order; ``lie_with`` (a key) makes
it sign everything with that key instead (a signer that answers for another account).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

_QUANTITIES = ("nonce", "chainId", "gas", "value", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice", "type")


class LoopbackSigner:
    def __init__(self, keys: list[Any], *, lie_with: Any = None) -> None:
        self.accounts = {to_checksum_address(k.address): k for k in keys}
        self.lie_with = lie_with
        self.calls: list[str] = []
        signer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    body = {"result": signer.answer(request["method"], request.get("params") or [])}
                except Exception as exc:  # noqa: BLE001 - reported to the client as a JSON-RPC error
                    body = {"error": {"code": -32000, "message": f"{type(exc).__name__}: {exc}"}}
                data = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), **body}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def _key(self, address: str) -> Any:
        key = self.accounts[to_checksum_address(address)]  # KeyError: an account this signer does not hold
        return self.lie_with or key

    def answer(self, method: str, params: list[Any]) -> Any:
        self.calls.append(method)
        if method == "eth_accounts":
            return [a.lower() for a in self.accounts]
        if method == "account_list":
            return [{"address": a} for a in self.accounts]
        if method in ("eth_signTransaction", "account_signTransaction"):
            wire = dict(params[0])
            key = self._key(wire.pop("from"))
            tx = {k: (int(v, 16) if k in _QUANTITIES else v) for k, v in wire.items() if k != "authorizationList"}
            if wire.get("authorizationList"):
                from smartkeys.authorization import auth_from_rpc

                tx["authorizationList"] = [auth_from_rpc(a) for a in wire["authorizationList"]]
            tx.pop("type", None)
            raw = "0x" + bytes(key.sign_transaction(tx).raw_transaction).hex()
            return {"raw": raw, "tx": wire} if method == "account_signTransaction" else raw
        if method in ("eth_signTypedData_v4", "eth_signTypedData", "account_signTypedData"):
            address, typed = params
            typed = json.loads(typed) if isinstance(typed, str) else typed
            return "0x" + bytes(self._key(address).sign_typed_data(full_message=typed).signature).hex()
        if method in ("personal_sign", "eth_sign", "account_signData"):
            if method == "personal_sign":
                data, address = params
            elif method == "eth_sign":
                address, data = params
            else:
                _content_type, address, data = params
            return "0x" + bytes(self._key(address).sign_message(encode_defunct(hexstr=data)).signature).hex()
        raise ValueError(f"the method {method} does not exist")

