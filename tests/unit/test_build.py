"""The compiler shim (tools/solc) and the shipped-artifacts check (smartkeys.build).

Needs node and node_modules (`npm ci`); skipped otherwise. Compiles at most twice per
session: the real contracts once (module fixture) and one modified copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import smartkeys
from smartkeys import build


def _missing_toolchain() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH (install Node.js, then `npm ci`)"
    if not (build.SOLCJS_DIR / "package.json").is_file():
        return f"{build.SOLCJS_DIR} missing (run `npm ci`)"
    if not build.VENDOR_SOURCE_DIR.is_dir():
        return f"{build.VENDOR_SOURCE_DIR} missing (run `npm ci`)"
    return None


MISSING = _missing_toolchain()
needs_toolchain = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

PROBE = "smartkeysBuildCheckProbe"


@pytest.fixture(scope="module")
def compiled() -> dict[str, dict]:
    return build.compile_contracts(build.CONTRACTS_DIR, quiet=True)


# --------------------------------------------------------------------------- the shim


@needs_toolchain
def test_shim_prints_version_like_native_solc():
    assert os.access(build.SHIM, os.X_OK), f"{build.SHIM} must be executable (chmod +x)"
    proc = subprocess.run([str(build.SHIM), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(
        r"solc, the solidity compiler commandline interface\n"
        r"Version: 0\.8\.30\+commit\.[0-9a-f]{8}\.Linux\.g\+\+\n",
        proc.stdout,
    ), proc.stdout


@needs_toolchain
def test_shim_writes_standard_json_output_over_64k_intact():
    # Parse-only input (no code generation, fast) whose AST output is far above the 64 KB
    # pipe buffer: process.stdout.write + process.exit would truncate it.
    body = "\n".join(
        f"    function f{i}(uint256 a) external pure returns (uint256) {{ return a + {i}; }}" for i in range(400)
    )
    source = f"// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\ncontract Big {{\n{body}\n}}\n"
    standard_input = {
        "language": "Solidity",
        "sources": {"Big.sol": {"content": source}},
        "settings": {"stopAfter": "parsing", "outputSelection": {"*": {"": ["ast"]}}},
    }
    proc = subprocess.run(
        [str(build.SHIM), "--standard-json", "--no-color", "--allow-paths", "/nonexistent", "--base-path", "."],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) > 200_000
    output = json.loads(proc.stdout)
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"], output["errors"]
    assert output["sources"]["Big.sol"]["ast"]["nodeType"] == "SourceUnit"


# --------------------------------------------------------------------------- the check


@needs_toolchain
def test_shipped_artifacts_are_exactly_what_the_compiler_makes(compiled):
    problems = build.check_artifacts(compiled=compiled)
    assert not problems, (
        "shipped artifacts are out of date:\n  "
        + "\n  ".join(problems)
        + f"\nfix: {build.FIX_HINT}"
    )


@needs_toolchain
def test_artifacts_have_the_documented_shape(compiled):
    for name, artifact in compiled.items():
        assert set(artifact) == set(build.FIELDS), name
        assert artifact["contractName"] == name.split("/")[-1]
        assert artifact["sourceName"].startswith("contracts/")
        assert name.startswith("test/") == artifact["sourceName"].startswith("contracts/test/")
        assert re.fullmatch(r"0x([0-9a-f]{2})*", artifact["bytecode"]), name
        assert re.fullmatch(r"0x([0-9a-f]{2})*", artifact["deployedBytecode"]), name
        assert artifact["compiler"]["version"].startswith("0.8.30+commit.")
        assert artifact["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 5000}
        assert artifact["compiler"]["settings"]["evmVersion"] == "prague"
        assert build.render(artifact) == build.render(json.loads(build.render(artifact)))
    # nothing from node_modules leaks in
    assert not any(a["sourceName"].startswith("node_modules/") for a in compiled.values())


def _mask(source: str) -> str:
    """``source`` with comments and string literals blanked (same length, same newlines)."""
    out = list(source)
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j == -1 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            j = n if j == -1 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and source[j] != c:
                j += 2 if source[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            i += 1
            continue
        for k in range(i, j):
            if out[k] != "\n":
                out[k] = " "
        i = j
    return "".join(out)


def _add_probe_function(source: str) -> tuple[str, str] | None:
    """Append a harmless external function to the first concrete contract in ``source``.
    Returns (contract name, new source), or None if the file has no concrete contract."""
    masked = _mask(source)
    for match in re.finditer(r"\b(abstract\s+)?contract\s+([A-Za-z_$][\w$]*)", masked):
        if match.group(1):
            continue
        open_brace = masked.find("{", match.end())
        depth = 0
        for pos in range(open_brace, len(masked)):
            if masked[pos] == "{":
                depth += 1
            elif masked[pos] == "}":
                depth -= 1
                if depth == 0:
                    probe = f"\n    function {PROBE}() external pure returns (uint256) {{ return 42; }}\n"
                    return match.group(2), source[:pos] + probe + source[pos:]
    return None


def _modify_copy(tmp_path: Path) -> tuple[Path, str]:
    """Copy contracts/ to tmp_path and change one contract; returns (contracts dir, artifact name)."""
    contracts = tmp_path / "contracts"
    shutil.copytree(build.CONTRACTS_DIR, contracts)
    files = sorted(
        contracts.rglob("*.sol"),
        key=lambda p: (p.relative_to(contracts).parts[0] == "test", p.name != "SmartKeysAccount.sol", str(p)),
    )
    for path in files:
        changed = _add_probe_function(path.read_text(encoding="utf-8"))
        if changed:
            name, text = changed
            path.write_text(text, encoding="utf-8")
            is_test = path.relative_to(contracts).parts[0] == "test"
            return contracts, ("test/" if is_test else "") + name
    # contracts/ has no concrete contract yet: add one, which the check must report as missing
    (contracts / "BuildCheckProbe.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
        f"contract BuildCheckProbe {{ function {PROBE}() external pure returns (uint256) {{ return 42; }} }}\n"
    )
    return contracts, "BuildCheckProbe"


@needs_toolchain
def test_check_fails_when_a_contract_changes(tmp_path, compiled, monkeypatch, capsys):
    contracts, target = _modify_copy(tmp_path)
    modified = build.compile_contracts(contracts, quiet=True)  # the session's second compile
    assert f"{PROBE}()" in modified[target]["methodIdentifiers"]

    # 1. against the shipped artifacts (the required demonstration)
    problems = build.check_artifacts(contracts, build.ARTIFACTS_DIR, compiled=modified)
    assert any(p.startswith(f"{target}:") for p in problems), problems

    # 2. against artifacts built from the unmodified sources: exactly what changed is named
    baseline = tmp_path / "artifacts"
    build.write_artifacts(compiled, baseline)
    assert build.check_artifacts(contracts, baseline, compiled=compiled) == []
    if target in compiled:
        problems = build.check_artifacts(contracts, baseline, compiled=modified)
        [line] = [p for p in problems if p.startswith(f"{target}:")]
        for field in ("abi", "bytecode", "deployedBytecode", "methodIdentifiers"):
            assert re.search(rf"\b{field}\b", line), line

    # 3. the CLI exits 1, names the artifact and the fix (compile stubbed: no third compile)
    monkeypatch.setattr(build, "compile_contracts", lambda *a, **k: modified)
    code = build.main(["--check", "--contracts-dir", str(contracts), "--artifacts-dir", str(baseline)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{target}:" in err
    assert "python -m smartkeys.build" in err

    monkeypatch.setattr(build, "compile_contracts", lambda *a, **k: compiled)
    assert build.main(["--check", "--contracts-dir", str(contracts), "--artifacts-dir", str(baseline)]) == 0
    assert capsys.readouterr().out.startswith("OK")


@needs_toolchain
def test_build_removes_stale_artifacts_but_not_vendor_or_init(tmp_path, compiled):
    artifacts = tmp_path / "artifacts"
    (artifacts / "test").mkdir(parents=True)
    (artifacts / "__init__.py").write_text("# keep\n")
    (artifacts / "Gone.json").write_text("{}\n")
    (artifacts / "test" / "GoneMock.json").write_text("{}\n")
    written, removed = build.write_artifacts(compiled, artifacts)
    assert sorted(removed) == ["Gone", "test/GoneMock"]
    assert (artifacts / "__init__.py").read_text() == "# keep\n"
    assert build.check_artifacts(compiled=compiled, artifacts_dir=artifacts) == []
    assert build.write_artifacts(compiled, artifacts) == ([], [])  # idempotent


@needs_toolchain
def test_vendored_artifacts_are_verbatim_copies():
    assert build.check_vendor() == []
    for name in build.VENDORED:
        shipped = build.ARTIFACTS_DIR / "vendor" / f"{name}.json"
        assert shipped.read_bytes() == (build.VENDOR_SOURCE_DIR / f"{name}.json").read_bytes()


def test_importing_build_needs_no_node(tmp_path):
    src = Path(smartkeys.__file__).resolve().parents[1]
    code = (
        "import smartkeys.build as b\n"
        "try:\n"
        "    b.compile_contracts()\n"
        "except b.BuildError as e:\n"
        "    print('BuildError:', e)\n"
    )
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if any(build.CONTRACTS_DIR.rglob("*.sol")):
        assert "BuildError:" in proc.stdout and "npm ci" in proc.stdout, proc.stdout


@needs_toolchain
def test_compile_goes_through_py_solc_x_and_reports_errors_with_file_and_line(tmp_path, monkeypatch):
    import solcx

    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "Fine.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\ncontract Fine { }\n")
    (contracts / "Broken.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
        "contract Broken { function f() external pure returns (uint256) { return undefinedName; } }\n")
    calls = []
    real = solcx.compile_standard

    def spy(input_data, **kwargs):
        calls.append(kwargs)
        return real(input_data, **kwargs)

    monkeypatch.setattr(solcx, "compile_standard", spy)
    with pytest.raises(build.BuildError) as info:
        build.compile_contracts(contracts, quiet=True)
    message = str(info.value)
    assert "1 error(s)" in message
    assert "contracts/Broken.sol:3" in message and "undefinedName" in message
    assert "Fine.sol" not in message
    [kwargs] = calls
    assert Path(kwargs["solc_binary"]) == build.SHIM
    assert Path(kwargs["base_path"]) == tmp_path


def test_every_shipped_runtime_code_fits_eip170():
    """EIP-170: a contract's runtime code is at most 24,576 bytes, else its deployment reverts (the account
    cannot be deployed at its canonical address). Fails before a feature pushes the account past it."""
    from smartkeys import artifacts

    for name in ("SmartKeysAccount",):
        code = artifacts.load(name)["deployedBytecode"]
        size = (len(code) - 2) // 2
        assert size <= 24_576, f"{name} runtime code is {size} bytes, over EIP-170's 24,576"
