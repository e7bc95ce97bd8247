"""Tests of muon_nerf/nerf/captures.py: the capture check (one test per refusal), the downsized copy
(intrinsics against hand-computed numbers) and the synthetic capture (against a closed form and
nerfstudio's own parser, where the [nerf] extra is installed)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muon_nerf.fit.errors import InputError
from muon_nerf.nerf import data
from muon_nerf.nerf.captures import (
    CAPTURE_SCENE_FILE,
    SCENE_CAMERA_RADIUS,
    SCENE_FOV,
    SCENE_OBJECT_RADIUS,
    SCENE_ROOM,
    capture_subset_selection,
    check_capture,
    write_capture_scene,
    write_capture_subset,
)


def meta_of(folder: Path) -> dict:
    return json.loads((folder / "transforms.json").read_text())


def edit(folder: Path, change) -> Path:  # noqa: ANN001 - a function of the transforms dict
    meta = meta_of(folder)
    change(meta)
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_capture_scene(tmp_path / "cap", size=16, views=6, test_views=2)


def as_jpegs(folder: Path) -> Path:
    """The capture with its PNGs turned into JPEGs (file paths and split lists follow)."""
    meta = meta_of(folder)
    for frame in meta["frames"]:
        png = folder / frame["file_path"]
        Image.open(png).save(png.with_suffix(".jpg"), quality=90)
        png.unlink()
    rename = {f["file_path"]: f["file_path"].replace(".png", ".jpg") for f in meta["frames"]}
    for frame in meta["frames"]:
        frame["file_path"] = rename[frame["file_path"]]
    for split in ("train", "val", "test"):
        meta[f"{split}_filenames"] = [rename[n] for n in meta[f"{split}_filenames"]]
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


# --- check_capture: what passes ----------------------------------------------------------------


def test_synthetic_scene_passes_check(scene: Path) -> None:
    check_capture(scene)
    check_capture(scene / "transforms.json")  # --data may be the json itself
    meta = meta_of(scene)
    assert meta["camera_model"] == "OPENCV"
    assert (meta["w"], meta["h"], meta["cx"], meta["cy"]) == (16, 16, 8.0, 8.0)
    assert meta["fl_x"] == meta["fl_y"] == pytest.approx(8 / math.tan(math.radians(30)))
    assert (
        meta["test_filenames"]
        == meta["val_filenames"]
        == ["images/frame_00002.png", "images/frame_00005.png"]
    )
    assert len(meta["train_filenames"]) == 4 and not set(meta["train_filenames"]) & set(
        meta["test_filenames"]
    )
    assert json.loads((scene / CAPTURE_SCENE_FILE).read_text())["views"] == 6
    image = Image.open(scene / meta["frames"][0]["file_path"])
    assert (image.mode, image.size) == ("RGB", (16, 16))


def test_synthetic_scene_pixels_match_closed_form(tmp_path: Path) -> None:
    """The 2×2 centre pixels of a view see the sphere next to the point nearest the camera (colour
    (n + 1)/2 with n the camera's direction); a corner pixel sees the wall at |coordinate| = room."""
    out = write_capture_scene(tmp_path / "c", size=32, views=4, test_views=1)
    meta = meta_of(out)
    frame = meta["frames"][1]
    c2w = np.asarray(frame["transform_matrix"])
    image = np.asarray(Image.open(out / frame["file_path"])).astype(float) / 255
    n = c2w[:3, 3] / np.linalg.norm(c2w[:3, 3])
    np.testing.assert_allclose(image[15:17, 15:17].mean((0, 1)), (n + 1) / 2, atol=0.03)
    assert np.linalg.norm(c2w[:3, 3]) == pytest.approx(SCENE_CAMERA_RADIUS)
    # the ray through the corner pixel centre (0.5, 0.5) leaves the room on a wall
    focal = meta["fl_x"]
    d = c2w[:3, :3] @ np.array([(0.5 - 16) / focal, -(0.5 - 16) / focal, -1.0])
    t = ((np.sign(d) * SCENE_ROOM - c2w[:3, 3]) / d).min()
    assert np.abs(c2w[:3, 3] + t * d).max() == pytest.approx(SCENE_ROOM)
    assert not np.allclose(image[0, 0], image[16, 16], atol=0.1)
    assert SCENE_FOV == pytest.approx(2 * math.atan(16 / focal))


def test_check_refuses_3x4_poses_for_nerfstudio_data_only(scene: Path) -> None:
    edit(scene, lambda m: [f.__setitem__("transform_matrix", f["transform_matrix"][:3]) for f in m["frames"]])
    with pytest.raises(
        InputError, match=r"frame 0 \(images/frame_00001.png\) .* is 3×4: nerfstudio-data reads 4×4$"
    ):
        check_capture(scene)
    check_capture(scene, dataparser="instant-ngp-data")


# --- check_capture: one test per refusal -------------------------------------------------------


def test_missing_images_counted_with_the_first(tmp_path: Path) -> None:
    out = write_capture_scene(tmp_path / "c", size=2, views=67, test_views=7)
    for i in range(12, 29):
        (out / f"images/frame_{i:05d}.png").unlink()
    with pytest.raises(InputError) as err:
        check_capture(out)
    assert str(err.value) == (
        f"17 of 67 images listed in {out}/transforms.json are missing (first: {out}/images/frame_00012.png)"
    )


def test_missing_masks_and_partial_masks(scene: Path) -> None:
    edit(scene, lambda m: [f.__setitem__("mask_path", f"masks/{i}.png") for i, f in enumerate(m["frames"])])
    (scene / "masks").mkdir()
    for i in range(6):
        if i != 3:
            Image.new("L", (16, 16), 255).save(scene / f"masks/{i}.png")
    with pytest.raises(
        InputError, match=r"^1 of 6 masks listed in .* are missing \(first: .*/masks/3.png\)$"
    ):
        check_capture(scene)
    edit(scene, lambda m: m["frames"][3].pop("mask_path"))
    with pytest.raises(InputError, match="mask_path is given for 5 of 6 frames"):
        check_capture(scene)


def test_empty_or_absent_frame_list(scene: Path) -> None:
    edit(scene, lambda m: m.__setitem__("frames", []))
    with pytest.raises(InputError, match=r"^.*/cap/transforms.json lists no frames$"):
        check_capture(scene)
    edit(scene, lambda m: m.pop("frames"))
    with pytest.raises(InputError, match="has no frames list"):
        check_capture(scene)


def test_unreadable_json(tmp_path: Path) -> None:
    (tmp_path / "transforms.json").write_text("{not json")
    with pytest.raises(InputError, match=r"^cannot read .*/transforms.json: "):
        check_capture(tmp_path)
    (tmp_path / "transforms.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="is not a transforms file"):
        check_capture(tmp_path)


def test_nan_pose(scene: Path) -> None:
    edit(scene, lambda m: m["frames"][4]["transform_matrix"][1].__setitem__(3, float("nan")))
    with pytest.raises(InputError, match=r"^frame 4 \(images/frame_00005.png\) of .* has a non-finite pose"):
        check_capture(scene)


def test_non_rigid_pose(scene: Path) -> None:
    def scale_rotation(meta: dict) -> None:
        pose = np.asarray(meta["frames"][2]["transform_matrix"])
        pose[:3, :3] *= 1.1
        meta["frames"][2]["transform_matrix"] = pose.tolist()

    edit(scene, scale_rotation)
    # RᵀR = 1.21 I: off by 0.21; det = 1.1³ = 1.331
    with pytest.raises(
        InputError, match=r"frame 2 .* non-rigid pose: .* \|RᵀR − I\| 0\.21 and determinant 1\.331 "
    ):
        check_capture(scene)


def test_missing_intrinsics(scene: Path) -> None:
    edit(scene, lambda m: [m.pop("fl_x"), m.__setitem__("camera_angle_x", 1.0)])
    with pytest.raises(
        InputError, match=r"gives no fl_x, neither at the top nor in frame 0 .*: nerfstudio-data needs"
    ):
        check_capture(scene)
    check_capture(scene, dataparser="instant-ngp-data")  # it computes fl_x from camera_angle_x and w


def test_image_of_another_size(scene: Path) -> None:
    path = scene / "images/frame_00004.png"
    Image.open(path).resize((16, 12)).save(path)
    with pytest.raises(InputError) as err:
        check_capture(scene)
    assert str(err.value) == f"image {path} is 16×12 but {scene}/transforms.json gives w×h 16×16"


def test_sizes_per_frame(scene: Path) -> None:
    """Per-frame w, h may differ between frames (nerfstudio then collates per resolution); each
    image must match its own."""

    def per_frame(meta: dict) -> None:
        for frame in meta["frames"]:
            frame.update({key: meta[key] for key in ("w", "h")})
        del meta["w"], meta["h"]
        meta["frames"][1].update(w=8, h=6)

    edit(scene, per_frame)
    with pytest.raises(InputError, match=r"frame_00002.png is 16×16 but .* gives w×h 8×6$"):
        check_capture(scene)
    Image.open(scene / "images/frame_00002.png").resize((8, 6)).save(scene / "images/frame_00002.png")
    check_capture(scene)


def test_truncated_jpeg(scene: Path) -> None:
    as_jpegs(scene)
    check_capture(scene)
    path = scene / "images/frame_00003.jpg"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(
        InputError, match=r"^image .*/images/frame_00003.jpg cannot be decoded: image file is truncated"
    ):
        check_capture(scene)


def test_reduced_scale_decode_still_sees_truncation(tmp_path: Path) -> None:
    """What the check relies on: PIL's draft mode decodes a JPEG at 1/8 scale and still raises on
    a truncated file."""
    y, x = np.mgrid[0:256, 0:320]
    rgb = np.stack([x % 256, y, (x * y) % 256], -1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=90)
    image = Image.open(tmp_path / "a.jpg")
    image.draft(None, (40, 32))
    image.load()
    assert image.size == (40, 32)
    payload = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "b.jpg").write_bytes(payload[: len(payload) - 100])
    image = Image.open(tmp_path / "b.jpg")
    image.draft(None, (40, 32))
    assert image.size == (40, 32)
    with pytest.raises(OSError, match="truncated"):
        image.load()


def test_not_an_image_and_wrong_mode(scene: Path) -> None:
    path = scene / "images/frame_00006.png"
    path.write_bytes(b"not an image")
    with pytest.raises(InputError, match=rf"^{path} is not an image PIL can read$"):
        check_capture(scene)
    Image.new("P", (16, 16)).save(path)
    with pytest.raises(
        InputError, match=r"frame_00006.png has mode P: nerfstudio reads 8-bit L, RGB, RGBA images$"
    ):
        check_capture(scene)


def test_split_names_not_in_frames(scene: Path) -> None:
    edit(scene, lambda m: m["val_filenames"].extend(["images/nope.png", "images/other.png"]))
    with pytest.raises(
        InputError,
        match=r"^val_filenames in .* names 2 files that are not among its frames \(first: images/nope.png\)$",
    ):
        check_capture(scene)
    edit(scene, lambda m: [m["val_filenames"].pop() for _ in range(2)] and m.pop("test_filenames"))
    with pytest.raises(InputError, match="has train_filenames but no test_filenames"):
        check_capture(scene)


def test_downscale_folder_is_what_is_read(scene: Path) -> None:
    """With --downscale-factor 2 nerfstudio-data reads images_2/<name>: those must exist and be
    half the size."""
    with pytest.raises(InputError, match=r"^6 of 6 images .* \(first: .*/cap/images_2/frame_00001.png\)$"):
        check_capture(scene, downscale_factor=2)
    (scene / "images_2").mkdir()
    for png in (scene / "images").iterdir():
        Image.open(png).resize((8, 8)).save(scene / "images_2" / png.name)
    check_capture(scene, downscale_factor=2)


# --- write_capture_subset ----------------------------------------------------------------------


def hand_capture(folder: Path) -> Path:
    """Three 40×30 images (two JPEGs, one PNG) with global intrinsics and distortion, splits and
    extra keys; poses from the synthetic ring."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["images/a.jpg", "images/b.png", "images/c.jpg"]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(folder / name)
    poses = [data.look_at(np.array([2 * math.cos(a), 2 * math.sin(a), 0.5])).tolist() for a in (0, 2, 4)]
    meta = {
        **{"fl_x": 50.0, "fl_y": 52.0, "cx": 19.5, "cy": 15.25, "w": 40, "h": 30, "k1": 0.1, "p2": -0.01},
        "camera_model": "OPENCV",
        "aabb_scale": 16,
        "applied_transform": [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, -1, 0]],
        "frames": [
            {"file_path": n, "transform_matrix": p, "sharpness": 7.0}
            for n, p in zip(names, poses, strict=True)
        ],
        "train_filenames": names[:2],
        "val_filenames": names[2:],
        "test_filenames": names[2:],
    }
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def test_subset_scales_intrinsics_exactly(tmp_path: Path) -> None:
    src = hand_capture(tmp_path / "src")
    out = write_capture_subset(src, tmp_path / "out", max_side=25)
    meta = meta_of(out)
    # scale 25/40: 40×30 → 25×18.75, rounded to 25×19; x by 25/40, y by 19/30
    assert (meta["w"], meta["h"]) == (25, 19)
    assert meta["fl_x"] == pytest.approx(50 * 25 / 40, rel=1e-12)
    assert meta["cx"] == pytest.approx(19.5 * 25 / 40, rel=1e-12)
    assert meta["fl_y"] == pytest.approx(52 * 19 / 30, rel=1e-12)
    assert meta["cy"] == pytest.approx(15.25 * 19 / 30, rel=1e-12)
    source = meta_of(src)
    for key in (
        "k1",
        "p2",
        "camera_model",
        "aabb_scale",
        "applied_transform",
        "train_filenames",
        "test_filenames",
    ):
        assert meta[key] == source[key]
    assert meta["frames"] == source["frames"]
    for name, kind in (("images/a.jpg", "JPEG"), ("images/b.png", "PNG")):
        image = Image.open(out / name)
        assert (image.format, image.size) == (kind, (25, 19))
    assert capture_subset_selection(out) == {"source": str(src), "max_side": 25, "scale": 0.625}
    assert capture_subset_selection(src) is None
    check_capture(out)


def test_subset_per_frame_intrinsics_and_no_upscale(tmp_path: Path) -> None:
    """Per-frame intrinsics, one frame at another size: one factor (20 / 40) for all images."""
    src = hand_capture(tmp_path / "src")
    Image.open(src / "images/b.png").resize((32, 24)).save(src / "images/b.png")

    def per_frame(meta: dict) -> None:
        shared = {key: meta.pop(key) for key in ("fl_x", "fl_y", "cx", "cy", "w", "h")}
        for frame in meta["frames"]:
            frame.update(shared)
        meta["frames"][1].update(fl_x=40.0, fl_y=41.6, cx=15.5, cy=12.25, w=32, h=24)

    edit(src, per_frame)
    check_capture(src)
    out = write_capture_subset(src, tmp_path / "out", max_side=20)
    meta = meta_of(out)
    assert "fl_x" not in meta
    keys = ("w", "h", "fl_x", "fl_y", "cx", "cy")
    assert [meta["frames"][0][k] for k in keys] == [20, 15, 25.0, 26.0, 9.75, 7.625]
    assert [meta["frames"][1][k] for k in keys] == [16, 12, 20.0, 20.8, 7.75, 6.125]
    assert Image.open(out / "images/b.png").size == (16, 12)
    check_capture(out)
    same = write_capture_subset(src, tmp_path / "same", max_side=100)
    assert meta_of(same)["frames"] == meta_of(src)["frames"]
    assert (same / "images/a.jpg").read_bytes() == (src / "images/a.jpg").read_bytes()
    assert capture_subset_selection(same)["scale"] == 1.0


def test_subset_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    src = hand_capture(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not a scene written by this command"):
        write_capture_subset(src, out, max_side=20)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (out / "notes.txt").unlink()
    out.rmdir()
    write_capture_subset(src, out, max_side=20)
    write_capture_subset(src, out, max_side=10)  # its own folder: replaced
    assert meta_of(out)["w"] == 10
    with pytest.raises(InputError, match="is the source capture"):
        write_capture_subset(out, out, max_side=5)


def test_subset_refuses_a_bad_source(scene: Path, tmp_path: Path) -> None:
    (scene / "images/frame_00001.png").unlink()
    with pytest.raises(InputError, match="1 of 6 images"):
        write_capture_subset(scene, tmp_path / "out", max_side=8)
    assert not (tmp_path / "out").exists()


def test_cli_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(
        sys, "argv", ["data", "capture", "--out", str(tmp_path / "c"), "--size", "8", "--views", "3"]
    )
    data.main()
    meta = meta_of(tmp_path / "c")
    assert (len(meta["frames"]), len(meta["test_filenames"]), meta["w"]) == (4, 1, 8)
    argv = [
        "data",
        "capture-subset",
        "--src",
        str(tmp_path / "c"),
        "--out",
        str(tmp_path / "s"),
        "--max-side",
        "4",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    data.main()
    assert meta_of(tmp_path / "s")["w"] == 4
    assert capsys.readouterr().out.split() == [str(tmp_path / "c"), str(tmp_path / "s")]


# --- with nerfstudio's own parser --------------------------------------------------------------


def parse(folder: Path, split: str):  # noqa: ANN201 - nerfstudio's DataparserOutputs
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    return NerfstudioDataParserConfig(data=folder).setup().get_dataparser_outputs(split)


def test_nerfstudio_reads_the_synthetic_scene_with_walls_outside_the_unit_cube(scene: Path) -> None:
    pytest.importorskip("nerfstudio", reason="parsing with nerfstudio needs the [nerf] extra")
    train, val, test = (parse(scene, split) for split in ("train", "val", "test"))
    assert [p.name for p in test.image_filenames] == ["frame_00002.png", "frame_00005.png"]
    assert val.image_filenames == test.image_filenames and len(train.image_filenames) == 4
    assert float(train.cameras.fx[0]) == pytest.approx(meta_of(scene)["fl_x"], rel=1e-6)
    # nerfstudio-data centres the cameras and divides by their largest |coordinate|: on a ring
    # of radius 2 at elevations 0.05 … 0.45 rad that is between 2·cos 0.45 and 2
    scale = train.dataparser_scale
    assert 1 / SCENE_CAMERA_RADIUS <= scale <= 1 / (SCENE_CAMERA_RADIUS * math.cos(0.45))
    transform = train.dataparser_transform.numpy()
    for axis in range(3):
        for side in (-1, 1):
            centre = np.zeros(3)
            centre[axis] = side * SCENE_ROOM
            normal = transform[:3, :3] @ np.eye(3)[axis]
            wall = scale * (transform[:3, :3] @ centre + transform[:3, 3])
            assert abs(wall @ normal) > 1.5  # the wall's plane, 4 × ½ ± the ring's vertical offset
    assert scale * SCENE_OBJECT_RADIUS < 0.3


def test_nerfstudio_cameras_of_the_subset_are_the_originals_scaled(tmp_path: Path) -> None:
    pytest.importorskip("nerfstudio", reason="parsing with nerfstudio needs the [nerf] extra")
    import torch

    src = hand_capture(tmp_path / "src")
    out = write_capture_subset(src, tmp_path / "out", max_side=25)
    for split in ("train", "test"):
        before, after = parse(src, split).cameras, parse(out, split).cameras
        torch.testing.assert_close(after.fx, before.fx * 25 / 40)
        torch.testing.assert_close(after.cx, before.cx * 25 / 40)
        torch.testing.assert_close(after.fy, before.fy * 19 / 30)
        torch.testing.assert_close(after.cy, before.cy * 19 / 30)
        assert (int(after.width[0]), int(after.height[0])) == (25, 19)
        assert torch.equal(after.distortion_params, before.distortion_params)
        assert torch.equal(after.camera_to_worlds, before.camera_to_worlds)
