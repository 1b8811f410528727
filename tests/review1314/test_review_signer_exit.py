"""Review 1314 (issue 14 kind 4, signers): a remote signer's typed refusal exits as an "unexpected error"."""
import pytest

from smartkeys.cli._context import exit_code_for
from smartkeys.errors import SignerResponseError, SignerUnsupportedError


@pytest.mark.parametrize("error_class, message", [
    # what JsonRpcSigner raises when Clef's user declines (JSON-RPC error "Request denied"), or when the
    # signer answers for another account (reproduced by hand: a LoopbackSigner(lie_with=...) behind
    # `smartkeys --signer-url URL grant --policy policy.toml` exited 1 with "run with --debug for the traceback")
    (SignerResponseError, "account_signTransaction failed: JSON-RPC error -32000: Request denied"),
    (SignerUnsupportedError, "no JSON-RPC method signs a raw hash"),
])
def test_signer_errors_have_a_documented_exit_code(error_class, message):
    """Expected: a typed signer error gets a documented exit code (README: 2 bad input or configuration, or 5 for
    a declined confirmation), not 1, which the README reserves for unexpected errors and which tells the user
    to rerun with --debug for a traceback. Happened: exit_code_for(...) == 1 for every SignerError."""
    err = error_class(message, operation="transaction", signer="JsonRpcSigner(0xf39F…, api='clef')",
                      fix="see the signer's log (it refused or failed)")
    assert exit_code_for(err) != 1
