#!/usr/bin/env python3
"""The paper's image script form:
``python3 scripts/fit_image.py --image PATH --optimizer muon --muon_lr X --lr Y``.

A thin wrapper over ``muon-fit image``; every flag of that command works here too.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.signals.cli import main  # noqa: E402

if __name__ == "__main__":
    main("image")
