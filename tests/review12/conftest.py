"""Review of issue 12: reuse the session fixtures of tests/contracts (imported by module name there)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contracts"))
