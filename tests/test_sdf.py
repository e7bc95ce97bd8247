"""SDF task: ground truth, marching cubes, metrics, a tiny fit and the commands' bad-input paths.

Shapes are made here (trimesh primitives), never read from the shared data folder; every number
is checked against a closed form (sphere/box distances, box IoU) or an analytic surface.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

for _module in ("trimesh", "mcubes", "open3d"):
    pytest.importorskip(_module, reason="muon-sdf needs the [sdf] extra (trimesh, PyMCubes, open3d)")

import torch  # noqa: E402
import trimesh  # noqa: E402

from muon_nerf.fields import FieldConfig  # noqa: E402
from muon_nerf.fit.errors import InputError  # noqa: E402
from muon_nerf.fit.loop import FitConfig, fit  # noqa: E402
from muon_nerf.optim import OptimConfig  # noqa: E402
from muon_nerf.runs.checkpoint import make_field  # noqa: E402
from muon_nerf.runs.presets import save_preset  # noqa: E402
from muon_nerf.sdf.cli import main, parse_fit  # noqa: E402
from muon_nerf.sdf.extract import (  # noqa: E402
    check_memory,
    estimate_bytes,
    evaluate_grid,
    extract,
    grid_points,
    marching_cubes,
)
from muon_nerf.sdf.mesh import MeshSdf, NonWatertightWarning, Normalization, load_mesh  # noqa: E402
from muon_nerf.sdf.metrics import MetricConfig, Surface, compare_meshes, iou, surface_metrics  # noqa: E402
from muon_nerf.sdf.render import Camera, render  # noqa: E402
from muon_nerf.sdf.samples import SampleConfig, draw_pool  # noqa: E402
from muon_nerf.sdf.signal import SdfData, SdfSignal, SdfTask  # noqa: E402


def sphere_points(n: int, radius: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points on an analytic sphere and their normals."""
    v = np.random.default_rng(seed).normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v * radius, v


