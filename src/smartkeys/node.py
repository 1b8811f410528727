"""A local development node: anvil (Prague) with the canonical deployments, and optionally a real bundler.

:func:`run_node` is what ``smartkeys node`` runs: it starts anvil through :mod:`smartkeys.localchain`
(EntryPoint v0.8, Simple7702Account and the smartkeys account at their canonical addresses), prints
where everything is, optionally starts Alto (a real ERC-4337 bundler) against it, and waits until
Ctrl-C or ``stop_event``; then it stops both processes.

:func:`start_alto` starts Alto 0.0.20 from the checkout's ``node_modules`` against a local chain
(also used by the test fixtures in ``tests/alto.py``). Alto has no host flag and binds 0.0.0.0, so it
runs with the Node preload ``tools/loopback-preload.js``, which makes every server of the process
listen on 127.0.0.1. It gets two fresh keys (executor, utility) funded from the chain's deployer, so
it never races the dev accounts' nonces; the keys reach Alto through its environment
(``ALTO_EXECUTOR_PRIVATE_KEYS``, ``ALTO_UTILITY_PRIVATE_KEY``), never its command line, which any local user
can read. Alto runs in its own process group and is stopped as a group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount

from smartkeys.deployments import CREATE2_DEPLOYER, ENTRY_POINT_V08, SIMPLE7702_ADDRESS, account_address
from smartkeys.errors import SmartKeysError

__all__ = [
    "ALTO_EXECUTOR_KEYS_ENV",
    "ALTO_PACKAGE",
    "ALTO_UTILITY_KEY_ENV",
    "AltoError",
    "AltoProcess",
    "alto_environment",
    "find_alto",
    "find_loopback_preload",
    "run_node",
    "start_alto",
]

ALTO_PACKAGE = "@pimlico/alto"
_ALTO_CLI = Path("node_modules/@pimlico/alto/esm/cli/alto.js")
_PRELOAD = Path("tools/loopback-preload.js")
_EXECUTOR_FUNDING_WEI = 1_000 * 10**18


class AltoError(SmartKeysError):
    """Alto could not be found, did not start, or did not answer in time (the message has its log tail)."""


# --------------------------------------------------------------------------- locating files


def _search_bases() -> list[Path]:
    return [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]]


def _find(relative: Path, env: str, explicit: str | None, what: str) -> str:
    for candidate in (explicit, os.environ.get(env)):
        if candidate:
            if not os.path.isfile(candidate):
                raise AltoError(f"{what} not found at {candidate} (from {'the argument' if candidate == explicit else env})")
            return str(Path(candidate).resolve())
    for base in _search_bases():
        path = base / relative
        if path.is_file():
            return str(path)
    raise AltoError(
        f"{what} not found ({relative}); fix: run `npm ci` in the smartkeys checkout (it pins {ALTO_PACKAGE} 0.0.20), "
        f"or set {env}"
    )


def find_alto(explicit: str | None = None) -> str:
    """Path of Alto's CLI script: ``explicit``, ``$SMARTKEYS_ALTO``, or ``node_modules`` of the checkout."""
    return _find(_ALTO_CLI, "SMARTKEYS_ALTO", explicit, "Alto (npm @pimlico/alto)")


def find_loopback_preload(explicit: str | None = None) -> str:
    """Path of ``tools/loopback-preload.js`` (forces Node servers onto 127.0.0.1)."""
    return _find(_PRELOAD, "SMARTKEYS_LOOPBACK_PRELOAD", explicit, "the loopback preload")


def port_in_use(host: str, port: int) -> bool:
    """True if something listens on ``host:port`` (binding it, as anvil would, fails)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover is not "in use"
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _free_loopback_port() -> int:
    from smartkeys.localchain import _free_loopback_port as free

    return free()


def _hex_key(account: LocalAccount) -> str:
    return "0x" + bytes(account.key).hex()


# --------------------------------------------------------------------------- Alto

#: Alto (yargs ``.env("ALTO")``) reads ``--executor-private-keys`` / ``--utility-private-key`` from these
#: variables. A process's environment (``/proc/<pid>/environ``, mode 0400) is readable only by its own user
#: and root, unlike its command line (``/proc/<pid>/cmdline``, ``ps``), which every local user can read.
ALTO_EXECUTOR_KEYS_ENV = "ALTO_EXECUTOR_PRIVATE_KEYS"
ALTO_UTILITY_KEY_ENV = "ALTO_UTILITY_PRIVATE_KEY"


def alto_environment(executor: LocalAccount, utility: LocalAccount, base: Any = None) -> dict[str, str]:
    """The environment Alto is started with: ``base`` (default ``os.environ``) plus the executor and utility
    keys (hex). Keys never go on Alto's command line."""
    env = dict(os.environ if base is None else base)
    env[ALTO_EXECUTOR_KEYS_ENV] = _hex_key(executor)
    env[ALTO_UTILITY_KEY_ENV] = _hex_key(utility)
    return env



