"""The package's layers import one way: fields → optim → fit → runs → front ends (issue 11).

Each layer is imported in a fresh interpreter whose ``sys.meta_path`` refuses every higher layer
of the package and the front ends' heavy extras (nerfstudio, Open3D, Ray, trimesh, PyMCubes,
tiny-cuda-nn), so an upward or heavy import fails the test instead of passing silently.
``muon-fit image`` runs end to end the same way, and ``scripts/import_graph.py`` (the graph from
the source alone) reports no upward edge and no cycle.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_test_image

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "muon_nerf"
HEAVY = ("nerfstudio", "open3d", "ray", "trimesh", "mcubes", "tinycudann")
"""What the front ends' extras bring ([nerf], [sdf], [sweep]) and tiny-cuda-nn."""
FRONT_ENDS = ("muon_nerf.sdf", "muon_nerf.nerf", "muon_nerf.sweep", "muon_nerf.method_configs")
LAYERS: dict[str, tuple[str, ...]] = {
    "fields": ("muon_nerf.fields",),
    "optim": ("muon_nerf.optim",),
    "fit": ("muon_nerf.fit",),
    "runs": ("muon_nerf.runs",),
    "signals": ("muon_nerf.signals", "muon_nerf.tasks"),  # the core CLI (muon-fit) and its registry
}
"""Bottom to top; everything above ``signals`` is a front end with its own extra."""

BLOCKER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"blocked by the layering test: {{name}}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def modules_of(prefix: str) -> list[str]:
    """``prefix`` and every module below it, found on disk (nothing is imported here)."""
    path = ROOT / Path(*prefix.split("."))
    if path.with_suffix(".py").is_file():
        return [prefix]
    return sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in path.rglob("*.py")
    )


def run_blocked(blocked: tuple[str, ...], body: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    code = BLOCKER.format(blocked=blocked) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)


def higher_than(layer: str) -> tuple[str, ...]:
    names = list(LAYERS)
    above = [prefix for name in names[names.index(layer) + 1 :] for prefix in LAYERS[name]]
    return (*above, *FRONT_ENDS, *HEAVY)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_each_layer_imports_with_every_higher_layer_and_extra_blocked(layer):
    modules = [m for prefix in LAYERS[layer] for m in modules_of(prefix)]
    assert modules, layer
    body = f"""
    import importlib
    for name in {modules!r}:
        importlib.import_module(name)
    print("OK", len({modules!r}))
    """
    out = run_blocked(higher_than(layer), body)
    assert out.returncode == 0, f"{layer}: {out.stderr[-3000:]}"
    assert f"OK {len(modules)}" in out.stdout


def test_the_blocker_blocks():
    """The check can fail: a front end does not import with its extra blocked, and the optimizer
    layer does not import with the field layer blocked."""
    out = run_blocked(HEAVY, "import muon_nerf.sdf.signal")
    assert out.returncode != 0 and "blocked by the layering test: trimesh" in out.stderr
    out = run_blocked(("muon_nerf.fields",), "import muon_nerf.optim")
    assert out.returncode != 0 and "blocked by the layering test: muon_nerf.fields" in out.stderr


def test_import_graph_has_no_upward_edges_or_cycles():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "upward edges or cycles: 0" in out.stdout


