"""``smartkeys deploy``: the CREATE2 deploy command inside the CLI (tests/e2e/test_deploy.py runs it against
real anvil nodes). Here: its place in ``smartkeys --help``, its own help, and its usage errors, all through
``smartkeys.cli.main`` with injected streams."""

from __future__ import annotations

import io

from smartkeys.cli import main


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, env={})
    return code, out.getvalue(), err.getvalue()


def test_top_level_help_lists_deploy():
    code, out, _ = _run(["--help"])
    assert code == 0
    assert "deploy" in out.split("exit codes:")[0]
    assert "smartkeys deploy --help" in out


def test_deploy_help_is_the_deploy_command_with_its_exit_codes():
    code, out, err = _run(["deploy", "--help"])
    assert code == 0 and err == ""
    assert out.startswith("usage: smartkeys deploy ")
    for flag in ("--rpc-url", "--chain-id", "--keystore", "--dry-run", "--out-dir"):
        assert flag in out
    text = " ".join(out.split())  # argparse wraps the epilog
    assert "3 chain id mismatch" in text and "8 a transaction failed" in text


def test_deploy_without_rpc_url_is_a_usage_error_naming_the_flags():
    code, out, err = _run(["deploy", "--chain-id", "31337"])
    assert code == 2 and out == ""
    assert "smartkeys deploy" in err and "--rpc-url" in err


def test_deploy_with_a_bad_chain_id_is_a_usage_error():
    code, _, err = _run(["deploy", "--rpc-url", "http://127.0.0.1:9", "--chain-id", "mainnet"])
    assert code == 2
    assert "--chain-id" in err and "'mainnet'" in err


def test_options_before_deploy_are_refused_with_where_they_go():
    code, out, err = _run(["--json", "deploy"])
    assert code == 2
    assert "after the word deploy" in out + err and "smartkeys deploy --rpc-url" in out + err
