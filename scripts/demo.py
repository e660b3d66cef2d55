"""`make demo`: the main job on this machine.

Today that is `worldland doctor` on this host. A host without a GPU (like a CI runner) is
expected to be NOT READY, so exit status 1 from doctor is part of a successful demo; anything
else (a crash, a usage error) fails it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def main() -> int:
    print("$ worldland doctor", flush=True)
    rc = subprocess.call([str(BIN / "worldland"), "doctor"])
    if rc not in (0, 1):
        print(f"demo failed: worldland doctor exited {rc}", file=sys.stderr)
        return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
