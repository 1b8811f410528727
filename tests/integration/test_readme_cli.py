"""The README's command-line walkthrough, run as written: `smartkeys node --bundler` in one process (terminal 1),
then every command of the block marked ``<!-- cli-walkthrough -->`` in one bash process (terminal 2), in a
temporary HOME and working directory. Only the ports change (free ones instead of 8545 and 4337), and the
keystore password comes from SMARTKEYS_PASSWORD, as the README says scripts do it.

Each command's exit code is recorded: 0, or the code its comment announces (``# … exit 3``)."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
NODE_MARK = "<!-- cli-walkthrough: node -->"
WALK_MARK = "<!-- cli-walkthrough -->"
PASSWORD = "walkthrough password"


def _block_after(text: str, mark: str) -> str:
    """The fenced code block right after ``mark``."""
    assert text.count(mark) == 1, f"README.md must hold {mark} exactly once"
    match = re.match(r"\s*```[a-z]*\n(.*?)\n```", text[text.index(mark) + len(mark):], re.DOTALL)
    assert match, f"no fenced code block right after {mark}"
    return match.group(1)


def split_commands(block: str) -> list[tuple[str, int]]:
    """Shell commands of ``block`` with their expected exit codes: one per line (heredocs and ``\\``
    continuations included), comments and blank lines skipped; ``# … exit N`` on the line expects N."""
    commands: list[tuple[str, int]] = []
    lines = iter(block.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        expected = re.search(r"#.*\bexit (\d)\b", line)
        command = [line]
        while command[-1].endswith("\\"):
            command.append(next(lines))
        heredoc = re.search(r"<<-?\s*'?([A-Za-z_]+)'?", line)
        if heredoc:
            for body in lines:
                command.append(body)
                if body.strip() == heredoc.group(1):
                    break
            else:
                raise AssertionError(f"unterminated heredoc in: {line}")
        commands.append(("\n".join(command), int(expected.group(1)) if expected else 0))
    return commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120.0):
    """Start ``smartkeys node`` and return (process, what it printed up to "Press Ctrl-C to stop.")."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    printed: list[str] = []
    try:
        while True:
            line = lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"`smartkeys node` exited with {process.wait()}:\n{''.join(printed)}")
            printed.append(line)
            if "Press Ctrl-C to stop." in line:
                return process, "".join(printed)
    except BaseException:
        _stop_node(process)
        raise


def _stop_node(process: subprocess.Popen) -> None:
    """SIGTERM (the node then stops anvil and Alto), then SIGKILL its process group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_split_commands_handles_heredocs_continuations_and_expected_codes():
    block = "# comment\n\nfoo a  # exit 3\ncat > f <<'EOF'\nx = 1\nEOF\nbar \\\n  --baz\n"
    assert split_commands(block) == [("foo a  # exit 3", 3), ("cat > f <<'EOF'\nx = 1\nEOF", 0), ("bar \\\n  --baz", 0)]


def test_the_quickstart_install_brings_what_the_walkthrough_uses():
    """The walkthrough runs with what the Quickstart installs (`pip install -e .`, no extras): every module a
    walkthrough command needs beyond the standard library is a base dependency in pyproject.toml."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = README.read_text(encoding="utf-8")
    quickstart = text[text.index("## Quickstart"):text.index("## A short tour")]
    (install,) = re.findall(r"pip install[^&\n]*", quickstart)
    assert re.search(r"-e \.(\s|$)", install) and "[" not in install, install  # the base install, no extras
    walkthrough = _block_after(text, WALK_MARK)
    needs = {"matplotlib": "--plot" in walkthrough}
    pyproject = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))
    base = {re.split(r"[<>=!\[; ]", d, maxsplit=1)[0].lower() for d in pyproject["project"]["dependencies"]}
    for module, needed in needs.items():
        if needed:
            assert module in base, f"the walkthrough needs {module}, which `{install}` does not install"


def test_readme_walkthrough_runs_against_smartkeys_node(tmp_path):
    from smartkeys.localchain import LocalChainError, find_anvil
    from smartkeys.node import AltoError, find_alto

    try:
        find_anvil()
        find_alto()
    except (LocalChainError, AltoError) as exc:  # pragma: no cover - both come with `npm ci`
        pytest.skip(f"the walkthrough needs anvil and Alto: {exc}")

    text = README.read_text(encoding="utf-8")
    node_line = _block_after(text, NODE_MARK).strip()
    assert node_line.startswith("smartkeys node") and "\n" not in node_line
    commands = split_commands(_block_after(text, WALK_MARK))
    assert [code for _, code in commands].count(3) == 1, "the walkthrough shows one refused command"

    rpc_port, bundler_port = _free_port(), _free_port()
    node_argv = shlex.split(node_line.replace("4337", str(bundler_port))) + ["--port", str(rpc_port)]

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    assert (Path(bin_dir) / "smartkeys").exists(), "the smartkeys script is installed next to the interpreter"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTKEYS_")}
    env.update(HOME=str(home), PATH=bin_dir + os.pathsep + env.get("PATH", ""), SMARTKEYS_PASSWORD=PASSWORD)

    node, printed = _start_node(node_argv, env, work)
    try:
        # the key the walkthrough imports is one `smartkeys node` printed as a public dev key
        imported = re.search(r"\b(0x[0-9a-f]{64})\b", commands[0][0])
        assert imported and imported.group(1) in printed and "PUBLIC" in printed
        assert f"http://127.0.0.1:{bundler_port}" in printed

        rc_file = tmp_path / "exit-codes"
        script = []
        for i, (command, _) in enumerate(commands):
            command = command.replace("127.0.0.1:8545", f"127.0.0.1:{rpc_port}")
            command = command.replace("127.0.0.1:4337", f"127.0.0.1:{bundler_port}")
            script += [command, f"echo \"{i} $?\" >> {shlex.quote(str(rc_file))}"]
        result = subprocess.run(["bash", "--noprofile", "--norc", "-c", "\n".join(script)], cwd=work, env=env,
                                capture_output=True, text=True, timeout=600)
        output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        codes = dict(line.split() for line in rc_file.read_text().splitlines()) if rc_file.exists() else {}
        for i, (command, expected) in enumerate(commands):
            assert codes.get(str(i)) == str(expected), f"`{command}` exited {codes.get(str(i))}, not {expected}\n{output}"
    finally:
        _stop_node(node)
    assert node.returncode == 0

    assert (work / "spend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "granted session 0x" in result.stdout and "succeeded via user op" in result.stdout
    assert "NativeValueAboveCallCap" in result.stderr and "nothing was sent" in result.stderr
    # in the policy's units, with what to do; the successful send says what is left
    assert "asked to send 0.5 ETH in one call" in result.stderr and "send at most 0.1 ETH" in result.stderr
    assert re.search(r"left\s+0\.15 ETH of 0\.25 ETH", result.stdout), result.stdout
    assert "revoked session 0x" in result.stdout
    assert re.search(r"sessions: 1 granted, 0 usable now", result.stdout)
    keys = sorted(p.name for p in (home / ".smartkeys" / "keys").iterdir())
    assert keys == ["agent.json", "owner.json"]
    assert all((home / ".smartkeys" / "keys" / k).stat().st_mode & 0o777 == 0o600 for k in keys)
    assert imported.group(1)[2:] not in result.stdout + result.stderr  # never echoed by keys import
