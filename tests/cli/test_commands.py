"""Every command through ``main()`` in-process on the embedded chain: human and --json output, exit codes,
and nothing sent on bad input or a declined confirmation."""

from __future__ import annotations

import io
import json

import pytest

from smartkeys.cli import main

PASSWORD = "correct horse battery staple"  # the conftest's


class TTYInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def _chain_state(chain, *addresses):
    """Block number and the nonces of ``addresses``: unchanged means nothing was sent."""
    return chain.w3.eth.block_number, tuple(chain.w3.eth.get_transaction_count(a) for a in addresses)


# --------------------------------------------------------------------------- help, usage


def test_help_documents_every_exit_code(cli):
    result = cli("--help")
    assert result.code == 0
    for line in ("0  ok", "1  unexpected error", "2  bad input", "3  refused by policy", "4  network",
                 "5  aborted"):
        assert line in result.out
    for command in ("demo", "node", "keys", "delegate", "undelegate", "status", "grant", "revoke", "call",
                    "send", "audit", "watch"):
        assert command in result.out


def test_no_command_prints_help_and_exits_2(cli):
    result = cli()
    assert result.code == 2 and "COMMAND" in result.out


def test_unknown_flag_is_a_usage_error_in_json_too(cli):
    result = cli("--json", "status", "--frobnicate")
    assert result.code == 2
    assert "unrecognized arguments" in result.err
    assert result.json == {"ok": False, "error": {"type": "_UsageError", "message": "unrecognized arguments: --frobnicate",
                                                  "exit_code": 2}}


# --------------------------------------------------------------------------- keys