@dataclass
class AltoProcess:
    """A running Alto bundler. ``url`` is its JSON-RPC endpoint; stop it with :meth:`stop` (or ``with``)."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    rpc_url: str
    executor: LocalAccount = field(repr=False)
    utility: LocalAccount = field(repr=False)
    startup_seconds: float = 0.0
    _owns_log: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of Alto's log (ANSI colours stripped)."""
        import re

        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        return "\n".join(text.splitlines()[-lines:])

    def client(self, **kwargs: Any):
        """A :class:`~smartkeys.bundler.BundlerClient` for this bundler."""
        from smartkeys.bundler import BundlerClient

        return BundlerClient(self.url, **kwargs)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM Alto's process group, then SIGKILL it if it is still there after ``timeout`` s."""
        _stop_group(self.process, timeout)
        if self._owns_log:
            try:
                self.log_path.unlink()
            except OSError:
                pass

    def __enter__(self) -> AltoProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_group(process: subprocess.Popen, timeout: float) -> None:
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        pgid = None
    if pgid is not None and pgid == process.pid:  # its own group (start_new_session): stop the whole group
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # children that outlived the leader
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    elif process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    if process.poll() is None:
        process.wait(timeout=5)


def _rpc(url: str, method: str, params: list[Any], timeout: float = 2.0) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def start_alto(
    chain: Any,
    *,
    port: int | None = None,
    executor: LocalAccount | None = None,
    utility: LocalAccount | None = None,
    fund: bool = True,
    log_path: str | Path | None = None,
    log_level: str = "info",
    timeout: float = 60.0,
    extra_args: list[str] | None = None,
    node: str | None = None,
    alto_path: str | None = None,
) -> AltoProcess:
    """Start Alto against ``chain`` (a :class:`~smartkeys.localchain.LocalChain` on anvil) and wait until it answers.

    The EntryPoint v0.8 must already be deployed at its canonical address (Alto picks the version from it).
    ``executor`` / ``utility`` default to fresh keys; with ``fund`` they get 1,000 ether each from
    ``chain.deployer``. Alto listens on 127.0.0.1:``port`` (a free port by default) and logs to
    ``log_path`` (a temporary file, removed by :meth:`AltoProcess.stop`, by default). Raises
    :class:`AltoError`, with the tail of Alto's log, if it exits or does not list the EntryPoint in
    ``eth_supportedEntryPoints`` within ``timeout`` seconds.
    """
    rpc_url = getattr(chain, "url", None)
    if not rpc_url:
        raise AltoError(
            f"Alto needs a node it can reach over HTTP; the {getattr(chain, 'backend', '?')} chain has no URL; "
            "fix: start_local_chain('anvil')"
        )
    node = node or shutil.which("node")
    if not node:
        raise AltoError("node (Node.js) not found on PATH; fix: install Node.js 20+ (scripts/test.sh does it with apt)")
    cli = find_alto(alto_path)
    preload = find_loopback_preload()
    if not chain.w3.eth.get_code(ENTRY_POINT_V08):
        raise AltoError(f"no EntryPoint v0.8 at {ENTRY_POINT_V08} on {rpc_url}; fix: deploy it before starting Alto")
    executor = executor or Account.create()
    utility = utility or Account.create()
    if fund:
        for account in (executor, utility):
            chain.send({"to": account.address, "value": _EXECUTOR_FUNDING_WEI}, chain.deployer)
    port = port or _free_loopback_port()
    owns_log = log_path is None
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="smartkeys-alto-", suffix=".log")
        os.close(handle)
        log_path = name
    log_path = Path(log_path)
    args = [
        node, "--require", preload, cli,
        "--entrypoints", ENTRY_POINT_V08,
        "--safe-mode", "false",
        "--rpc-url", rpc_url,
        "--port", str(port),
        "--log-level", log_level,
        *(extra_args or []),
    ]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=alto_environment(executor, utility),
        )
    alto = AltoProcess(
        url=f"http://127.0.0.1:{port}", port=port, process=process, log_path=log_path, rpc_url=rpc_url,
        executor=executor, utility=utility, _owns_log=owns_log,
    )
    deadline = started + timeout
    while True:
        if process.poll() is not None:
            tail = alto.log_tail()
            alto.stop()
            raise AltoError(f"Alto exited with code {process.returncode} before it was ready; its log ends with:\n{tail}")
        try:
            answer = _rpc(alto.url, "eth_supportedEntryPoints", [])
            if ENTRY_POINT_V08.lower() in [str(a).lower() for a in answer.get("result") or []]:
                break
        except (OSError, ValueError):
            pass  # not listening yet
        if time.monotonic() > deadline:
            tail = alto.log_tail()
            alto.stop()
            raise AltoError(
                f"Alto did not answer eth_supportedEntryPoints on {alto.url} within {timeout} s; "
                f"its log ends with:\n{tail}"
            )
        time.sleep(0.1)
    alto.startup_seconds = time.monotonic() - started
    return alto


