"""Review 1314 (issue 13 kind 4, rough edges): `demo --json` is still the transcript, not structured."""
import io
import json

from smartkeys.cli import main


def test_demo_json_is_structured(tmp_path):
    """Expected (issue 13.4: "`demo --json` is the transcript, not structured"): the JSON carries the demo's
    facts as data (the session, its uses, the refusals with error names and values, the audit), like every other
    report. Happened: `{"ok": true, "command": "demo", "transcript": [<the text lines>]}` and nothing else, so
    a script must parse English; tests/cli/test_ui.py even pins that shape."""
    out = io.StringIO()
    assert main(["--json", "demo"], stdout=out, stderr=io.StringIO(), env={"SMARTKEYS_HOME": str(tmp_path)}) == 0
    doc = json.loads(out.getvalue())
    data = set(doc) - {"ok", "command", "transcript"}
    assert data, f"demo --json holds only the text transcript: keys {sorted(doc)}"
