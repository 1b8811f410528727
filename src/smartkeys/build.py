"""Build (and check) the compiled contract artifacts shipped inside the package.

    python -m smartkeys.build            # compile contracts/ and write src/smartkeys/artifacts/
    python -m smartkeys.build --check    # compile into memory, compare with the shipped files

This is a developer tool: it needs Node.js, the pinned npm toolchain (``npm ci`` in the
repository root installs solc 0.8.30 (solcjs), OpenZeppelin and account-abstraction) and py-solc-x
(the ``build`` extra, also in ``test``). Users
of the package never run it; they load the shipped JSON through :mod:`smartkeys.artifacts`.
Importing this module needs neither node nor node_modules.

Compilation always goes through ``tools/solc``, the native-CLI emulation over solcjs, driven by
py-solc-x (``solcx.compile_standard`` with ``solc_binary=tools/solc``, as ape-solidity drives it), so the
shim is exercised on every build. Source unit names are ``contracts/<path>`` and imports are
remapped to ``node_modules/``, so the bytecode (which embeds a metadata hash of every source)
is the same on every machine and for a copy of ``contracts/`` in any directory.

Layout written:

- ``artifacts/<Name>.json``       every contract, interface and library defined in ``contracts/``
- ``artifacts/test/<Name>.json``  the same for files under ``contracts/test/``
- ``artifacts/vendor/*.json``     verbatim copies of ``@account-abstraction/contracts`` artifacts
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACTS_DIR",
    "BuildError",
    "CONTRACTS_DIR",
    "REPO_ROOT",
    "SETTINGS",
    "VENDORED",
    "artifact_path",
    "check_artifacts",
    "check_vendor",
    "compile_contracts",
    "compiler_version",
    "main",
    "render",
    "write_artifacts",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
SHIM = REPO_ROOT / "tools" / "solc"
NODE_MODULES = REPO_ROOT / "node_modules"
SOLCJS_DIR = NODE_MODULES / "solc"
VENDOR_SOURCE_DIR = NODE_MODULES / "@account-abstraction" / "contracts" / "artifacts"
VENDORED = ("EntryPoint", "Simple7702Account")

#: Source unit names start with this, whatever directory the contracts are compiled from.
SOURCE_PREFIX = "contracts/"
TEST_PREFIX = SOURCE_PREFIX + "test/"

FIX_HINT = "run `python -m smartkeys.build` and commit the artifacts"
NPM_HINT = f"run `npm ci` in {REPO_ROOT} (needs Node.js >= 18 on PATH)"

#: Compiler settings. Part of every artifact and of the metadata hash inside the bytecode:
#: changing anything here changes every artifact.
SETTINGS: dict[str, Any] = {
    "remappings": [
        "@openzeppelin/=node_modules/@openzeppelin/",
        "@account-abstraction/=node_modules/@account-abstraction/",
    ],
    # 5,000 runs, not 10,000: at 10,000 SmartKeysAccount's runtime code passes EIP-170's 24,576-byte limit
    # (the deployment reverts); at 5,000 it is ~24.0 KB and a session user op costs ~80 gas more.
    "optimizer": {"enabled": True, "runs": 5000},
    "evmVersion": "prague",
    "viaIR": True,  # the session engine needs it (stack depth), and it is cheaper at runtime
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.methodIdentifiers",
                "storageLayout",
            ]
        }
    },
}

#: Artifact fields, in the order mismatches are reported.
FIELDS = (
    "contractName",
    "sourceName",
    "abi",
    "bytecode",
    "deployedBytecode",
    "storageLayout",
    "methodIdentifiers",
    "compiler",
)


class BuildError(RuntimeError):
    """The toolchain is missing or the contracts do not compile."""


# --------------------------------------------------------------------------- helpers


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise BuildError(f"`node` is not on PATH; install Node.js >= 18, then {NPM_HINT}")
    if not (SOLCJS_DIR / "package.json").is_file():
        raise BuildError(f"{SOLCJS_DIR} is missing (the pinned solcjs compiler); {NPM_HINT}")
    if not SHIM.is_file():
        raise BuildError(f"{SHIM} is missing; restore it from git")
    return node


def _solcx() -> Any:
    """py-solc-x (the Python wrapper of the solc command line), imported on use: importing this module must
    not need it."""
    try:
        import solcx
        import solcx.exceptions
        import solcx.wrapper
    except ImportError as exc:  # pragma: no cover - in the build and test extras
        raise BuildError(f"py-solc-x is not installed ({exc}); run `pip install -e '.[build]'` in {REPO_ROOT}") from exc
    return solcx


_VERSION: str | None = None


def compiler_version() -> str:
    """The compiler's long version, e.g. ``0.8.30+commit.73712a01`` (no platform suffix:
    solcjs and a native build of the same commit produce the same bytecode), read by py-solc-x from
    ``tools/solc --version``."""
    global _VERSION
    if _VERSION is None:
        _node()
        solcx = _solcx()
        try:
            _VERSION = solcx.wrapper.get_version_str_from_solc_binary(SHIM)
        except (solcx.exceptions.SolcError, subprocess.CalledProcessError, OSError) as exc:
            raise BuildError(f"`{SHIM} --version` failed: {exc}") from exc
    return _VERSION


def _sources(contracts_dir: Path) -> dict[str, dict[str, str]]:
    # Hidden folders are tools' caches (Ape puts dependency sources in contracts/.cache), not our sources.
    files = sorted(p for p in contracts_dir.rglob("*.sol")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(contracts_dir).parts))
    return {
        SOURCE_PREFIX + p.relative_to(contracts_dir).as_posix(): {
            "content": p.read_bytes().decode("utf-8")
        }
        for p in files
    }


def _location(error: dict[str, Any], sources: dict[str, dict[str, str]]) -> str:
    loc = error.get("sourceLocation") or {}
    file = loc.get("file")
    if not file:
        return ""
    start = loc.get("start", -1)
    content = sources.get(file, {}).get("content")
    if content is not None and start is not None and start >= 0:
        line = content.encode("utf-8")[:start].count(b"\n") + 1
        return f"{file}:{line}"
    return file


def _format_diagnostic(error: dict[str, Any], sources: dict[str, dict[str, str]]) -> str:
    text = (error.get("formattedMessage") or error.get("message") or str(error)).rstrip()
    where = _location(error, sources)
    # formattedMessage already contains "--> file:line:col"; add file:line up front so the
    # first line is greppable even for errors that carry no snippet.
    if where and where not in text.splitlines()[0]:
        text = f"{where}: {text}"
    return text


# --------------------------------------------------------------------------- compile


def compile_contracts(
    contracts_dir: Path | None = None, *, quiet: bool = False
) -> dict[str, dict[str, Any]]:
    """Compile every ``.sol`` file under ``contracts_dir``.

    Returns ``{artifact_name: artifact}``, where artifact_name is ``<Name>`` for contracts in
    ``contracts/`` and ``test/<Name>`` for contracts in ``contracts/test/``; imported contracts
    (OpenZeppelin, account-abstraction) are not included. Raises :class:`BuildError` with every
    compiler error (file:line) if compilation fails; warnings are printed to stderr.
    """
    contracts_dir = Path(contracts_dir or CONTRACTS_DIR).resolve()
    sources = _sources(contracts_dir)
    if not sources:
        if not quiet:
            _log(f"no .sol files under {contracts_dir}; nothing to compile")
        return {}
    version = compiler_version()
    standard_input = {"language": "Solidity", "sources": sources, "settings": SETTINGS}
    short = version.split("+")[0]
    if not quiet:
        print(
            f"compiling {len(sources)} files with solc {short} (solcjs)…",
            end="",
            file=sys.stderr,
            flush=True,
        )
    started = time.monotonic()
    base = contracts_dir.parent
    solcx = _solcx()
    try:
        # py-solc-x runs `tools/solc --standard-json --base-path BASE --allow-paths BASE` with the input on stdin
        # and raises SolcError, carrying the compiler's diagnostics, when one of them is an error.
        output = solcx.compile_standard(
            standard_input, base_path=base, allow_paths=[base], solc_binary=SHIM
        )
        diagnostics = output.get("errors", [])
    except solcx.exceptions.SolcError as exc:
        if not exc.error_dict:  # the shim itself failed (exit status, no JSON)
            raise BuildError(f"{SHIM} --standard-json failed: {exc}") from exc
        output, diagnostics = {}, exc.error_dict
    except json.JSONDecodeError as exc:
        raise BuildError(f"{SHIM} printed invalid JSON ({exc})") from exc
    elapsed = time.monotonic() - started
    if not quiet:
        print(f" done in {elapsed:.1f} s", file=sys.stderr, flush=True)

    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for diag in diagnostics:
        (errors if diag.get("severity") == "error" else warnings).append(diag)
    for diag in warnings:
        _log(_format_diagnostic(diag, sources) + "\n")
    if errors:
        detail = "\n\n".join(_format_diagnostic(e, sources) for e in errors)
        raise BuildError(f"compilation failed with {len(errors)} error(s):\n\n{detail}")

    artifacts: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for source_name in sorted(output.get("contracts", {})):
        if source_name not in sources:
            continue  # imported from node_modules
        folder = "test/" if source_name.startswith(TEST_PREFIX) else ""
        for contract_name, out in sorted(output["contracts"][source_name].items()):
            key = folder + contract_name
            if key in artifacts:
                raise BuildError(
                    f"two contracts named {contract_name} ({origin[key]} and {source_name}); "
                    "artifact names must be unique, rename one"
                )
            origin[key] = source_name
            evm = out.get("evm", {})
            artifacts[key] = {
                "contractName": contract_name,
                "sourceName": source_name,
                "abi": out.get("abi", []),
                "bytecode": "0x" + evm.get("bytecode", {}).get("object", ""),
                "deployedBytecode": "0x" + evm.get("deployedBytecode", {}).get("object", ""),
                "storageLayout": out.get("storageLayout", {}),
                "methodIdentifiers": evm.get("methodIdentifiers", {}),
                "compiler": {"version": version, "settings": SETTINGS},
            }
    return artifacts


def render(artifact: dict[str, Any]) -> str:
    """The exact text of an artifact file (deterministic)."""
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def artifact_path(artifacts_dir: Path, name: str) -> Path:
    return Path(artifacts_dir) / f"{name}.json"


def _built_files(artifacts_dir: Path) -> dict[str, Path]:
    """Existing build-owned artifact files (top level and test/, never vendor/)."""
    found = {}
    for folder, prefix in ((Path(artifacts_dir), ""), (Path(artifacts_dir) / "test", "test/")):
        if folder.is_dir():
            for p in sorted(folder.glob("*.json")):
                found[prefix + p.stem] = p
    return found


# --------------------------------------------------------------------------- write / check


def write_artifacts(
    artifacts: dict[str, dict[str, Any]], artifacts_dir: Path | None = None
) -> tuple[list[str], list[str]]:
    """Write ``artifacts``, delete stale ones, refresh vendor copies. Returns (written, removed)."""
    artifacts_dir = Path(artifacts_dir or ARTIFACTS_DIR)
    written, removed = [], []
    for name, artifact in sorted(artifacts.items()):
        path = artifact_path(artifacts_dir, name)
        text = render(artifact)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            written.append(name)
    for name, path in _built_files(artifacts_dir).items():
        if name not in artifacts:
            path.unlink()
            removed.append(name)
    vendor_dir = artifacts_dir / "vendor"
    vendor_dir.mkdir(parents=True, exist_ok=True)
    for name in VENDORED:
        src = VENDOR_SOURCE_DIR / f"{name}.json"
        if not src.is_file():
            raise BuildError(f"{src} is missing; {NPM_HINT}")
        dst = vendor_dir / f"{name}.json"
        if not dst.is_file() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
            written.append(f"vendor/{name}")
    return written, removed


def _differing_fields(expected: dict[str, Any], actual: Any) -> list[str]:
    if not isinstance(actual, dict):
        return ["(not a JSON object)"]
    keys = [f for f in FIELDS if f in expected or f in actual]
    keys += sorted((set(expected) | set(actual)) - set(FIELDS))
    return [k for k in keys if expected.get(k, _MISSING) != actual.get(k, _MISSING)]


_MISSING = object()


def check_vendor(artifacts_dir: Path | None = None) -> list[str]:
    """Problems with the vendored copies (must equal node_modules byte for byte)."""
    artifacts_dir = Path(artifacts_dir or ARTIFACTS_DIR)
    problems = []
    for name in VENDORED:
        src = VENDOR_SOURCE_DIR / f"{name}.json"
        dst = Path(artifacts_dir) / "vendor" / f"{name}.json"
        if not src.is_file():
            problems.append(f"vendor/{name}: {src} is missing; {NPM_HINT}")
        elif not dst.is_file():
            problems.append(f"vendor/{name}: {dst} is missing")
        elif dst.read_bytes() != src.read_bytes():
            problems.append(f"vendor/{name}: differs from {src}")
    return problems


def check_artifacts(
    contracts_dir: Path | None = None,
    artifacts_dir: Path | None = None,
    *,
    compiled: dict[str, dict[str, Any]] | None = None,
    vendor: bool = True,
) -> list[str]:
    """Compile ``contracts_dir`` (unless ``compiled`` is given) and compare with the files in
    ``artifacts_dir``. Returns a list of problems; empty means the shipped artifacts are exactly
    what the pinned compiler makes."""
    if compiled is None:
        compiled = compile_contracts(contracts_dir)
    artifacts_dir = Path(artifacts_dir or ARTIFACTS_DIR)
    problems = []
    for name, artifact in sorted(compiled.items()):
        path = artifact_path(artifacts_dir, name)
        if not path.is_file():
            problems.append(f"{name}: artifact missing ({path}) for {artifact['sourceName']}")
            continue
        text = path.read_text(encoding="utf-8")
        try:
            shipped = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"{name}: {path} is not valid JSON ({exc})")
            continue
        fields = _differing_fields(artifact, shipped)
        if fields:
            problems.append(f"{name}: {', '.join(fields)} differ ({artifact['sourceName']})")
        elif text != render(artifact):
            problems.append(f"{name}: same content but not formatted by the build ({path})")
    for name, path in _built_files(artifacts_dir).items():
        if name not in compiled:
            problems.append(f"{name}: stale artifact, no such contract in contracts/ ({path})")
    if vendor:
        problems += check_vendor(artifacts_dir)
    return problems


# --------------------------------------------------------------------------- CLI


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartkeys.build",
        description="Compile contracts/ into the artifacts shipped in src/smartkeys/artifacts/.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compile into memory and verify the shipped artifacts match (exit 1 if not)",
    )
    parser.add_argument("--contracts-dir", type=Path, default=CONTRACTS_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--artifacts-dir", type=Path, default=ARTIFACTS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(None if argv is None else list(argv))

    try:
        compiled = compile_contracts(args.contracts_dir)
        if args.check:
            problems = check_artifacts(
                args.contracts_dir, args.artifacts_dir, compiled=compiled
            )
            if problems:
                print("shipped artifacts do not match contracts/:", file=sys.stderr)
                for problem in problems:
                    print(f"  - {problem}", file=sys.stderr)
                print(f"fix: {FIX_HINT}", file=sys.stderr)
                return 1
            print(
                f"OK: {len(compiled)} artifacts + {len(VENDORED)} vendored match "
                f"solc {compiler_version() if compiled else '(none compiled)'}"
            )
            return 0
        written, removed = write_artifacts(compiled, args.artifacts_dir)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in written:
        _log(f"wrote {artifact_path(args.artifacts_dir, name)}")
    for name in removed:
        _log(f"removed stale {artifact_path(args.artifacts_dir, name)}")
    _log(
        f"{len(compiled)} artifacts up to date in {args.artifacts_dir} "
        f"({len(written)} written, {len(removed)} removed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
