"""``scripts/bench_nerf.py`` end to end at toy size (``--dry-run``), and how it picks its scene."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("nerfstudio", reason="bench_nerf.py needs the [nerf] extra")

from muon_nerf.fit.errors import InputError  # noqa: E402
from muon_nerf.nerf.captures import capture_subset_selection, write_capture_scene  # noqa: E402
from muon_nerf.nerf.config import method_lrs  # noqa: E402
from muon_nerf.nerf.data import subset_selection, write_blender_subset, write_sphere_scene  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUN_KEYS = {"arch", "optimizer", "seed", "test_psnr", "test_ssim", "iterations", "seconds"}
"""What every run record carries (issue 13's list)."""


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_nerf", ROOT / "scripts/bench_nerf.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _strict_json(path: Path) -> dict:
    def refuse(constant: str):
        raise ValueError(f"{path} holds {constant}: not strict JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_bench_nerf_dry_run_writes_table_json_and_figure(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench_nerf.py"), "--dry-run", "--archs", "relu_pe",
         "--seeds", "0", "1", "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| arch | optimizer | lrs (Adam / Muon) | seeds | test PSNR (dB) |" in proc.stdout
    # each row names the lrs its runs trained with: the registered methods' (tuned, or defaults)
    muon_lrs, _ = method_lrs("relu_pe")
    lrs_cell = f"{muon_lrs.muon_adam_lr:.3g} / {muon_lrs.muon_lr:.3g}"
    assert (
        "| all-background (white) |" in proc.stdout and f"| relu_pe | muon | {lrs_cell} | 2 |" in proc.stdout
    )

    results = _strict_json(out / "results.json")
    assert results["complete"] and results["seeds"] == [0, 1]
    assert {"config", "machine"} <= set(results) and results["config"]["iterations"] == 2
    runs = results["runs"]
    assert [(r["arch"], r["optimizer"], r["seed"]) for r in runs] == [
        ("relu_pe", "adam", 0),
        ("relu_pe", "muon", 0),
        ("relu_pe", "adam", 1),
        ("relu_pe", "muon", 1),
    ]
    for run in runs:
        assert RUN_KEYS <= set(run) and run["iterations"] == 2 and run["seconds"] > 0
        assert 0 < run["test_psnr"] < 60 and -1 <= run["test_ssim"] <= 1
        assert run["final_stable_rank"] and all(r >= 1 for r in run["final_stable_rank"].values())
        assert 0 < run["optimizer_step_share"] < 1 and run["model"]["sampler"] == "coarse_fine"
        want = {"fields": muon_lrs.lr} if run["optimizer"] == "adam" else {"fields": muon_lrs.muon_adam_lr}
        assert run["lrs"] == {
            **want,
            **({"fields_muon": muon_lrs.muon_lr} if run["optimizer"] == "muon" else {}),
        }
        # the Muon group's steps are part of all optimizer steps; Adam runs have no Muon group
        muon_share = run["muon_step_share"]
        assert (muon_share is None) == (run["optimizer"] == "adam")
        assert muon_share is None or 0 < muon_share < run["optimizer_step_share"]

    # the all-white baseline, recomputed independently from the test PNGs (mean of per-view PSNR)
    scene = Path(results["config"]["scene"]["data"])
    frames = json.loads((scene / "transforms_test.json").read_text())["frames"]
    psnrs = []
    for frame in frames:
        rgba = np.asarray(Image.open(scene / f"{frame['file_path']}.png"), dtype=np.float64) / 255
        rgb = rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]
        psnrs.append(-10 * math.log10(np.mean((rgb - 1) ** 2)))
    assert results["background_psnr"] == pytest.approx(np.mean(psnrs), abs=1e-6)

    assert f"| relu_pe | adam | {muon_lrs.lr:.3g} | 2 |" in (out / "results.md").read_text()
    assert Image.open(out / "renders.png").size[0] > 0
    assert sorted(p.name for p in (out / "renders").iterdir())[0] == "relu_pe-adam-seed0.png"

    # --resume keeps the four runs and adds only seed 2; other settings are refused
    bench = [sys.executable, str(ROOT / "scripts/bench_nerf.py"), "--dry-run", "--archs", "relu_pe"]
    proc = subprocess.run(
        [*bench, "--seeds", "0", "1", "2", "--resume", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 runs (4 kept)" in proc.stdout
    resumed = _strict_json(out / "results.json")
    assert resumed["runs"][:4] == runs and [r["seed"] for r in resumed["runs"][4:]] == [2, 2]
    proc = subprocess.run(
        [*bench, "--iterations", "3", "--resume", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "measured with other settings (iterations)" in proc.stderr

    # a proposal-sampler benchmark beside it: its own table, and refused in this one (--merge)
    other = tmp_path / "proposal"
    proc = subprocess.run(
        [*bench, "--seeds", "3", "--sampler", "proposal", "--output", str(other)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proposal = _strict_json(other / "results.json")
    assert proposal["config"]["model"]["sampler"] == "proposal"
    assert proposal["config"]["model"]["proposal.num_nerf_samples_per_ray"] == 8
    assert "proposal 16, 8 → 8" in (other / "results.md").read_text()
    proc = subprocess.run(
        [*bench, "--seeds", "0", "--resume", "--merge", str(other), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "measured with other settings (model)" in proc.stderr
    fresh = tmp_path / "fresh"  # refused into a new OUTPUT: the scene it wrote first is gone too
    proc = subprocess.run(
        [*bench, "--seeds", "0", "--merge", str(other), "--output", str(fresh)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and not fresh.exists()


def test_merge_joins_tables_run_side_by_side(tmp_path):
    """Two benchmarks of the same profile (e.g. one process per core) end in one table: --merge
    takes the other's runs and renders; nothing is re-run."""
    bench = _bench_module()
    config = {"profile": "cpu", "iterations": 5, "rays": 8, "tf32": False, "device": "cpu"}
    config |= {
        "model": {"sampler": "coarse_fine", "width": 8},
        "scene": {"size": 8, "stride": 4, "train_views": 2, "test_views": 1},
    }

    def results(folder: Path, arch: str, seeds: list[int]) -> None:
        runs = [
            {"arch": arch, "optimizer": o, "seed": s, "test_psnr": 20.0}
            for s in seeds
            for o in ("muon", "adam")
        ]
        folder.mkdir()
        # written before the proposal sampler existed: no "sampler" in the model, read as coarse_fine
        old = {**config, "model": {"width": 8}}
        (folder / "results.json").write_text(
            json.dumps({"config": old, "runs": runs, "machine": {"cpu": arch}})
        )
        bench.save_render(bench.render_path(folder, arch, "adam", seeds[0]), np.zeros((2, 2, 3)))

    results(tmp_path / "a", "relu_pe", [0, 1])
    results(tmp_path / "b", "siren", [0])
    # runs recorded without their lrs trained at the untuned ones
    cfg = bench.NerfBenchConfig(
        archs=("siren", "relu_pe"), resume=True, merge=(tmp_path / "b",), lrs="untuned"
    )
    cfg.output = tmp_path / "a"
    runs = sorted(bench.gather_runs(cfg, config), key=bench.run_order(cfg.archs))
    assert [(r["arch"], r["optimizer"], r["seed"]) for r in runs] == [
        ("siren", "adam", 0), ("siren", "muon", 0),
        ("relu_pe", "adam", 0), ("relu_pe", "muon", 0), ("relu_pe", "adam", 1), ("relu_pe", "muon", 1),
    ]  # fmt: skip
    assert {r["machine"]["cpu"] for r in runs if r["arch"] == "siren"} == {"siren"}  # each keeps its machine
    assert bench.render_path(tmp_path / "a", "siren", "adam", 0).is_file()  # its render came along
    with pytest.raises(InputError, match="no results.json"):
        bench.gather_runs(bench.NerfBenchConfig(merge=(tmp_path / "missing",)), config)


def test_kept_runs_must_have_trained_at_the_lrs_chosen(tmp_path, monkeypatch):
    """A table row never mixes lrs: a kept run is refused unless it trained at what --lrs gives its
    method now; one recorded before runs recorded lrs trained at the untuned ones."""
    from muon_nerf.runs import tuned
    from muon_nerf.runs.tuned import TunedLrs

    bench = _bench_module()
    row = TunedLrs("nerf", "relu_pe", 8e-3, 4e-3, 0.1, ())
    monkeypatch.setattr(tuned, "tuned_table", lambda *_: {("nerf", "relu_pe"): row})
    old = {"arch": "relu_pe", "optimizer": "muon", "seed": 0}
    new = {**old, "lrs": {"fields": 4e-3, "fields_muon": 0.1}}
    peer = {"arch": "nerfacto", "optimizer": "adam", "seed": 0}
    bench.check_kept_lrs(tmp_path, new, "tuned")
    bench.check_kept_lrs(tmp_path, old, "untuned")
    bench.check_kept_lrs(tmp_path, peer, "tuned")  # a peer trains at its own
    with pytest.raises(InputError, match="relu_pe muon seed 0 trained at lrs .*0.0005.*give --lrs untuned"):
        bench.check_kept_lrs(tmp_path, old, "tuned")
    with pytest.raises(InputError, match="not the untuned"):
        bench.check_kept_lrs(tmp_path, new, "untuned")
    # the table names each row's lrs, the untuned ones of runs that did not record them
    assert bench.lrs_cell(new) == "0.004 / 0.1" and bench.lrs_cell(old) == "0.0005 / 0.02 (untuned)"
    assert bench.lrs_cell(peer) == "–"
    # --lrs untuned trains our runs at those, tuned at the method's own (None: the config's)
    assert (
        bench.chosen_lrs("relu_pe", "untuned").muon_lr == 0.02
        and bench.chosen_lrs("relu_pe", "tuned") is None
    )


def test_tuned_table_flag_trains_at_another_table(tmp_path):
    """--tuned-table: our runs train at that table's NeRF rows (the untuned lrs where it has none),
    kept runs are checked against it, and a file that is not such a table is refused up front."""
    bench = _bench_module()
    rows = [
        {
            "task": "nerf",
            "arch": "relu_pe",
            "adam_lr": 3e-3,
            "muon_adam_lr": 2e-3,
            "muon_lr": 0.07,
            "sources": [],
        }
    ]
    table = tmp_path / "tuned.json"
    table.write_text(json.dumps({"format": "muon-nerf-tuned-lrs/1", "rows": rows}))
    assert bench.chosen_lrs("relu_pe", "tuned", table) == bench.Lrs(3e-3, 0.07, 2e-3)
    assert bench.chosen_lrs("siren", "tuned", table) == bench.untuned_lrs("siren")
    assert bench.chosen_lrs("relu_pe", "untuned", table) == bench.untuned_lrs("relu_pe")
    run = {"arch": "relu_pe", "optimizer": "muon", "seed": 0, "lrs": {"fields": 2e-3, "fields_muon": 0.07}}
    bench.check_kept_lrs(tmp_path, run, "tuned", table)
    with pytest.raises(InputError, match="trained at lrs"):
        bench.check_kept_lrs(tmp_path, run, "tuned")  # the package's row is another
    bench.check_tuned_table(bench.NerfBenchConfig(tuned_table=table))
    with pytest.raises(InputError, match="does not go with --lrs untuned"):
        bench.check_tuned_table(bench.NerfBenchConfig(tuned_table=table, lrs="untuned"))
    bad = tmp_path / "bad.json"
    for text, message in [
        ("{", "Expecting"),
        ('{"format": "other"}', "not a tuned-lr table"),
        (json.dumps({"format": "muon-nerf-tuned-lrs/1", "rows": [{**rows[0], "muon_lr": -1}]}), "positive"),
        (
            json.dumps({"format": "muon-nerf-tuned-lrs/1", "rows": [{"task": "nerf", "sources": []}]}),
            "missing",
        ),
    ]:
        bad.write_text(text)
        with pytest.raises(InputError, match=message):
            bench.check_tuned_table(bench.NerfBenchConfig(tuned_table=bad))
    with pytest.raises(InputError, match="No such file"):
        bench.check_tuned_table(bench.NerfBenchConfig(tuned_table=tmp_path / "none.json"))


def test_default_plan_is_the_committed_cpu_table():
    """``--profile cpu`` alone plans what docs/results/nerf_cpu holds: relu_pe over three seeds,
    one seed of relu, siren and finer, and vanilla-nerf (Adam, as it ships) at the same rays,
    samples and iterations; ``--seeds`` applies to every arch; a proposal-sampled table holds no
    peer."""
    bench = _bench_module()
    cpu, gpu = bench.PROFILES["cpu"], bench.PROFILES["gpu"]
    plan = bench.run_plan(bench.NerfBenchConfig(), cpu)
    pairs = [(a, s) for a, o, s in plan if o == "muon"]
    assert pairs == [("relu", 0), ("relu_pe", 0), ("relu_pe", 1), ("relu_pe", 2), ("siren", 0), ("finer", 0)]
    assert plan[:2] == [("relu", "adam", 0), ("relu", "muon", 0)]  # each pair together
    assert plan[-1] == ("vanilla-nerf", "adam", 0) and len(plan) == 13
    proposal = bench.run_plan(bench.NerfBenchConfig(sampler="proposal"), cpu)
    assert [r for r in proposal if r[0] == "vanilla-nerf"] == [] and len(proposal) == 12
    assert {s for _, _, s in bench.run_plan(bench.NerfBenchConfig(), gpu)} == {0}
    given = bench.NerfBenchConfig(archs=("relu_pe", "vanilla-nerf"), seeds=(3, 4))
    assert bench.run_plan(given, cpu) == [
        ("relu_pe", "adam", 3), ("relu_pe", "muon", 3), ("relu_pe", "adam", 4), ("relu_pe", "muon", 4),
        ("vanilla-nerf", "adam", 3), ("vanilla-nerf", "adam", 4),
    ]  # fmt: skip


def test_render_figure_rows_follow_the_table_and_show_the_lowest_kept_seed(tmp_path):
    """A row per arch in table order, even when an arch's seed 0 render was not kept."""
    bench = _bench_module()
    table = (("relu_pe", 0), ("relu_pe", 1), ("relu_pe", 2), ("relu", 0))
    runs = [{"arch": a, "optimizer": o, "seed": s} for a, s in table for o in ("adam", "muon")]
    for r in runs[2:]:  # relu_pe seed 0 has no render
        bench.save_render(
            bench.render_path(tmp_path, r["arch"], r["optimizer"], r["seed"]),
            np.full((2, 2, 3), r["seed"] / 4),
        )
    renders = bench.load_renders(tmp_path, runs)
    assert list(renders) == [("relu_pe", "adam"), ("relu_pe", "muon"), ("relu", "adam"), ("relu", "muon")]
    assert renders["relu_pe", "muon"][0] == 1 and renders["relu_pe", "muon"][1].max() == pytest.approx(
        0.25, abs=0.01
    )


def test_blender_subset_stride_keeps_every_kth_view_and_records_it(tmp_path):
    src = write_sphere_scene(tmp_path / "src", size=16, views={"train": 8, "val": 2, "test": 4})
    pack = write_blender_subset(src, tmp_path / "pack", size=8, stride=4, eval_views=2)
    train = json.loads((pack / "transforms_train.json").read_text())["frames"]
    assert [f["file_path"] for f in train] == ["./train/r_0", "./train/r_4"]
    assert Image.open(pack / "train" / "r_4.png").size == (8, 8)
    assert subset_selection(pack) == {"size": 8, "stride": 4, "views": None, "eval_views": 2, "offset": 0}
    assert subset_selection(src) is None


def test_prepare_scene_uses_a_matching_subset_and_refuses_another(tmp_path):
    bench = _bench_module()
    src = write_sphere_scene(tmp_path / "src", size=16, views={"train": 8, "val": 2, "test": 4})
    pack = write_blender_subset(src, tmp_path / "pack", size=8, stride=4, eval_views=2)
    profile = bench.Profile(size=8, stride=4, test_views=2, iterations=1, rays=8)
    work = tmp_path / "work"
    assert bench.prepare_scene(bench.NerfBenchConfig(data=pack), profile, work) == pack
    made = bench.prepare_scene(bench.NerfBenchConfig(data=src), profile, work)
    assert made == work / "scene" and subset_selection(made) == subset_selection(pack)
    with pytest.raises(InputError, match="already a subset"):
        bench.prepare_scene(bench.NerfBenchConfig(data=pack), bench.Profile(16, 4, 2, 1, 8), work)


def test_peers_and_ngp_run_offline_beside_ours(tmp_path):
    """nerfstudio's vanilla-nerf and nerfacto join the table as archs (Adam only, their own
    networks; vanilla-nerf at the profile's samples, nerfacto set up for a bounded Blender scene)
    and so does muon-ngp (Adam and Muon); LPIPS is never downloaded (no network: ``unshare -n``
    where allowed)."""
    out = tmp_path / "bench"
    unshare = (
        ["unshare", "-n"]
        if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
        else []
    )
    proc = subprocess.run(
        [*unshare, sys.executable, str(ROOT / "scripts/bench_nerf.py"), "--dry-run",
         "--archs", "vanilla-nerf", "nerfacto", "ngp", "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = _strict_json(out / "results.json")["runs"]
    assert [(r["arch"], r["optimizer"], r["method"]) for r in runs] == [
        ("vanilla-nerf", "adam", "vanilla-nerf"),
        ("nerfacto", "adam", "nerfacto"),
        ("ngp", "adam", "muon-ngp-adam"),
        ("ngp", "muon", "muon-ngp"),
    ]
    for run in runs:
        assert RUN_KEYS <= set(run) and 0 < run["test_psnr"] < 60 and -1 <= run["test_ssim"] <= 1
    vanilla, nerfacto, ngp_adam, ngp_muon = runs
    assert vanilla["model"]["num_coarse_samples"] == vanilla["model"]["num_importance_samples"] == 8
    assert nerfacto["model"]["disable_scene_contraction"] and nerfacto["model"]["camera_optimizer"] == "off"
    # the model's own initial density, not the method config's 0.01 (see _nerfacto_settings)
    assert nerfacto["model"]["average_init_density"] == 1.0
    # not our field: no hidden matrices of ours to rank; muon-ngp's two 64×64 ones are ranked
    assert vanilla["mean_stable_rank"] is None and nerfacto["mean_stable_rank"] is None
    assert len(ngp_muon["final_stable_rank"]) == 2 and ngp_muon["model"]["sampler"] == "proposal"
    assert ngp_muon["muon_step_share"] > 0 and ngp_adam["muon_step_share"] is None
    bench = _bench_module()
    with pytest.raises(InputError, match="sample as they ship"):
        bench.main(bench.NerfBenchConfig(archs=("vanilla-nerf",), sampler="proposal", output=tmp_path))


def _psnr64(a: np.ndarray, b: np.ndarray) -> float:
    return -10 * math.log10(np.mean((a.astype(np.float64) - b) ** 2))


def test_bench_nerf_capture_dry_run_curves_baseline_and_figures(tmp_path):
    """The capture path end to end at toy size: a synthetic capture, its subset at the profile's
    long side, nerfstudio-data's explicit split, ngp / relu_pe / nerfacto (at its capture
    settings) for 2 iterations with a curve point after each, the mean-colour baseline, the
    equal-time column and both figures."""
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench_nerf.py"), "--dry-run", "--kind", "capture",
         "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = _strict_json(out / "results.json")
    runs = results["runs"]
    assert results["complete"] and results["planned_runs"] == len(runs) == 5
    assert [(r["arch"], r["optimizer"], r["method"]) for r in runs] == [
        ("ngp", "adam", "muon-ngp-adam"), ("ngp", "muon", "muon-ngp"), ("relu_pe", "adam", "muon-nerf-adam"),
        ("relu_pe", "muon", "muon-nerf"), ("nerfacto", "adam", "nerfacto"),
    ]  # fmt: skip
    scene = results["config"]["scene"]
    assert scene["kind"] == "capture" and scene["max_side"] == 16 and scene["image_size"] == [16, 16]
    assert (scene["train_views"], scene["test_views"]) == (6, 2)
    assert results["config"]["curve"] == {"every": 1, "views": [0, 1]}
    for run in runs:
        assert RUN_KEYS <= set(run) and 0 < run["test_psnr"] < 60 and -1 <= run["test_ssim"] <= 1
        curve = run["curve"]
        assert [p["iteration"] for p in curve] == [1, 2]
        seconds = [p["seconds"] for p in curve]
        assert 0 < seconds[0] < seconds[1] <= run["seconds"] and run["curve_seconds"] > 0
        # the curve scores as the pipeline does: its last point, on all (both) test views, is the run's score
        assert curve[-1]["psnr"] == pytest.approx(run["test_psnr"], abs=1e-4)
        assert curve[-1]["ssim"] == pytest.approx(run["test_ssim"], abs=1e-5)
    nerfacto = runs[-1]["model"]  # as nerfstudio ships it for captures, with torch hash grids
    assert nerfacto["camera_optimizer"] == "SO3xR3" and not nerfacto["disable_scene_contraction"]
    assert nerfacto["average_init_density"] == 0.01 and nerfacto["implementation"] == "torch"
    assert nerfacto["background_color"] == "last_sample"
    assert nerfacto["proposal_initial_sampler"] == "piecewise"

    # the baseline, recomputed from the subset's files by its explicit split lists: these are
    # the images nerfstudio loads and every run is scored against
    subset = out / "work" / "scene"
    assert capture_subset_selection(subset)["max_side"] == 16
    meta = json.loads((subset / "transforms.json").read_text())
    load = lambda name: np.asarray(Image.open(subset / name).convert("RGB"), dtype=np.float64) / 255  # noqa: E731
    train, test = ([load(n) for n in meta[f"{split}_filenames"]] for split in ("train", "test"))
    mean = np.mean([image.reshape(-1, 3) for image in train], axis=(0, 1))
    assert results["baseline"]["rgb"] == pytest.approx(mean, abs=1e-6)
    assert results["baseline"]["psnr"] == pytest.approx(np.mean([_psnr64(mean, t) for t in test]), abs=1e-4)
    assert "background_psnr" not in results

    table = (out / "results.md").read_text()
    assert "| mean training colour | – | – |" in table and "| over mean colour (dB) |" in table
    assert f"curve PSNR at {results['equal_time_seconds']:.0f} s (dB)" in table
    assert min(r["curve"][-1]["seconds"] for r in runs) == results["equal_time_seconds"]
    for name in ("renders.png", "curves.png"):
        assert Image.open(out / name).size[0] > 400
    depths, renders = (sorted(p.name for p in (out / d).iterdir()) for d in ("depths", "renders"))
    assert depths == renders and len(renders) == 5


def test_prepare_capture_makes_reuses_or_refuses_the_subset(tmp_path):
    """A capture is downsized into the work folder once (then reused), a subset at the profile's
    side is used as it is, one at another side is refused, and a full-resolution profile trains on
    the capture itself."""
    bench = _bench_module()
    src = write_capture_scene(tmp_path / "capture", size=24, views=6, test_views=2)
    profile = replace_profile(bench, size=12)
    work = tmp_path / "work"
    made = bench.prepare_scene(bench.NerfBenchConfig(data=src), profile, work)
    assert made == work / "scene" and Image.open(made / "images" / "frame_00001.png").size == (12, 12)
    assert capture_subset_selection(made) == {"source": str(src.resolve()), "max_side": 12, "scale": 0.5}
    stamp = (made / "transforms.json").stat().st_mtime_ns
    assert bench.prepare_scene(bench.NerfBenchConfig(data=src), profile, work) == made  # reused
    assert (made / "transforms.json").stat().st_mtime_ns == stamp
    assert bench.prepare_scene(bench.NerfBenchConfig(data=made), profile, tmp_path / "other") == made
    with pytest.raises(InputError, match="already a subset"):
        bench.prepare_scene(bench.NerfBenchConfig(data=made), replace_profile(bench, size=8), work)
    full = replace_profile(bench, size=None)
    assert bench.prepare_scene(bench.NerfBenchConfig(data=src), full, work) == src
    assert bench.scene_kind(bench.NerfBenchConfig(data=src)) == "capture"
    with pytest.raises(InputError, match="transforms.json not found"):
        bench.prepare_scene(bench.NerfBenchConfig(data=tmp_path / "work"), profile, tmp_path / "w2")


def replace_profile(bench, **changes):
    from dataclasses import replace

    return replace(bench.CAPTURE_PROFILES["cpu"], **changes)


def test_capture_results_join_only_their_own_capture(tmp_path):
    """--resume/--merge on captures: the subset's side and source, the scene kind and the curve
    views must match; results written before captures read as Blender scenes."""
    bench = _bench_module()
    scene = {"kind": "capture", "data": "fruit", "max_side": 128, "source": "/data/fruit"}
    config = {"profile": "cpu", "iterations": 5, "rays": 8, "tf32": False, "device": "cpu"}
    config |= {"model": {"sampler": "coarse_fine"}, "curve": {"every": 100, "views": [0, 4, 8]}}
    config |= {"scene": {**scene, "train_views": 72, "test_views": 9}}
    assert bench._differences(config, config) == []
    assert bench._differences({**config, "curve": {"every": 50, "views": [0, 4, 8]}}, config) == []
    other = {**config, "scene": {**config["scene"], "max_side": 64, "source": "/data/stitch"}}
    assert bench._differences(other, config) == ["scene.max_side", "scene.source"]
    assert bench._differences({**config, "curve": {"every": 100, "views": [0, 8]}}, config) == ["curve views"]
    # a time limit is a lease's budget: runs under other limits join; another convergence rule does not
    stop = {"gain": 0.2, "window": 2000, "seconds": 420.0}
    assert bench._differences({**config, "stop": {**stop, "seconds": 150.0}}, {**config, "stop": stop}) == []
    assert bench._differences({**config, "stop": {**stop, "gain": 0.1}}, {**config, "stop": stop}) == ["stop"]
    blender = {k: v for k, v in config.items() if k != "curve"}
    blender["scene"] = {"size": 100, "stride": 4, "train_views": 25, "test_views": 10}
    assert bench._differences(blender, config) == ["scene.kind"]
    (tmp_path / "results.json").write_text(json.dumps({"config": blender, "runs": []}))
    with pytest.raises(InputError, match=r"other settings \(scene.kind\)"):
        bench.kept_runs(tmp_path / "results.json", config)
    # a results.json that is not a benchmark's is refused in one line, never a traceback
    bad = ("{not json", "[1, 2]", json.dumps({"config": blender}), json.dumps({"config": 1, "runs": []}))
    for text in bad:
        (tmp_path / "results.json").write_text(text)
        with pytest.raises(InputError, match=r"^cannot read .*results.json: "):
            bench.kept_runs(tmp_path / "results.json", config)


def test_capture_plan_and_profiles():
    """A capture's default table is ngp, relu_pe (seeds 0, 1, Adam and Muon) and nerfacto (seed 0,
    as it ships); vanilla-nerf (no scene contraction) is refused on a capture."""
    bench = _bench_module()
    cpu, gpu = bench.CAPTURE_PROFILES["cpu"], bench.CAPTURE_PROFILES["gpu"]
    assert (cpu.size, cpu.rays, cpu.iterations, cpu.curve_every) == (96, 512, 400, 100)
    assert (gpu.size, gpu.rays, gpu.iterations, gpu.device, gpu.tf32) == (None, 4096, 5000, "cuda", True)
    plan = bench.run_plan(bench.NerfBenchConfig(), cpu)
    assert plan == [
        ("ngp", "adam", 0), ("ngp", "muon", 0), ("ngp", "adam", 1), ("ngp", "muon", 1),
        ("relu_pe", "adam", 0), ("relu_pe", "muon", 0), ("relu_pe", "adam", 1), ("relu_pe", "muon", 1),
        ("nerfacto", "adam", 0),
    ]  # fmt: skip
    assert bench.select_profile(bench.NerfBenchConfig(), "blender").curve_every == 0  # Blender: no curve
    with pytest.raises(InputError, match="not run on a capture"):
        bench.check_archs(bench.NerfBenchConfig(), ("relu_pe", "vanilla-nerf"), "capture")


def test_bench_nerf_stop_rule_partial_curves_table_only_and_ngp_mlp(tmp_path):
    """A stop rule ends a run at a curve point (the record says where and why), each point is
    written out as it is taken (what a killed run keeps), ``--ngp-mlp`` resizes ngp's MLP, and
    ``--table-only`` tabulates merged runs without training the planned ones they lack."""
    script, out = str(ROOT / "scripts/bench_nerf.py"), tmp_path / "bench"
    common = ["--dry-run", "--iterations", "6", "--curve-every", "1"]
    common += ["--stop-gain", "100", "--stop-window", "1"]
    proc = subprocess.run(
        [sys.executable, script, *common, "--archs", "relu_pe", "ngp", "--optimizers", "muon",
         "--ngp-mlp", "3", "24", "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = _strict_json(out / "results.json")
    assert results["config"]["stop"] == {"gain": 100.0, "window": 1, "seconds": None}
    for run in results["runs"]:
        # the second point gains < 100 dB over the first: converged there, 4 iterations early
        assert (run["iterations"], run["planned_iterations"], run["stopped"]) == (2, 6, "converged")
        assert [p["iteration"] for p in run["curve"]] == [1, 2]
        partial = _strict_json(out / "curves" / f"{run['arch']}-muon-seed0.json")
        assert partial["points"] == run["curve"] and partial["views"] == run["curve_views"]
    ngp = next(r for r in results["runs"] if r["arch"] == "ngp")
    assert (ngp["model"]["num_layers"], ngp["model"]["width"]) == (3, 24)
    table = (out / "results.md").read_text()
    assert "iterations to Adam's final" in table and "ngp's position MLP: 3 linear layers × 24" in table

    merged = tmp_path / "merged"
    proc = subprocess.run(
        [sys.executable, script, *common, "--archs", "relu_pe", "ngp", "--ngp-mlp", "3", "24", "--table-only",
         "--merge", str(out), "--output", str(merged)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = _strict_json(merged / "results.json")
    # the Adam runs are planned, missing, and not trained
    assert len(table["runs"]) == 2 and table["planned_runs"] == 4 and not table["complete"]

    for extra, words in (
        (["--time-limit", "5"], "give --curve-every K"),  # no curve to check the rule at
        (["--curve-every", "1", "--stop-gain", "nan"], "--stop-gain"),
        (["--table-only"], "--table-only needs runs"),
        (["--ngp-mlp", "3", "24"], "add ngp to --archs"),
    ):
        proc = subprocess.run(
            [sys.executable, script, "--dry-run", "--archs", "relu_pe", *extra, "--output", str(tmp_path)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr[-2000:]
        # nerfstudio's import warnings come first; the refusal is one line, without a traceback
        assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("arch", ["relu_pe", "nerfacto"])
def test_extend_continues_a_run_stopped_at_its_time_limit_from_its_checkpoint(tmp_path, arch):
    """``--extend`` trains a time-limited run on from its checkpoint (its optimizer state too) to
    the planned end: its curve and seconds go on from the stopped run's, the record says from
    where, and the earlier folder is only read. What cannot be continued is refused. A peer's
    checkpoint holds nerfstudio's numpy-scalar lrs, which ``torch.load`` refuses by default."""
    script, first, then = str(ROOT / "scripts/bench_nerf.py"), tmp_path / "first", tmp_path / "then"
    common = [
        "--dry-run",
        "--archs",
        arch,
        "--optimizers",
        "adam",
        "--iterations",
        "6",
        "--curve-every",
        "2",
    ]

    def bench(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, script, *common, *extra], capture_output=True, text=True, timeout=300
        )

    proc = bench("--time-limit", "0.001", "--output", str(first))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stopped = _strict_json(first / "results.json")["runs"][0]
    assert (stopped["iterations"], stopped["stopped"]) == (2, "time limit")
    before = {f: f.read_bytes() for f in first.rglob("*") if f.is_file()}

    refusals = (
        (["--extend", str(first), "--output", str(first)], "that is --output"),
        (["--extend", str(first), "--time-limit", "1e-6", "--output", str(then)], "leaves it none"),
        (["--extend", str(first), "--curve-every", "3", "--output", str(then)], "a continued curve keeps"),
        (["--extend", str(first), "--table-only", "--resume", "--output", str(then)], "--table-only"),
        (["--extend", str(tmp_path / "nowhere"), "--output", str(then)], "no results.json"),
    )
    for extra, words in refusals if arch == "relu_pe" else ():  # the refusals do not depend on the arch
        proc = bench(*extra)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1].startswith("error:") and not then.exists()

    proc = bench("--extend", str(first), "--output", str(then))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = _strict_json(then / "results.json")["runs"][0]
    assert (run["iterations"], run["stopped"]) == (6, None)
    assert [p["iteration"] for p in run["curve"]] == [2, 4, 6] and run["curve"][0] == stopped["curve"][0]
    assert run["continued"] == [{"folder": str(first), "iterations": 2, "seconds": stopped["seconds"]}]
    assert run["seconds"] > stopped["seconds"] and run["curve_seconds"] > stopped["curve_seconds"]
    assert all(a["seconds"] < b["seconds"] for a, b in itertools.pairwise(run["curve"]))
    # nerfstudio resumed at step 2 with the stopped run's optimizer state: Adam counted 2 + 4 steps
    (checkpoint,) = (then / "work" / "runs").rglob("*.ckpt")
    # our checkpoints load as they are; a peer's needs its numpy-scalar lrs allowed
    allowed = _bench_module()._peer_checkpoint_globals() if arch == "nerfacto" else contextlib.nullcontext()
    with allowed:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint.name == "step-000000005.ckpt"
    assert int(state["optimizers"]["fields"]["state"][0]["step"]) == 6
    assert {f: f.read_bytes() for f in first.rglob("*") if f.is_file()} == before

    proc = bench("--extend", str(then), "--output", str(tmp_path / "again"))  # it finished
    assert proc.returncode == 2 and "nothing to continue" in proc.stderr, proc.stderr[-2000:]


def test_mean_curve_spans_the_points_every_seed_shares():
    """Seeds that a stop rule ended at different iterations are averaged up to the earliest stop."""
    bench = _bench_module()
    long = [{"iteration": i, "psnr": float(i)} for i in (500, 1000, 1500)]
    short = [{"iteration": i, "psnr": float(i) + 2.0} for i in (500, 1000)]
    assert bench._mean_curve([long, short], "psnr") == [501.0, 1001.0]
    assert bench._mean_curve([long], "iteration") == [500, 1000, 1500]
    assert bench._mean_curve([long, [{"iteration": 250, "psnr": 1.0}]], "psnr") is None


def test_a_merged_table_names_the_machines_its_runs_ran_on():
    """Not the machine that merged them: seeds of one table run on two CPUs name both."""
    bench = _bench_module()
    here = {"cpu": "Intel Xeon", "threads": 1}
    amd, intel = {"cpu": "AMD EPYC", "threads": 1}, {"cpu": "Intel Xeon", "threads": 1}
    assert bench.where_ran([{"machine": amd}, {"machine": amd}], here) == "AMD EPYC (1 threads)"
    assert bench.where_ran([{"machine": amd}, {"machine": intel}], here) == "AMD EPYC, Intel Xeon (1 threads)"
    assert bench.where_ran([{"machine": {**amd, "threads": 2}}, {}], here) == (
        "AMD EPYC, Intel Xeon (1 runs at 1 threads, 1 runs at 2 threads)"
    )
    gpu = {"gpu": "NVIDIA H200", "cpu": "AMD EPYC", "threads": 1}
    assert bench.where_ran([{"machine": gpu}, {"machine": gpu}], here) == "NVIDIA H200"
    assert bench.where_ran([], here) == "Intel Xeon (1 threads)"