def test_keys_new_prompts_twice_without_echo_and_never_prints_the_key(cli, home, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt, stream=None: (prompts.append(prompt), next(answers))[1])
    result = cli("--json", "keys", "new", "--label", "bot", "--light-kdf", stdin=TTYInput(), drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 0, result.err
    doc = result.json
    assert len(prompts) == 2 and doc["label"] == "bot" and doc["file"] == str(home / "keys" / "bot.json")
    assert (home / "keys" / "bot.json").stat().st_mode & 0o777 == 0o600
    from smartkeys.keystore import load_keystore

    key = load_keystore(doc["file"], PASSWORD)
    assert key.address == doc["address"]
    assert key.export_private_key_hex()[2:] not in result.out + result.err


def test_keys_new_with_mismatched_passwords_exits_2_and_writes_nothing(cli, home, monkeypatch):
    answers = iter(["one password", "another one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt, stream=None: next(answers))
    result = cli("keys", "new", "--label", "bot", stdin=TTYInput(), drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 2 and "password" in result.err
    assert not (home / "keys" / "bot.json").exists()


def test_keys_new_without_a_terminal_or_password_source_exits_2(cli):
    result = cli("keys", "new", drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 2
    assert "--password-file" in result.err and "SMARTKEYS_PASSWORD" in result.err


def test_keys_new_refuses_an_existing_label(cli):
    assert cli("keys", "new", "--label", "bot", "--light-kdf").code == 0
    result = cli("keys", "new", "--label", "bot", "--light-kdf")
    assert result.code == 2 and "already exists" in result.err


def test_keys_new_reads_a_password_file(cli, tmp_path):
    (tmp_path / "pw").write_text("from a file\n")
    result = cli("--json", "keys", "new", "--light-kdf", "--password-file", "pw", drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 0, result.err
    from smartkeys.keystore import load_keystore

    assert load_keystore(result.json["file"], "from a file").address == result.json["address"]


def test_keys_list_and_show(cli, owner_keystore, owner_address, agent):
    listed = cli("keys", "list")
    assert listed.code == 0
    assert "LABEL" in listed.out and "owner" in listed.out and owner_address in listed.out
    doc = cli("--json", "keys", "list").json
    assert {(k["label"], k["address"]) for k in doc["keys"]} == {("owner", owner_address), ("agent", agent.address)}

    shown = cli("--json", "keys", "show", "agent").json
    assert shown["address"] == agent.address and shown["kdf"] == "scrypt" and shown["mode"] == "0600"
    assert "ciphertext" not in json.dumps(shown) and agent.export_private_key_hex()[2:] not in json.dumps(shown)
    assert cli("keys", "show", agent.address).code == 0
    missing = cli("keys", "show", "nobody")
    assert missing.code == 2 and "keys list" in missing.err


# --------------------------------------------------------------------------- delegate / status


def test_delegate_then_again_is_a_no_op(cli, chain, owner_address):
    from smartkeys.deployments import account_address

    first = cli("--json", "delegate")
    assert first.code == 0, first.err
    assert first.json["changed"] is True and first.json["implementation"] == account_address()
    assert first.json["transaction_hash"].startswith("0x")
    before = _chain_state(chain, owner_address)
    again = cli("delegate")
    assert again.code == 0 and "nothing to do" in again.out
    assert _chain_state(chain, owner_address) == before


def test_wrong_password_exits_2_and_sends_nothing(cli, chain, owner_address):
    before = _chain_state(chain, owner_address)
    result = cli("delegate", env={"SMARTKEYS_PASSWORD": "wrong"})
    assert result.code == 2 and "wrong password" in result.err
    assert "Traceback" not in result.err
    assert _chain_state(chain, owner_address) == before


def test_status_shows_configuration_with_sources_and_no_secrets(cli, chain, granted, owner_address, agent):
    result = cli("status", env={"SMARTKEYS_RPC_URL": "https://eth.example/v2/APIKEY"})
    assert result.code == 0, result.err
    out = result.out
    assert "SETTING" in out and "SOURCE" in out and "env SMARTKEYS_KEYSTORE" in out
    assert PASSWORD not in out + result.err and "APIKEY" not in out
    assert "smartkeys " in out and owner_address in out and agent.address in out

    doc = cli("--json", "status").json
    assert doc["ok"] is True and doc["command"] == "status"
    assert doc["config"]["keystore"]["source"] == "env SMARTKEYS_KEYSTORE"
    assert doc["chain"]["chain_id"] == chain.chain_id
    assert doc["account"]["address"] == owner_address and doc["account"]["is_smartkeys"] is True
    assert doc["account"]["session_epoch"] == 0
    (session,) = doc["sessions"]
    assert session["session_id"] == granted and session["key"] == agent.address and session["live"] is True
    assert PASSWORD not in json.dumps(doc)


def test_status_needs_no_password(cli, delegated):
    result = cli("--json", "status", drop=("SMARTKEYS_PASSWORD",))
    assert result.code == 0 and result.json["account"]["address"] == delegated


# --------------------------------------------------------------------------- grant


def test_grant_prints_the_session_id_and_the_chain_has_it(cli, chain, delegated, policy_file, agent):
    from smartkeys.policy import policy_from_chain

    result = cli("grant", "--policy", str(policy_file))
    assert result.code == 0, result.err
    assert "granted session 0x" in result.out and "USDC: 100 USDC in total" in result.out
    session_id = result.out.split("granted session ")[1].split()[0]
    assert policy_from_chain(chain.w3, delegated, session_id).key == agent.address


def test_grant_dry_run_sends_nothing(cli, chain, delegated, policy_file):
    before = _chain_state(chain, delegated)
    result = cli("--json", "grant", "--policy", str(policy_file), "--dry-run")
    assert result.code == 0 and result.json["dry_run"] is True
    assert _chain_state(chain, delegated) == before


def test_grant_with_a_bad_policy_names_the_field_and_sends_nothing(cli, chain, delegated, tmp_path, agent):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'key = "{agent.address}"\nvalid_for = "24h"\nallow = []\n[limits]\nmax_usses = 3\n')
    before = _chain_state(chain, delegated)
    result = cli("--json", "grant", "--policy", str(bad))
    assert result.code == 2
    assert "limits.max_usses" in result.err and "did you mean 'max_uses'" in result.err
    assert result.json["error"]["field"] == "limits.max_usses"
    assert _chain_state(chain, delegated) == before


def test_grant_with_a_missing_file_exits_2(cli, delegated):
    result = cli("grant", "--policy", "nope.toml")
    assert result.code == 2 and "nope.toml" in result.err


def test_grant_before_delegating_exits_2_with_the_fix(cli, chain, policy_file, owner_address):
    before = _chain_state(chain, owner_address)
    result = cli("grant", "--policy", str(policy_file))
    assert result.code == 2 and "smartkeys delegate" in result.err
    assert _chain_state(chain, owner_address) == before


# --------------------------------------------------------------------------- agent: send / call


def _agent_env(account):
    return {"SMARTKEYS_ACCOUNT": account}


def test_send_token_in_human_units_directly(cli, chain, granted, delegated, agent, usdc):
    to = chain.accounts[5].address
    result = cli("--json", "send", to, "2.5", "--token", usdc.address, "--key", "agent", "--via", "direct",
                 env=_agent_env(delegated))
    assert result.code == 0, result.err
    doc = result.json
    assert doc["success"] is True and doc["path"] == "direct" and doc["session_id"] == granted
    assert doc["amount"] == "2500000" and doc["amount_text"] == "2.5 USDC"
    assert doc["charges"]["tokens"] == {usdc.address: {"amount": "2500000", "amount_text": "2.5 USDC"}}
    assert usdc.functions.balanceOf(to).call() == 2_500_000


def test_send_token_by_name_as_a_self_bundled_user_op(cli, chain, granted, delegated, agent, usdc, policy_file):
    to = chain.accounts[5].address
    result = cli("send", to, "1 USDC", "--token", "USDC", "--policy", str(policy_file), "--key", "agent",
                 "--via", "user-op", env=_agent_env(delegated))
    assert result.code == 0, result.err
    assert "succeeded via user op" in result.out and "user operation" in result.out
    assert usdc.functions.balanceOf(to).call() == 10**6


@pytest.mark.parametrize("amount, fix", [
    ("2 gwei", "write '2' or '2 USDC'"),            # a native unit is never read as a token amount
    ("1.0000001", "round to 6 decimal places"),     # finer than the token's decimals
    ("-1", "amounts cannot be negative"),
])
def test_send_token_with_a_bad_amount_exits_2_and_sends_nothing(cli, chain, granted, delegated, agent, usdc,
                                                                 amount, fix):
    before = _chain_state(chain, delegated, agent.address)
    result = cli("send", chain.accounts[5].address, amount, "--token", usdc.address, "--key", "agent",
                 "--via", "direct", env=_agent_env(delegated))
    assert result.code == 2, result.err
    assert "'amount'" in result.err and fix in result.err
    assert _chain_state(chain, delegated, agent.address) == before


def test_call_with_a_signature_and_arguments(cli, chain, granted, delegated, agent, usdc):
    to = chain.accounts[5].address
    result = cli("--json", "call", usdc.address, "transfer(address,uint256)", to, "1000", "--key", "agent",
                 "--session", granted, env=_agent_env(delegated))
    assert result.code == 0, result.err
    assert usdc.functions.balanceOf(to).call() == 1000


def test_call_with_the_session_key_from_the_environment(cli, chain, granted, delegated, agent, usdc):
    data = usdc.encode_abi("transfer", [chain.accounts[5].address, 7])
    result = cli("call", usdc.address, "--data", data, env={**_agent_env(delegated),
                                                            "SMARTKEYS_SESSION_KEY": agent.export_private_key_hex()})
    assert result.code == 0, result.err
    assert agent.export_private_key_hex()[2:] not in result.out + result.err
    assert usdc.functions.balanceOf(chain.accounts[5].address).call() == 7


def test_send_over_the_cap_is_refused_with_exit_3_and_nothing_sent(cli, chain, granted, delegated, agent, usdc, home):
    before = _chain_state(chain, delegated, agent.address)
    result = cli("--json", "send", chain.accounts[5].address, "101", "--token", usdc.address, "--key", "agent",
                 "--via", "direct", env=_agent_env(delegated))
    assert result.code == 3
    assert "TokenSpendCapExceeded" in result.err and "nothing was sent" in result.err
    assert "Traceback" not in result.err
    error = result.json["error"]
    assert error["type"] == "TokenSpendCapExceeded" and error["exit_code"] == 3
    assert int(error["fields"]["cap"]) == 100 * 10**6
    assert _chain_state(chain, delegated, agent.address) == before
    journal = (home / "refusals.jsonl").read_text()
    assert "TokenSpendCapExceeded" in journal


def test_call_outside_the_scope_is_refused_with_exit_3(cli, chain, granted, delegated, agent, usdc):
    before = _chain_state(chain, delegated, agent.address)
    result = cli("call", usdc.address, "approve(address,uint256)", chain.accounts[5].address, "1", "--key", "agent",
                 env=_agent_env(delegated))
    assert result.code == 3 and "CallNotAllowed" in result.err
    assert _chain_state(chain, delegated, agent.address) == before


@pytest.mark.parametrize("argv,field", [
    (["send", "0x1234", "1"], "to"),
    (["send", "0x000000000000000000000000000000000000bEEF", "1.0000001", "--token", "USDC"], "--token"),
    (["send", "0x000000000000000000000000000000000000bEEF", "-1"], "amount"),
    (["call", "0x000000000000000000000000000000000000bEEF", "transfer(address,uint256)", "0x12", "1"], "args[0]"),
    (["call", "0x000000000000000000000000000000000000bEEF", "transfer(address,uint256)", "1"], "args"),
    (["call", "0x000000000000000000000000000000000000bEEF", "--data", "0xzz"], "--data"),
    (["call", "0x000000000000000000000000000000000000bEEF", "--value", "1 dollar"], "--value"),
    (["send", "0x000000000000000000000000000000000000bEEF", "1 ether", "--session", "0x12"], "--session"),
    (["send", "0x000000000000000000000000000000000000bEEF", "1000"], "1000 wei"),
    (["call", "0x000000000000000000000000000000000000bEEF", "--value", "1000"], "1000 ether"),
    (["call", "0x000000000000000000000000000000000000bEEF", "--value", "0.5"], "--value"),
])
def test_bad_agent_input_exits_2_naming_the_field_and_sends_nothing(cli, chain, granted, delegated, agent, argv,
                                                                     field):
    before = _chain_state(chain, delegated, agent.address)
    result = cli("--json", *argv, "--key", "agent", env=_agent_env(delegated))
    assert result.code == 2, result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert field in result.err
    assert _chain_state(chain, delegated, agent.address) == before


def test_agent_without_an_account_exits_2(cli, granted, agent):
    result = cli("send", "0x000000000000000000000000000000000000bEEF", "1 ether", "--key", "agent",
                 drop=("SMARTKEYS_KEYSTORE",))
    assert result.code == 2 and "--account" in result.err


# --------------------------------------------------------------------------- revoke


def test_revoke_by_session_id_then_the_key_is_refused(cli, chain, granted, delegated, agent, usdc):
    result = cli("--json", "revoke", granted)
    assert result.code == 0, result.err
    assert result.json["revoked"] == [granted]
    again = cli("revoke", granted)
    assert again.code == 0 and "nothing to revoke" in again.out
    refused = cli("send", chain.accounts[5].address, "1", "--token", usdc.address, "--key", "agent",
                  "--session", granted, env=_agent_env(delegated))
    assert refused.code == 3 and "SessionNotActive" in refused.err


def test_revoke_by_key_address(cli, granted, agent):
    result = cli("--json", "revoke", agent.address)
    assert result.code == 0 and result.json["revoked"] == [granted]


def test_revoke_unknown_session_or_garbage_exits_2(cli, granted):
    assert cli("revoke", "0x" + "11" * 32).code == 2
    result = cli("revoke", "hello")
    assert result.code == 2 and "session id" in result.err


def test_revoke_all_declined_exits_5_and_sends_nothing(cli, chain, granted, delegated):
    before = _chain_state(chain, delegated)
    result = cli("revoke", "--all", stdin=TTYInput("n\n"))
    assert result.code == 5 and "aborted" in result.err and "[y/N]" in result.err
    assert _chain_state(chain, delegated) == before


def test_revoke_all_without_a_terminal_needs_yes(cli, chain, granted, delegated):
    before = _chain_state(chain, delegated)
    result = cli("revoke", "--all")
    assert result.code == 2 and "--yes" in result.err
    assert _chain_state(chain, delegated) == before


def test_revoke_all_confirmed_or_with_yes_moves_the_epoch(cli, granted):
    result = cli("revoke", "--all", stdin=TTYInput("y\n"))
    assert result.code == 0, result.err
    assert cli("--json", "status").json["account"]["session_epoch"] == 1
    assert cli("--json", "revoke", "--all", "--yes").json["revoked"] == []


# --------------------------------------------------------------------------- undelegate


def test_undelegate_declined_then_confirmed(cli, chain, delegated):
    before = _chain_state(chain, delegated)
    declined = cli("undelegate", stdin=TTYInput("no\n"))
    assert declined.code == 5 and _chain_state(chain, delegated) == before
    done = cli("--json", "undelegate", "--yes")
    assert done.code == 0 and done.json["changed"] is True
    assert cli("--json", "status").json["account"]["delegation"] is None
    assert "nothing to do" in cli("undelegate").out


# --------------------------------------------------------------------------- audit / watch


def test_audit_json_and_csv_after_a_use_and_a_refusal(cli, chain, granted, delegated, agent, usdc, tmp_path):
    env = _agent_env(delegated)
    assert cli("send", chain.accounts[5].address, "3", "--token", usdc.address, "--key", "agent", env=env).code == 0
    assert cli("send", chain.accounts[5].address, "500", "--token", usdc.address, "--key", "agent", env=env).code == 3
    result = cli("--json", "audit", "--csv", "audit.csv", "--budget-warn", "0.5")
    assert result.code == 0, result.err
    doc = result.json
    assert doc["account"] == delegated and doc["files"]["csv"] == str(tmp_path / "audit.csv")
    (session,) = doc["sessions"]
    assert session["session_id"] == granted and session["uses"] == 1 and len(session["refusals"]) == 1
    assert "TokenSpendCapExceeded" in (tmp_path / "audit.csv").read_text()
    human = cli("audit")
    assert human.code == 0 and "TIMELINE".lower() in human.out and "refusal" in human.out


def test_audit_bad_threshold_exits_2(cli, delegated):
    result = cli("audit", "--budget-warn", "3")
    assert result.code == 2 and "--budget-warn" in result.err


def test_watch_streams_json_lines(cli, granted):
    result = cli("--json", "watch", "--from-block", "0", "--max-events", "1", "--interval", "0.01")
    assert result.code == 0, result.err
    (line,) = result.out.splitlines()
    assert json.loads(line)["kind"] == "grant"


def _session_lines(out: str, session_id: str) -> list[str]:
    """The table lines of one session: its first line and the continuation lines (blank session cell)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if session_id[:18] in line)
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.strip() or not line[indent:indent + 1].isspace():
            break
        block.append(line)
    return block


def test_status_shows_spend_and_caps_in_human_units(cli, chain, granted, delegated, usdc):
    assert cli("send", chain.accounts[5].address, "3", "--token", usdc.address, "--key", "agent",
               env=_agent_env(delegated)).code == 0
    result = cli("status")
    assert result.code == 0, result.err
    assert "STATUS" in result.out and "SPENT" in result.out and "CAP" in result.out
    first, *more = _session_lines(result.out, granted)
    assert " live " in first and " 1/5 " in first
    block = "\n".join([first, *more])
    assert "gas    0 ETH   0.05 ETH" in block and "USDC   3 USDC  100 USDC" in block
    assert "50000000000000000" not in block and "3000000" not in block  # no raw base units
    (session,) = cli("--json", "status").json["sessions"]
    assets = {a["asset"]: a for a in session["assets"]}
    assert assets[usdc.address]["spent"] == "3000000" and assets["gas"]["cap"] == str(5 * 10**16)
    assert assets[usdc.address]["remaining_text"] == "97 USDC" and assets["gas"]["cap_text"] == "0.05 ETH"


def test_status_shows_a_revoked_session_as_revoked_with_what_it_spent(cli, chain, granted, delegated, usdc):
    assert cli("send", chain.accounts[5].address, "3", "--token", usdc.address, "--key", "agent",
               env=_agent_env(delegated)).code == 0
    assert cli("revoke", granted).code == 0
    result = cli("status")
    assert result.code == 0, result.err
    first, *more = _session_lines(result.out, granted)
    block = "\n".join([first, *more])
    assert " revoked " in first and " 1/5 " in first and " 0/5 " not in block
    assert "USDC   3 USDC  100 USDC" in block
    assert "gas    0 ETH   0.05 ETH" in block  # revoking keeps the counters: known, and 0 on the direct path
    (session,) = cli("--json", "status").json["sessions"]
    assert (session["live"], session["uses"]) == (False, 1)
    assert {a["asset"]: a["spent"] for a in session["assets"]}[usdc.address] == "3000000"
    assert session["status"] == "revoked"  # the JSON says what the text says


def test_audit_and_watch_show_amounts_in_one_unit_per_asset(cli, chain, granted, delegated, usdc):
    assert cli("send", chain.accounts[5].address, "3", "--token", usdc.address, "--key", "agent",
               env=_agent_env(delegated)).code == 0
    assert cli("revoke", granted).code == 0
    human = cli("audit")
    assert human.code == 0, human.err
    first, *more = _session_lines(human.out, granted)
    block = "\n".join([first, *more])
    assert " revoked " in first and " 1/5 " in first
    assert "USDC   3 USDC  100 USDC" in block and "gas    0 ETH   0.05 ETH" in block
    assert "transfer; 3 USDC" in human.out
    assert "gwei" not in human.out and "ether" not in human.out and " wei" not in human.out
    watched = cli("watch", "--from-block", "0", "--max-events", "2", "--interval", "0.01")
    assert watched.code == 0, watched.err
    assert "transfer; 3 USDC" in watched.out.splitlines()[1]


# --------------------------------------------------------------------------- failures in general


def test_unreachable_rpc_exits_4_with_a_hint(base_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    env = {**base_env, "SMARTKEYS_RPC_URL": "http://127.0.0.1:9"}
    code = main(["--json", "status"], stdout=out, stderr=err, env=env, stdin=io.StringIO())
    assert code == 4
    assert "cannot reach the RPC node at http://127.0.0.1:9" in err.getvalue()
    assert json.loads(out.getvalue())["error"]["exit_code"] == 4


def test_chain_id_mismatch_exits_2_before_signing(cli, chain, owner_address):
    before = _chain_state(chain, owner_address)
    result = cli("delegate", "--chain-id", "1")
    assert result.code == 2 and "chain id mismatch" in result.err
    assert _chain_state(chain, owner_address) == before


def test_ctrl_c_exits_5(cli, monkeypatch):
    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr("smartkeys.cli._commands.cmd_status", interrupted)
    result = cli("status")
    assert result.code == 5 and "interrupted" in result.err


def test_unexpected_error_exits_1_and_debug_shows_the_traceback(cli, monkeypatch):
    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr("smartkeys.cli._commands.cmd_status", broken)
    plain = cli("status")
    assert plain.code == 1 and "RuntimeError: boom" in plain.err and "Traceback" not in plain.err
    debug = cli("status", "--debug")
    assert debug.code == 1 and "Traceback" in debug.err


# --------------------------------------------------------------------------- exactly once: --intent, pending


def test_a_named_intent_is_paid_once_and_the_hash_is_printed_before_sending(cli, chain, granted, delegated, agent,
                                                                              usdc, home):
    to = chain.accounts[6].address
    args = ("send", to, "1.5", "--token", usdc.address, "--key", "agent", "--via", "direct", "--intent", "invoice-7")
    first = cli("--json", *args, env=_agent_env(delegated))
    assert first.code == 0, first.err
    assert f"sending transaction {first.json['transaction_hash']}" in first.err  # the hash, before the receipt
    again = cli("--json", *args, env=_agent_env(delegated))
    assert again.code == 3 and again.json["error"]["type"] == "DuplicateIntentError"
    assert "invoice-7" in again.err and first.json["transaction_hash"] in again.err
    assert usdc.functions.balanceOf(to).call() == 1_500_000
    listing = cli("--json", "pending", "--all")
    assert listing.code == 0 and listing.json["unknown"] == 0
    named = [i for i in listing.json["intents"] if not i["intent_id"].startswith("auto:")]  # others: owner txs
    assert [(i["intent_id"], i["status"]) for i in named] == [("invoice-7", "landed")]
    assert all(i["status"] == "landed" and i["acknowledged"] for i in listing.json["intents"])
    assert cli("pending").out.startswith("no unsettled intents")


def test_an_unnamed_send_settled_as_landed_is_refused_again_unless_repeat(cli, chain, granted, delegated, agent, usdc,
                                                                          home):
    """Issue 16: after `pending --settle` found an unknown-outcome send landed, the same unnamed `send` is
    refused (exit 3, naming the landed hash and `--repeat`); `--repeat` pays it again on purpose."""
    from smartkeys.outbox import LANDED, Outbox

    to = chain.accounts[7].address
    args = ("send", to, "0.25", "--token", usdc.address, "--key", "agent", "--via", "direct")
    first = cli("--json", *args, env=_agent_env(delegated))
    assert first.code == 0, first.err
    box = Outbox(home / "outbox.jsonl")
    (sent,) = [i for i in box.read() if i.hash.hex() == first.json["transaction_hash"][2:]]
    box.mark(sent, LANDED, transaction_hash=sent.hash, acknowledged=True, hold=True)  # as settle() records it
    again = cli("--json", *args, env=_agent_env(delegated))
    assert again.code == 3 and again.json["error"]["type"] == "DuplicateIntentError", again.err
    assert first.json["transaction_hash"] in again.err and "--repeat" in again.err
    assert usdc.functions.balanceOf(to).call() == 250_000
    repeat = cli("--json", *args, "--repeat", env=_agent_env(delegated))
    assert repeat.code == 0, repeat.err
    assert usdc.functions.balanceOf(to).call() == 500_000


def test_pending_settle_says_why_a_recorded_payload_is_refused_and_the_fix(cli, chain, home):
    """`pending --settle` on a transaction the node refuses to take again (its sender has no ETH): not web3's
    raw error object, but the intent left unknown and the reason with a fix (issue 16, finding 9)."""
    from eth_account import Account

    from smartkeys.outbox import Intent, Outbox

    key = Account.create()
    signed = key.sign_transaction({"to": key.address, "value": 0, "gas": 21_000, "maxFeePerGas": 10**10,
                                   "maxPriorityFeePerGas": 10**9, "nonce": 0, "chainId": chain.chain_id, "type": 2})
    Outbox(home / "outbox.jsonl").record(Intent(
        intent_id="auto:cli-settle", kind="transaction", hash=bytes(signed.hash), chain_id=chain.chain_id,
        sender=key.address, nonce=0, signer=key.address, account=key.address, via="direct", from_block=0,
        created=0.0, payload={"raw": "0x" + bytes(signed.raw_transaction).hex()}))
    result = cli("--json", "pending", "--settle", "--wait", "0")
    assert result.code == 4, result.out + result.err  # an intent that may still land: exit 4 (documented)
    assert result.json["unknown"] == 1 and result.json["intents"][0]["status"] == "pending"
    assert "refuses the recorded payload" in result.err and "fix:" in result.err, result.json["intents"][0]["note"]
    assert "'code'" not in result.err.split("refuses the recorded payload")[0]
