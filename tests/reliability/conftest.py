"""The fault-injection suite reuses the daemon fixtures of tests/appliance (FakeRadar, _daemon)."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for p in (_HERE, _HERE.parent / "appliance"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
