#!/usr/bin/env python3
"""The paper's script form for SDFs: ``python3 scripts/fit_sdf.py --mesh PATH --optimizer muon --muon_lr X``.

A thin wrapper over ``muon-sdf fit``; every flag of that command (``--compare``, ``--preset paper``…)
works here too.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.sdf.cli import main  # noqa: E402

if __name__ == "__main__":
    main("fit", sys.argv[1:])