def box_sdf(p: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Closed-form signed distance of an axis-aligned box centred at the origin."""
    q = np.abs(p) - half
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


@pytest.fixture
def sphere_file(tmp_path: Path) -> Path:
    path = tmp_path / "sphere.ply"
    trimesh.creation.icosphere(subdivisions=4, radius=0.5).export(path)
    return path


def test_sphere_sdf_matches_closed_form():
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    pts = np.random.default_rng(0).uniform(-1, 1, (4000, 3)).astype(np.float32)
    sdf = MeshSdf(mesh, nsamples=3).signed_distance(pts)
    # The faceted sphere's chords sit at most r(1 - cos θ) ≈ 6e-4 inside the true sphere.
    np.testing.assert_allclose(sdf, np.linalg.norm(pts, axis=1) - 0.5, atol=1.5e-3)


def test_box_sdf_matches_closed_form():
    half = np.array([0.3, 0.5, 0.2])
    mesh = trimesh.creation.box(extents=2 * half)
    pts = np.random.default_rng(1).uniform(-1, 1, (4000, 3)).astype(np.float32)
    np.testing.assert_allclose(MeshSdf(mesh).signed_distance(pts), box_sdf(pts, half), atol=1e-5)


def test_normalization_round_trip(sphere_file: Path):
    mesh = load_mesh(sphere_file)
    mesh.apply_transform(np.diag([3.0, 1.0, 2.0, 1.0]))
    mesh.apply_translation([5.0, -2.0, 1.0])
    norm = Normalization.fit(mesh, margin=0.1)
    unit = norm.to_unit(mesh.vertices)
    assert np.abs(unit).max() == pytest.approx(0.9)
    np.testing.assert_allclose(norm.to_input(unit), mesh.vertices, atol=1e-12)
    again = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_allclose(again.to_input(unit), mesh.vertices, atol=1e-12)


def test_marching_cubes_of_analytic_sphere_is_close():
    res, radius = 64, 0.6
    volume = np.linalg.norm(grid_points(res), axis=1).reshape(res, res, res) - radius
    mesh = marching_cubes(volume.astype(np.float32))
    assert mesh.is_watertight and mesh.volume > 0  # faces point outwards
    # Grid spacing is 2/63 ≈ 0.032; linear interpolation of a smooth SDF is far closer than that.
    radial = np.linalg.norm(mesh.vertices, axis=1) - radius
    assert np.abs(radial).max() < 3e-3
    fine = trimesh.creation.icosphere(subdivisions=6, radius=radius)  # chords within 2e-5 of the sphere
    m = surface_metrics(Surface(mesh, 20_000), Surface(fine, 20_000, seed=1), threshold=0.005)
    samples = Surface(mesh, 20_000).points
    exact_l1 = np.abs(np.linalg.norm(samples, axis=1) - radius).mean()  # one direction, closed form
    assert m["chamfer_l1_x1e3"] == pytest.approx(exact_l1 * 1e3, rel=0.5)
    assert m["chamfer_l1_x1e3"] < 1.5
    assert m["normal_consistency"] > 0.995
    assert m["fscore"] == 1.0


def test_iou_of_mesh_with_itself_and_shifted_box():
    a = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    b = a.copy()
    b.apply_translation([0.2, 0, 0])
    cfg = MetricConfig(surface_points=2000)
    same = compare_meshes(a, a.copy(), cfg, iou_resolutions=(48,))
    assert same["iou_48"] == 1.0
    assert same["chamfer_l1_x1e3"] < 1e-3 and same["normal_consistency"] == pytest.approx(1.0)
    # margin 0.5: the reference spans [-0.5, 0.5] (scale 1), so the shifted box stays in the grid.
    shifted = compare_meshes(b, a, cfg, iou_resolutions=(64,), margin=0.5)
    # Side faces overlap along 0.8 of their length; the end faces are 0.2 apart.
    assert 20 < shifted["chamfer_l1_x1e3"] < 200
    # Exact IoU of unit boxes shifted by d: (1 - d) / (1 + d); the grid quantizes the faces.
    assert shifted["iou_64"] == pytest.approx(0.8 / 1.2, abs=0.03)
    assert iou(np.zeros(4, bool), np.zeros(4, bool)) == 1.0


def test_pool_is_seeded_and_signed():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    cfg = SampleConfig(num_surface=500, num_near=1000, num_uniform=500)
    a, b = (draw_pool(MeshSdf(mesh), cfg, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.points, b.points)
    assert len(a.points) == 2000 and (a.sdf[a.kind == 0] == 0).all()
    exact = np.linalg.norm(a.points, axis=1) - 0.5
    np.testing.assert_allclose(a.sdf, exact, atol=5e-3)


def tiny_signal(path: Path) -> SdfSignal:
    data = SdfData(
        mesh=path,
        pool=SampleConfig(num_surface=4000, num_near=8000, num_uniform=2000),
        eval_resolution=32,
        eval_volume_points=5000,
        metrics=MetricConfig(surface_points=5000),
        render_size=48,
    )
    return SdfSignal.from_config(data)


def test_tiny_fit_on_sphere_reaches_small_chamfer(sphere_file: Path):
    signal = tiny_signal(sphere_file)
    cfg = FieldConfig(arch="relu", num_layers=3, width=64)
    field = make_field(cfg, signal.in_dim, signal.out_dim, seed=0, device="cpu")
    opt = OptimConfig(lr=3e-3, muon_lr=0.05).build(field, "muon")
    result = fit(signal, field, opt, FitConfig(steps=300, batch_size=1024, eval_every=300, progress=False))
    # Normalized radius is 0.9; a 32³ grid of a blurry fit still lands within ~1 % of it.
    assert result.metrics["chamfer_l1_x1e3"] < 15
    assert result.metrics["iou_32"] > 0.95
    assert result.metrics["normal_consistency"] > 0.95


def test_non_watertight_mesh_warns_and_keeps_sign():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    mesh.update_faces(np.arange(len(mesh.faces)) > 3)  # punch a small hole
    with pytest.warns(NonWatertightWarning, match="not watertight"):
        target = MeshSdf(mesh, nsamples=5)
    inside = target.occupancy(np.array([[0, 0, 0], [0.1, 0.2, 0.0], [0.8, 0, 0]], np.float32))
    assert inside.tolist() == [True, True, False]


def test_bad_inputs(tmp_path: Path):
    with pytest.raises(InputError, match="mesh not found"):
        load_mesh(tmp_path / "missing.ply")
    empty = tmp_path / "empty.obj"
    empty.write_text("# nothing here\n")
    with pytest.raises(InputError, match="no triangles"):
        load_mesh(empty)
    flat = tmp_path / "flat.obj"
    flat.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    with pytest.raises(InputError, match="(degenerate|no triangles)"):
        load_mesh(flat)
    with pytest.raises(InputError, match="odd"):
        MeshSdf(trimesh.creation.box(), nsamples=2)


def test_resolution_that_does_not_fit_is_refused_with_estimate():
    need = estimate_bytes(512, 1 << 16)
    assert 512**3 * 4 < need < 2 * 2**30  # the volume dominates: about 0.6 GiB at 512³
    with pytest.raises(InputError, match=r"--resolution 4096 needs about \d+\.\d+ GiB"):
        check_memory(4096, 1 << 16, limit=8 * 2**30)
    field = torch.nn.Linear(3, 1)
    with pytest.raises(InputError, match="needs about"):
        extract(field, 256, memory_limit=1 << 20)


def test_chunked_grid_evaluation_equals_direct():
    res = 12
    fn = lambda x: (x**2).sum(-1, keepdim=True) - 0.3  # noqa: E731
    direct = fn(torch.from_numpy(grid_points(res))).reshape(res, res, res).numpy()
    np.testing.assert_allclose(evaluate_grid(fn, res, chunk=100), direct, rtol=1e-6)


def test_render_draws_the_mesh_and_leaves_background_white():
    image = render(trimesh.creation.icosphere(subdivisions=2, radius=0.5), size=40)
    assert image.shape == (40, 40, 3)
    assert (image[0, 0] == 1).all() and (image[20, 20] < 1).any()
    box = trimesh.creation.box(extents=[0.2, 0.2, 0.2])
    box.apply_translation([0.5, 0.3, 0])  # right of and above the centre, seen from +z
    rows, cols = np.nonzero(render(box, 40, Camera(azimuth=0, elevation=0)).min(-1) < 1)
    assert rows.mean() < 20 and cols.mean() > 20


def test_fit_extract_eval_commands(sphere_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    common = [
        "--num-surface",
        "2000",
        "--num-near",
        "4000",
        "--num-uniform",
        "1000",
        "--eval-resolution",
        "24",
    ]
    common += ["--eval-volume-points", "2000", "--surface-points", "2000", "--render-size", "32"]
    common += ["--steps", "20", "--batch-size", "512", "--width", "32", "--no-progress"]
    main(
        "fit", ["--mesh", str(sphere_file), "--compare", "--output-dir", str(out), "--run-name", "r", *common]
    )
    run = out / "sdf" / "r"
    for name in ("adam", "muon"):
        for f in ("mesh.ply", "mesh.obj", "field.pt", "metrics.json", "render.png", "normalization.json"):
            assert (run / name / f).is_file(), f"{name}/{f}"
    assert (run / "compare.png").is_file()
    main(
        "extract",
        ["--run", str(run), "--resolution", "40", "--iou-resolutions", "32", "--surface-points", "2000"],
    )
    report = json.loads((run / "muon" / "extract_40.json").read_text())
    assert report["resolution"] == 40 and "iou_32" in report["metrics"]
    mesh = trimesh.load(run / "muon" / "mesh_40.ply")
    assert np.abs(mesh.vertices).max() < 1.0  # back in the input's coordinates (radius 0.5)
    main("eval", ["--mesh-a", str(sphere_file), "--mesh-b", str(sphere_file), "--iou-resolutions", "32"])
    assert "iou_32" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main("extract", ["--run", str(run), "--resolution", "600", "--max-memory-gb", "0.01"])
    assert err.value.code == 2
    assert "needs about" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main("fit", ["--steps", "1"])
    assert "--mesh is required" in capsys.readouterr().err


def test_output_files_are_never_replaced_unasked(sphere_file: Path, tmp_path: Path, capsys):
    """Issue 27: ``muon-sdf eval --output FILE`` and ``muon-sdf extract`` (its meshes, render and
    summary) refuse, before any work, a file that exists, in one line naming it, unless
    --overwrite; what they write appears whole (atomically)."""

    def refused(*args: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main(*args)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    output = tmp_path / "metrics.json"
    output.write_text("user's own metrics")
    flags = ["--mesh-a", str(sphere_file), "--mesh-b", str(sphere_file), "--iou-resolutions", "8"]
    flags += ["--surface-points", "200", "--ray-votes", "1", "--output", str(output)]
    assert f"{output} already exists" in refused("eval", flags)
    assert output.read_text() == "user's own metrics"
    main("eval", [*flags, "--overwrite"])
    assert json.loads(output.read_text())["metrics"]["iou_8"] > 0.9

    sizes = ["--num-surface", "200", "--num-near", "200", "--num-uniform", "200", "--eval-resolution", "8"]
    sizes += ["--eval-volume-points", "0", "--surface-points", "200", "--render-size", "16", "--width", "8"]
    main(
        "fit",
        ["--mesh", str(sphere_file), *sizes, "--steps", "2", "--no-progress", "--output-dir", str(tmp_path)],
    )
    run = next((tmp_path / "sdf").iterdir())
    extract = ["--run", str(run), "--resolution", "12", "--no-score"]
    main("extract", extract)
    before = {p.name: p.read_bytes() for p in run.glob("*_12.*")}
    assert sorted(before) == ["extract_12.json", "mesh_12.obj", "mesh_12.ply", "render_12.png"]
    (run / "mesh_12.obj").write_text("edited by hand")
    assert "mesh_12" in refused("extract", extract)
    assert (run / "mesh_12.obj").read_text() == "edited by hand"
    main("extract", [*extract, "--overwrite"])
    assert (run / "mesh_12.obj").read_bytes() == before["mesh_12.obj"]


def test_paper_profile_keeps_user_flags():
    cfg = parse_fit(["--profile", "paper", "--mesh", "x.ply", "--steps", "7"])
    assert cfg.field.width == 256 and cfg.field.num_layers == 4 and cfg.fit.steps == 7
    assert cfg.field.encoding.positional.pe_frequencies == 8 and cfg.data.eval_resolution == 256
    # the cpu profile is the default config (its lrs the tuned ones, runs/tuned.py)
    assert parse_fit(["--profile", "cpu"]) == parse_fit([])
    assert dataclasses.replace(parse_fit([]), optim=SdfTask().optim) == SdfTask()
    assert parse_fit(["--muon_lr", "0.02"]).optim.muon_lr == 0.02
    assert sorted(SdfTask.profiles()) == ["cpu", "paper"]
    with pytest.raises(InputError, match="--profile must be one of: cpu, paper"):
        parse_fit(["--profile", "gpu"])


def test_preset_is_a_json_file_of_the_whole_config(tmp_path: Path):
    """``--preset FILE`` means what it means for every command: a saved config (flags still win)."""
    cfg = parse_fit(["--profile", "paper", "--mesh", "bunny.ply", "--arch", "siren", "--muon-lr", "0.03"])
    save_preset(tmp_path / "p.json", "sdf", cfg, "muon")
    loaded = parse_fit(["--preset", str(tmp_path / "p.json"), "--steps", "9"])
    assert loaded.field == cfg.field and loaded.data == cfg.data and loaded.optim == cfg.optim
    assert loaded.fit.steps == 9 and loaded.fit.batch_size == cfg.fit.batch_size
    with pytest.raises(InputError, match="preset not found"):
        parse_fit(["--preset", "paper"])  # a profile name is not a preset file
    with pytest.raises(InputError, match="not both"):
        parse_fit(["--preset", str(tmp_path / "p.json"), "--profile", "paper"])
    save_preset(tmp_path / "image.json", "image", cfg, "muon")
    with pytest.raises(InputError, match="for task 'image', not 'sdf'"):
        parse_fit(["--preset", str(tmp_path / "image.json")])


def test_no_warning_for_watertight_mesh():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MeshSdf(trimesh.creation.icosphere(subdivisions=2))


def test_training_set_is_the_sample_pool_and_evaluation_points_are_separate(sphere_file: Path):
    """What the field is fitted to (benchmarks divide its size by the parameter count) is the
    pool; the evaluation points (grid + volume) are never trained on."""
    signal = tiny_signal(sphere_file)
    assert signal.train.coords.shape == (14000, 3) and signal.train.target.shape == (14000, 1)
    assert signal.in_dim == 3 and signal.out_dim == 1
    assert signal.coords.shape == (32**3 + 5000, 3)
    exact = signal.train.coords.norm(dim=1, keepdim=True) - 0.9  # the normalized sphere's SDF
    torch.testing.assert_close(signal.train.target, exact, atol=5e-3, rtol=0)
    batch = signal.sample(100, torch.Generator().manual_seed(0))
    pool = {tuple(p) for p in signal.train.coords.tolist()}
    assert batch.coords.shape == (100, 3) and all(tuple(p) in pool for p in batch.coords.tolist())
    assert signal.sample(None, torch.Generator()).target is signal.train.target


def test_signal_pickles_for_sweep_workers(sphere_file: Path):
    """``muon-sweep sdf`` ships the signal to Ray workers: Open3D's scene is rebuilt on load."""
    signal = tiny_signal(sphere_file)
    copy = pickle.loads(pickle.dumps(signal))
    pts = signal.reference_surface.points[:50] * 1.1
    np.testing.assert_allclose(
        copy.reference_surface.closest(pts)[0], signal.reference_surface.closest(pts)[0]
    )
    torch.testing.assert_close(copy.train.target, signal.train.target)


def test_clamp_keeps_deepsdf_error_and_never_stalls_a_prediction():
    """Where DeepSDF's clipped error has a gradient, ours is the same; where a prediction beyond
    ±δ faces a target inside (DeepSDF: no gradient), ours pulls it back."""
    from muon_nerf.sdf.signal import one_sided_clamp

    delta = 0.1
    target = torch.tensor([0.5, 0.5, 0.5, 0.05, 0.05, -0.5, -0.5])
    pred = torch.tensor([0.7, 0.05, -0.3, 0.02, 0.4, -0.9, 0.3], requires_grad=True)
    p, t = one_sided_clamp(pred, target, delta)
    deepsdf = pred.detach().clamp(-delta, delta) - target.clamp(-delta, delta)
    ours = (p - t).detach()
    # beyond ±δ on the saturated target's side: no error, as DeepSDF; prediction inside ±δ: DeepSDF's
    assert ours[0] == deepsdf[0] == 0 and ours[5] == deepsdf[5] == 0
    assert ours[[1, 3]].tolist() == pytest.approx(deepsdf[[1, 3]].tolist())
    # beyond ±δ on the wrong side or against a target inside: the whole error, not the clipped one
    assert ours[[2, 4, 6]].tolist() == pytest.approx([-0.4, 0.35, 0.4])
    (p - t).abs().sum().backward()
    # every prediction that is wrong has a gradient (index 4: 0.4 against 0.05; index 2: -0.3
    # against a clipped 0.5), only the two that are right on a saturated side have none
    assert pred.grad.tolist() == [0.0, -1.0, -1.0, -1.0, 1.0, 0.0, 1.0]


def _ply(vertices: np.ndarray, faces: np.ndarray, declared_faces: int | None = None) -> bytes:
    """A binary little-endian PLY whose header may declare another face count."""
    count = len(faces) if declared_faces is None else declared_faces
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {count}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    faces_bytes = b"".join(np.array([3], "u1").tobytes() + np.asarray(f, "<i4").tobytes() for f in faces)
    return header.encode() + np.asarray(vertices, "<f4").tobytes() + faces_bytes


def test_meshes_are_checked_as_the_file_holds_them(tmp_path: Path):
    """Issue 27: a NaN vertex is refused before trimesh's merge could drop it, and a PLY whose
    header declares more than it holds (10⁹ faces, one present) is refused as truncated."""
    ico = trimesh.creation.icosphere(subdivisions=1)
    good = tmp_path / "good.ply"
    good.write_bytes(_ply(ico.vertices, ico.faces))
    assert len(load_mesh(good).faces) == len(ico.faces)  # the writer is right: same mesh back
    vertices = ico.vertices.copy()
    vertices[3] = [np.nan, 0, np.inf]
    nan = tmp_path / "nan.ply"
    nan.write_bytes(_ply(vertices, ico.faces))
    with pytest.raises(
        InputError, match=r"1 vertices with non-finite \(NaN/inf\) coordinates, the first at index 3"
    ):
        load_mesh(nan)
    lying = tmp_path / "lying.ply"
    lying.write_bytes(_ply(ico.vertices, ico.faces[:1], declared_faces=10**9))
    with pytest.raises(InputError, match="is truncated: its header declares 42 vertex, 1000000000 face"):
        load_mesh(lying)
    ascii_ply = tmp_path / "ascii.ply"
    ico.export(ascii_ply, encoding="ascii")
    text = ascii_ply.read_text()
    ascii_ply.write_text(text.replace(f"element face {len(ico.faces)}", "element face 1000"))
    with pytest.raises(InputError, match="is truncated"):
        load_mesh(ascii_ply)


def test_extract_reads_one_consistent_run_and_refuses_what_is_not_one(
    sphere_file: Path, tmp_path: Path, capsys, monkeypatch
):
    """Issue 27: ``muon-sdf extract`` refuses, in one line and writing nothing, a --compare run
    missing one field, a normalization.json that is not finite positive scale + finite 3-vector
    center, a --max-memory-gb that is not finite, positive and available, and a run whose field.pt
    was replaced while it extracted (``muon-sdf fit --overwrite``): never a mesh of the old field
    beside the new one."""
    import shutil

    import muon_nerf.sdf.cli as sdf_cli

    def refused(*args: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main(*args)
        err = capsys.readouterr().err  # an empty mesh's warning may come first
        assert (
            stop.value.code == 2 and err.count("error: ") == 1 and err.splitlines()[-1].startswith("error: ")
        )
        return err.splitlines()[-1]

    sizes = ["--num-surface", "200", "--num-near", "200", "--num-uniform", "200", "--eval-resolution", "8"]
    sizes += ["--eval-volume-points", "0", "--surface-points", "200", "--render-size", "16", "--width", "8"]
    fit_args = [
        "--mesh",
        str(sphere_file),
        *sizes,
        "--steps",
        "2",
        "--no-progress",
        "--output-dir",
        str(tmp_path),
    ]
    main("fit", [*fit_args, "--run-name", "r"])
    run = tmp_path / "sdf/r"
    flags = ["--resolution", "12", "--no-score"]

    cmp = tmp_path / "cmp"
    shutil.copytree(run, cmp / "adam")
    (cmp / "muon").mkdir()
    assert f"missing {cmp / 'muon/field.pt'}" in refused("extract", ["--run", str(cmp), *flags])
    assert not list((cmp / "adam").glob("mesh_12.*"))

    norm = run / "normalization.json"
    saved = json.loads(norm.read_text())
    for edit, message in (
        ({**saved, "scale": 0}, "scale must be a finite number > 0, got 0"),
        ({**saved, "scale": float("inf")}, "scale must be a finite number > 0"),
        ({"scale": 1.0}, "center must be a list of 3 numbers, got None"),
        ({**saved, "center": [0, float("nan"), 0]}, "center must be finite"),
        ([1, 2, 3], "must be a JSON object with center and scale, got list"),
    ):
        norm.write_text(json.dumps(edit))
        assert message in refused("extract", ["--run", str(run), *flags])
    norm.write_text(json.dumps(saved))

    assert "--max-memory-gb must be a finite number of GiB > 0, got inf" in refused(
        "extract", ["--run", str(run), *flags, "--max-memory-gb", "inf"]
    )
    assert "--max-memory-gb 100000 is more than the" in refused(
        "extract", ["--run", str(run), "--resolution", "4096", "--max-memory-gb", "100000"]
    )

    main("fit", [*fit_args, "--run-name", "other", "--seed", "1"])
    extract = sdf_cli.extract

    def racing(*args, **kwargs):  # `muon-sdf fit --overwrite` replaces the run meanwhile
        result = extract(*args, **kwargs)
        shutil.copy2(tmp_path / "sdf/other/field.pt", run / "field.pt")
        return result

    monkeypatch.setattr(sdf_cli, "extract", racing)
    assert "field.pt changed during the extraction" in refused("extract", ["--run", str(run), *flags])
    assert not list(run.glob("*_12.*"))
    monkeypatch.undo()
    main("extract", ["--run", str(run), *flags])
    assert (run / "mesh_12.ply").is_file()