# --------------------------------------------------------------------------- run_node


def _describe(chain: Any, alto: AltoProcess | None, host: str) -> dict[str, Any]:
    accounts = [{"address": a.address, "private_key": _hex_key(a)} for a in chain.accounts]
    return {
        "rpc_url": chain.url,
        "chain_id": chain.chain_id,
        "host": host,
        "contracts": {
            "EntryPoint v0.8": ENTRY_POINT_V08,
            "SmartKeysAccount": account_address(),
            "Simple7702Account": SIMPLE7702_ADDRESS,
            "CREATE2 deployer": CREATE2_DEPLOYER,
        },
        "accounts": accounts,
        "accounts_note": "public anvil/Hardhat dev keys (mnemonic 'test test ... junk'): never use them on a real network",
        "bundler_url": alto.url if alto else None,
    }


def _print_text(info: dict[str, Any], out: IO[str]) -> None:
    w = out.write
    w("smartkeys local node (anvil, Prague)\n")
    w(f"  RPC URL      {info['rpc_url']}\n")
    w(f"  chain id     {info['chain_id']}\n")
    if info["bundler_url"]:
        w(f"  bundler URL  {info['bundler_url']}   (Alto 0.0.20, ERC-4337 JSON-RPC)\n")
    if info["host"] not in ("127.0.0.1", "localhost", "::1"):
        w(f"  WARNING: listening on {info['host']}: anyone who can reach it can spend the dev accounts\n")
    w("\nContracts\n")
    for name, address in info["contracts"].items():
        w(f"  {name:<18} {address}\n")
    w("\nFunded dev accounts (PUBLIC keys from the well-known test mnemonic: never use them on a real network)\n")
    for i, account in enumerate(info["accounts"]):
        w(f"  ({i}) {account['address']}  {account['private_key']}\n")
    w("\nPress Ctrl-C to stop.\n")
    out.flush()


def run_node(
    *,
    host: str = "127.0.0.1",
    port: int = 8545,
    bundler: bool = False,
    bundler_port: int | None = None,
    out: IO[str] | None = None,
    json_output: bool = False,
    stop_event: threading.Event | None = None,
) -> int:
    """Run anvil (Prague) with EntryPoint v0.8 and smartkeys deployed on ``host:port`` until Ctrl-C or ``stop_event``.

    Prints the RPC URL, chain id, contract addresses and the funded dev accounts (public keys of the test
    mnemonic) to ``out`` -- as one JSON object with ``json_output``. With ``bundler`` it also starts Alto
    (127.0.0.1, ``bundler_port`` or a free port) and prints its URL. Both processes are stopped before it
    returns 0; start-up failures print the reason to stderr and return 1.
    """
    from smartkeys.localchain import LocalChainError, start_local_chain

    out = out or sys.stdout
    chain = alto = None
    try:
        try:
            chain = start_local_chain("anvil", host=host, port=port)
            if bundler:
                alto = start_alto(chain, port=bundler_port, log_level="warn")
        except (LocalChainError, AltoError, OSError) as exc:
            print(f"smartkeys node: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # Ctrl-C while starting
            return 130
        info = _describe(chain, alto, host)
        if json_output:
            out.write(json.dumps(info) + "\n")
            out.flush()
        else:
            _print_text(info, out)
        try:
            while not (stop_event is not None and stop_event.is_set()):
                if cast(Any, chain._backend).process.poll() is not None:  # anvil: it has a process
                    print("smartkeys node: anvil exited", file=sys.stderr)
                    return 1
                if alto is not None and not alto.running():
                    print(f"smartkeys node: Alto exited; its log ends with:\n{alto.log_tail()}", file=sys.stderr)
                    return 1
                if stop_event is not None:
                    stop_event.wait(0.25)
                else:
                    time.sleep(0.25)
        except KeyboardInterrupt:
            pass
        if not json_output:
            out.write("stopping\n")
            out.flush()
        return 0
    finally:
        if alto is not None:
            alto.stop()
        if chain is not None:
            chain.close()