def test_muon_fit_image_runs_without_nerfstudio_open3d_and_ray(tmp_path):
    """The core install's command: fits, writes its outputs, and never imports an extra."""
    png = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(16, 16) * 255 + 0.5).astype(np.uint8)).save(png)
    args = ["image", "--image", str(png), "--steps", "4", "--width", "8", "--num-layers", "3"]
    args += [
        "--eval-every",
        "2",
        "--rank-every",
        "2",
        "--no-progress",
        "--output-dir",
        "out",
        "--run-name",
        "r",
    ]
    body = f"""
    import sys
    from muon_nerf.signals.cli import entrypoint
    sys.argv = ["muon-fit", *{args!r}]
    entrypoint()
    heavy = [m for m in sys.modules if m.split(".")[0] in {HEAVY!r}]
    print("HEAVY", heavy)
    """
    out = run_blocked(HEAVY, body, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout
    run = tmp_path / "out" / "image" / "r"
    for name in ("metrics.json", "reconstruction.png", "curves.png", "ranks.png", "field.pt"):
        assert (run / name).stat().st_size > 0, name


@pytest.mark.parametrize(
    "entry, argv, extra",
    [
        ("muon_nerf.sweep.cli", ["muon-sweep", "image", "--steps", "1"], "sweep"),
        ("muon_nerf.sweep.cli", ["muon-sweep", "sdf", "--steps", "1"], "sdf"),
        ("muon_nerf.sdf.entry", ["muon-sdf", "fit", "--steps", "1"], "sdf"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it_in_one_line(entry, argv, extra):
    body = f"""
    import sys
    from {entry} import entrypoint
    sys.argv = {argv!r}
    entrypoint()
    """
    out = run_blocked(HEAVY, body)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"[{extra}] extra" in lines[0], out.stderr
    assert f"pip install 'muon-nerf[{extra}]'" in lines[0]


STATE = textwrap.dedent(
    """
    import json, logging, os, signal, sys, warnings
    import numpy as np
    import torch

    def state():
        denormal = torch.tensor([1e-39], dtype=torch.float32) * torch.tensor([1.0])
        mpl = sys.modules.get("matplotlib")
        return {
            "flush_denormal": bool(denormal.item() == 0.0),
            "warnings_filters": repr(warnings.filters),
            "matmul_precision": torch.get_float32_matmul_precision(),
            "tf32": (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "default_dtype": str(torch.get_default_dtype()),
            "grad_enabled": torch.is_grad_enabled(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "threads": torch.get_num_threads(),
            "torch_rng": torch.random.get_rng_state().sum().item(),
            "numpy_rng": int(np.random.get_state()[1].sum()),
            "numpy_err": repr(sorted(np.geterr().items())),
            "signals": repr([signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]),
            "environ": repr(sorted(os.environ.items())),
            "logging": repr((logging.root.level, logging.root.handlers)),
            "matplotlib_backend": dict.__getitem__(mpl.rcParams, "backend") if mpl else None,
        }
    """
)


def _global_state_change(modules: list[str], then: str = "") -> dict:
    """What importing ``modules`` (and running ``then``) changes in the process's global state,
    measured after every third-party module those imports pull in was already imported, so
    only our own modules' effects count."""
    load = f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
    listed = subprocess.run(
        [sys.executable, "-c", load + "import json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    others = [m for m in json.loads(listed.stdout.splitlines()[-1]) if not m.startswith("muon_nerf")]
    body = STATE + textwrap.dedent(
        f"""
        import importlib
        for name in {others!r}:
            try:
                importlib.import_module(name)
            except Exception:
                pass
        before = state()
        """
    )
    report = "a = state()\nprint(json.dumps({k: [v, a[k]] for k, v in before.items() if v != a[k]}))"
    body += load + then + "\n" + report + "\n"
    out = subprocess.run(
        [sys.executable, "-"], input=body, capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_the_package_leaves_global_state_alone():
    """Importing any of our modules (the nerfstudio plugin's entry point in every ``ns-*``
    process, nerfacto's runs included, or the API in a notebook) changes no process-wide
    setting: flush-to-zero, warning filters, matmul precision, RNGs, signal handlers, the
    matplotlib backend… Commands set what they need when they start (``run_cli``)."""
    pytest.importorskip("nerfstudio")
    modules = [m for m in modules_of("muon_nerf") if not m.endswith(("__main__", "hashgrid_tcnn"))]
    assert _global_state_change(modules) == {}


def test_the_global_state_check_sees_a_command_start():
    """The check can fail: a command's start (``run_cli``) flushes denormals to zero."""
    change = _global_state_change(
        ["muon_nerf.fit.errors"], "from muon_nerf.fit.errors import run_cli\nrun_cli(lambda: None)"
    )
    assert change["flush_denormal"] == [False, True], change
