"""``muon-sdf``'s entry point: refuses in one line when the ``[sdf]`` extra is missing, before the
CLI (which imports trimesh and Open3D) is loaded."""

from __future__ import annotations

from muon_nerf.fit.errors import run_cli
from muon_nerf.tasks import EXTRA_MODULES, require_extra


def entrypoint() -> None:
    run_cli(lambda: require_extra("sdf", EXTRA_MODULES["sdf"], "muon-sdf"))
    from muon_nerf.sdf.cli import entrypoint as sdf_cli

    sdf_cli()
