"""Real captures in nerfstudio-data / instant-ngp format: a folder whose ``transforms.json`` lists
``frames`` (``file_path`` relative to the folder, a 4×4 OpenGL camera-to-world
``transform_matrix``) with pinhole intrinsics given once for all frames or per frame, as
``ns-process-data`` writes it.

``check_capture`` refuses, in one line, what nerfstudio's parsers would fail on with a traceback
after ``ns-train`` has written its run folder (or silently get wrong): missing or unreadable
images, bad poses, sizes that disagree with the intrinsics, split lists naming unknown files.
``write_capture_subset`` writes a downsized copy of a capture for CPU benchmarks;
``write_capture_scene`` ray-traces a tiny synthetic capture (an object inside a textured room,
so an unbounded model must represent background) for tests. Both write atomically
(``python -m muon_nerf.nerf.data capture|capture-subset``).

Nothing here imports nerfstudio: the checks run in the core install too.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from muon_nerf.fit.errors import InputError
from muon_nerf.nerf.data import check_replaceable, look_at
from muon_nerf.runs.io import staged_dir, write_json

TRANSFORMS = "transforms.json"
SPLITS = ("train", "val", "test")
"""nerfstudio-data reads ``<split>_filenames``: ``ns-train`` the train and val lists, ``ns-eval``
the test list."""
INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
"""What nerfstudio-data needs for every frame, from the top level of the json or the frame's own."""
EXTRA_FILES = {"mask_path": ("masks", "masks_"), "depth_file_path": ("depth maps", "depths_")}
"""Per-frame files beside the image: what to call them, and nerfstudio-data's downscale-folder
prefix for them (``masks_2/`` …)."""
MAX_AUTO_RESOLUTION = 1600
"""nerfstudio-data's automatic downscale: the first image's longer side halved until ≤ this, as
long as the ``images_<2^k>/`` folder exists."""
IMAGE_MODES = ("L", "RGB", "RGBA")
"""What nerfstudio's dataset turns into the 3 or 4 channels of 8 bits it expects (others fail an
assert or are read as wrong colours: palette indices, 16-bit values cast to 8 bits)."""
RIGID_TOL = 1e-2
"""Largest |RᵀR − I| and |det R − 1| of a pose's rotation part: COLMAP's poses are orthonormal
to ~1e-6; a pose scaled by 1 % or more is not a camera."""
CAMERA_MODELS = (
    *("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "OPENCV_FISHEYE"),
    *("EQUIRECTANGULAR", "OMNIDIRECTIONALSTEREO_L", "OMNIDIRECTIONALSTEREO_R", "VR180_L", "VR180_R"),
    *("ORTHOPHOTO", "FISHEYE624"),
)
"""The keys of nerfstudio 1.1.5's ``CAMERA_MODEL_TO_TYPE``: any other ``camera_model`` is a
KeyError in its parser."""
Dataparser = Literal["nerfstudio-data", "instant-ngp-data"]


def transforms_path(path: Path) -> Path:
    """``--data`` as nerfstudio's parsers read it: a ``.json`` file itself, else the folder's
    ``transforms.json``; file paths in it are relative to the json's folder."""
    path = Path(path)
    return path if path.suffix == ".json" else path / TRANSFORMS


def read_transforms(path: Path) -> dict[str, Any]:
    """The transforms file as a dict; a file that is missing, not JSON or not a JSON object is an
    ``InputError`` naming it (nerfstudio's parsers fail on it with a traceback)."""
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path} is not a transforms file (a JSON object)")
    return meta


def _frames(transforms: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    frames = meta.get("frames")
    if not isinstance(frames, list):
        raise InputError(f"{transforms} has no frames list")
    if not frames:
        raise InputError(f"{transforms} lists no frames")
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or not isinstance(frame.get("file_path"), str):
            raise InputError(f"frame {i} of {transforms} has no file_path")
        if "transform_matrix" not in frame:
            raise InputError(f"frame {i} ({frame['file_path']}) of {transforms} has no transform_matrix")
    return frames


def _number(value: Any, positive: bool = False) -> float | None:
    """``value`` as a finite float (positive if asked), or None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and (number > 0 or not positive) else None


def _check_intrinsics(transforms: Path, meta: dict, frames: list[dict], dataparser: Dataparser) -> None:
    if dataparser == "instant-ngp-data":
        # per-frame intrinsics are ignored; fl_y falls back to fl_x; w/h come from the first image
        if not any(key in meta for key in ("fl_x", "x_fov", "camera_angle_x")):
            raise InputError(
                f"{transforms} gives no focal length: instant-ngp-data needs fl_x, x_fov or camera_angle_x"
            )
        if "fl_x" not in meta and "w" not in meta:
            raise InputError(f"{transforms} gives a field of view but no w: instant-ngp-data needs both")
        checked = [(key, meta[key], meta) for key in ("fl_x", "fl_y", "cx", "cy", "w", "h") if key in meta]
    else:
        for key in INTRINSICS:
            if key not in meta:
                i = next((i for i, frame in enumerate(frames) if key not in frame), None)
                if i is not None:
                    raise InputError(
                        f"{transforms} gives no {key}, neither at the top nor in frame {i} "
                        f"({frames[i]['file_path']}): nerfstudio-data needs {', '.join(INTRINSICS)}"
                    )
        checked = [
            (key, source[key], source) for key in INTRINSICS for source in ([meta] if key in meta else frames)
        ]
        model = meta.get("camera_model")
        if model is not None and model not in CAMERA_MODELS:
            raise InputError(
                f"{transforms} has camera_model {model!r}: nerfstudio-data knows {', '.join(CAMERA_MODELS)}"
            )
    for key, value, source in checked:
        if _number(value, positive=key not in ("cx", "cy")) is None:
            where = "" if source is meta else f" of frame {source['file_path']}"
            raise InputError(f"{transforms} has {key} {value!r}{where}: expected a finite positive number")


def _check_poses(transforms: Path, frames: list[dict], dataparser: Dataparser) -> None:
    """Every pose a rigid camera-to-world of one shape: 4×4 with last row 0 0 0 1 (instant-ngp-data
    also takes 3×4; nerfstudio-data's orientation step multiplies 3×4 by each pose, so a 3×4 pose
    fails there and a wrong last row leaks into the rotation)."""
    shapes = ((4, 4), (3, 4)) if dataparser == "instant-ngp-data" else ((4, 4),)
    first_shape = None
    for i, frame in enumerate(frames):
        name = f"frame {i} ({frame['file_path']}) of {transforms}"
        try:
            pose = np.asarray(frame["transform_matrix"], dtype=float)
        except (TypeError, ValueError):
            pose = None
        if pose is None or pose.shape not in shapes:
            got = (
                "not a matrix of numbers"
                if pose is None or pose.ndim != 2
                else "×".join(map(str, pose.shape))
            )
            want = " or ".join(f"{r}×{c}" for r, c in shapes)
            raise InputError(f"{name} has a transform_matrix that is {got}: {dataparser} reads {want}")
        if first_shape is not None and pose.shape != first_shape:
            raise InputError(
                f"{name} has a {pose.shape[0]}×4 pose, frame 0 a {first_shape[0]}×4 one: "
                f"{dataparser} cannot stack them"
            )
        first_shape = pose.shape
        if not np.isfinite(pose).all():
            raise InputError(f"{name} has a non-finite pose (NaN or inf in transform_matrix)")
        rotation = pose[:3, :3]
        orth = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
        det = float(np.linalg.det(rotation))
        if orth > RIGID_TOL or abs(det - 1) > RIGID_TOL:
            raise InputError(
                f"{name} has a non-rigid pose: its rotation part has max |RᵀR − I| {orth:.3g} and "
                f"determinant {det:.4g} (a rotation: 0 and +1)"
            )
        if pose.shape == (4, 4) and np.abs(pose[3] - [0, 0, 0, 1]).max() > RIGID_TOL:
            raise InputError(
                f"{name} has a non-rigid pose: last row {pose[3].tolist()}, expected [0, 0, 0, 1]"
            )


class _Resolver:
    """Where nerfstudio's parsers look for a frame's files (``Nerfstudio._get_fname``,
    ``InstantNGP``): relative to the json's folder; nerfstudio-data reads ``images_<f>/<name>``
    (``masks_<f>/``, ``depths_<f>/``) instead when its downscale factor f is > 1, f given
    (``--downscale-factor``) or chosen from the first frame's image."""

    def __init__(self, root: Path, frames: list[dict], dataparser: Dataparser, downscale: int | None) -> None:
        self.root, self.dataparser = root, dataparser
        if dataparser == "instant-ngp-data":
            downscale = 1
        elif downscale is None:
            downscale = 1
            first = Path(frames[0]["file_path"])
            try:
                with Image.open(root / first) as image:
                    longest = max(image.size)
            except (OSError, UnidentifiedImageError):
                longest = 0  # reported below as missing or unreadable
            while (
                longest / downscale > MAX_AUTO_RESOLUTION
                and (root / f"images_{2 * downscale}" / first.name).exists()
            ):
                downscale *= 2
        self.downscale = downscale

    def __call__(self, file_path: str, prefix: str = "images_") -> Path:
        path = Path(file_path)
        if self.downscale > 1:
            return self.root / f"{prefix}{self.downscale}" / path.name
        if self.dataparser == "instant-ngp-data" and not (self.root / path).exists():
            return self.root / (file_path + ".png")  # its fallback
        return self.root / path


def _check_present(
    transforms: Path, frames: list[dict], resolve: _Resolver, dataparser: Dataparser
) -> list[Path]:
    """The frames' image paths; refuse missing images, masks or depth maps (one line: how many of
    how many, and the first)."""
    images = [resolve(frame["file_path"]) for frame in frames]
    lists: list[tuple[str, list[Path]]] = [("images", images)]
    for key, (what, prefix) in EXTRA_FILES.items():
        given = [resolve(frame[key], prefix) for frame in frames if isinstance(frame.get(key), str)]
        if given and len(given) < len(frames) and dataparser == "nerfstudio-data":
            raise InputError(
                f"{key} is given for {len(given)} of {len(frames)} frames of {transforms}: "
                "nerfstudio-data needs it for every frame or none"
            )
        lists.append((what, given))
    for what, paths in lists:
        missing = [path for path in paths if not path.is_file()]
        if missing:
            raise InputError(
                f"{len(missing)} of {len(paths)} {what} listed in {transforms} are missing "
                f"(first: {missing[0]})"
            )
    return images


def _check_splits(transforms: Path, meta: dict, images: list[Path], resolve: _Resolver) -> None:
    """nerfstudio-data's explicit splits: once one list is given every split needs one (it raises
    for a missing one when that split is read), and every name must be a frame's (it raises
    "Some filenames for split … were not found")."""
    given = [split for split in SPLITS if f"{split}_filenames" in meta]
    if not given:
        return
    known = set(images)
    for split in SPLITS:
        key = f"{split}_filenames"
        names = meta.get(key)
        if names is None:
            raise InputError(
                f"{transforms} has {given[0]}_filenames but no {key}: "
                f"nerfstudio-data then fails on the {split} split"
            )
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise InputError(f"{key} in {transforms} is not a list of file names")
        if split == "train" and not names:
            raise InputError(f"{key} in {transforms} is empty: nothing to train on")
        unknown = [name for name in names if resolve(name) not in known]
        if unknown:
            raise InputError(
                f"{key} in {transforms} names {len(unknown)} files that are not among its frames "
                f"(first: {unknown[0]})"
            )


def _expected_size(meta: dict, frame: dict, dataparser: Dataparser) -> tuple[float, float] | None:
    """The (w, h) an image must have, or None where the parser takes it from the image."""
    if dataparser == "instant-ngp-data":
        return (float(meta["w"]), float(meta["h"])) if "w" in meta and "h" in meta else None
    return float(meta.get("w", frame.get("w"))), float(meta.get("h", frame.get("h")))


def _size_fits(size: tuple[int, int], expected: tuple[float, float], downscale: int) -> bool:
    """nerfstudio scales w, h by 1/downscale and rounds down; ``images_<f>/`` folders are rounded
    either way by the tools that write them."""
    return all(
        math.floor(e / downscale) <= s <= math.ceil(e / downscale)
        for s, e in zip(size, expected, strict=True)
    )


def _open_image(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise InputError(f"{path} is not an image PIL can read") from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


def _decode(path: Path, image: Image.Image) -> None:
    """Decode the whole file (a truncated or corrupt one raises), JPEGs at 1/8 scale: libjpeg
    still reads every coded block but skips most of the inverse DCT and colour conversion."""
    image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as err:  # PIL's decoders raise all three
        raise InputError(f"image {path} cannot be decoded: {err}") from None


def _check_images(
    transforms: Path,
    meta: dict,
    frames: list[dict],
    images: list[Path],
    resolve: _Resolver,
    dataparser: Dataparser,
) -> None:
    first: tuple[Path, tuple[int, int]] | None = None
    masks = [
        resolve(frame["mask_path"], "masks_") if isinstance(frame.get("mask_path"), str) else None
        for frame in frames
    ]
    for frame, path, mask in zip(frames, images, masks, strict=True):
        with _open_image(path) as image:
            if image.mode not in IMAGE_MODES:
                raise InputError(
                    f"image {path} has mode {image.mode}: "
                    f"nerfstudio reads 8-bit {', '.join(IMAGE_MODES)} images"
                )
            size = image.size
            expected = _expected_size(meta, frame, dataparser)
            if expected is not None and not _size_fits(size, expected, resolve.downscale):
                w, h = (round(e / resolve.downscale) for e in expected)
                where = (
                    f"{transforms} gives w×h"
                    if resolve.downscale == 1
                    else f"{transforms}'s w×h / {resolve.downscale} is"
                )
                raise InputError(f"image {path} is {size[0]}×{size[1]} but {where} {w}×{h}")
            if expected is None and first is not None and size != first[1]:
                raise InputError(
                    f"image {path} is {size[0]}×{size[1]} but {first[0]} is {first[1][0]}×{first[1][1]}: "
                    f"{dataparser} needs one size for all images"
                )
            first = first or (path, size)
            _decode(path, image)
        if mask is not None:
            with _open_image(mask) as image:
                if image.size != size:
                    raise InputError(
                        f"mask {mask} is {image.size[0]}×{image.size[1]} "
                        f"but its image {path} is {size[0]}×{size[1]}"
                    )


def check_capture(
    path: Path, *, dataparser: Dataparser = "nerfstudio-data", downscale_factor: int | None = None
) -> None:
    """Refuse, with one line naming the file, a capture that ``dataparser`` would fail on after
    ``ns-train`` wrote its run folder, or read wrongly: unreadable json, no frames, missing images
    (masks, depth maps), missing intrinsics, non-rigid or non-finite poses, images whose size is
    not the given w×h, unreadable or truncated images, split lists naming unknown files.

    ``path`` is the folder with ``transforms.json`` or the json file; ``downscale_factor`` is
    nerfstudio-data's ``--downscale-factor`` (None: its automatic choice), which decides whether
    the images are read from ``images_<f>/``. Reads image headers and decodes JPEGs at reduced
    scale, so a capture of a hundred images is checked in a fraction of a second."""
    transforms = transforms_path(path)
    if not transforms.is_file():
        raise InputError(f"{transforms} not found: {dataparser} reads it")
    meta = read_transforms(transforms)
    frames = _frames(transforms, meta)
    _check_intrinsics(transforms, meta, frames, dataparser)
    _check_poses(transforms, frames, dataparser)
    resolve = _Resolver(transforms.parent, frames, dataparser, downscale_factor)
    images = _check_present(transforms, frames, resolve, dataparser)
    if dataparser == "nerfstudio-data":
        _check_splits(transforms, meta, images, resolve)
    _check_images(transforms, meta, frames, images, resolve, dataparser)


# ---------------------------------------------------------------------------------------------
# a downsized copy

CAPTURE_SUBSET_FILE = "capture_subset.json"
"""Written by ``write_capture_subset`` beside ``transforms.json``: the source, ``max_side`` and
the scale, so a benchmark can tell a folder that already is the subset it wants."""
CAPTURE_SCENE_FILE = "capture_scene.json"
"""Written by ``write_capture_scene``: marks the folder as a generated capture it may replace."""
CAPTURE_MARKERS = (CAPTURE_SUBSET_FILE, CAPTURE_SCENE_FILE)
SCALED_X = ("fl_x", "cx")
SCALED_Y = ("fl_y", "cy")


def _relative(transforms: Path, file_path: str) -> Path:
    path = Path(file_path)
    if path.is_absolute() or ".." in path.parts:
        raise InputError(
            f"{transforms} lists {file_path}, outside its folder: a copy could not keep the path"
        )
    return path


def _resized(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    return image if image.size == size else image.resize(size, resample)


def _save_like(image: Image.Image, source_format: str | None, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source_format == "JPEG":
        image.save(dest, format="JPEG", quality=95)
    else:
        image.save(dest, format=source_format or "PNG")


def _scale_intrinsics(entry: dict, old: tuple[int, int], new: tuple[int, int]) -> None:
    """fl_x, cx by new_w / w and fl_y, cy by new_h / h (the pixel grid's edges map to the new
    grid's edges under resize), w, h set to the new size; distortion and angles stay."""
    sx, sy = new[0] / old[0], new[1] / old[1]
    for keys, scale in ((SCALED_X, sx), (SCALED_Y, sy)):
        for key in keys:
            if key in entry:
                entry[key] = float(entry[key]) * scale
    if "w" in entry:
        entry["w"] = new[0]
    if "h" in entry:
        entry["h"] = new[1]


def _copy_extra(src: Path, dest: Path, size: tuple[int, int]) -> None:
    """A mask or depth map at the image's new size, nearest-neighbour (values are labels or
    depths, never blended); ``.npy`` depth maps are sampled the same way."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".npy":
        depth = np.load(src)
        rows = (np.arange(size[1]) + 0.5) * depth.shape[0] / size[1]
        cols = (np.arange(size[0]) + 0.5) * depth.shape[1] / size[0]
        np.save(dest, depth[rows.astype(int)][:, cols.astype(int)])
        return
    with _open_image(src) as image:
        _save_like(_resized(image, size, Image.Resampling.NEAREST), image.format, dest)


def write_capture_subset(src: Path, out: Path, max_side: int) -> Path:
    """A copy of the capture ``src`` (folder or json) in ``out`` with every image resized
    (Lanczos, same type) by one factor so that the longest side of all is ``max_side`` (never
    upscaled), its masks and depth maps likewise (nearest), and intrinsics scaled to match, at the
    top and per frame; everything else in ``transforms.json`` (splits, aabb_scale,
    applied_transform, …) is kept, paths stay relative. Records the source and scale in
    ``capture_subset.json``: CPU benchmarks on real captures at a size a CPU can afford."""
    if max_side < 1:
        raise InputError(f"--max-side must be >= 1, got {max_side}")
    check_capture(src, downscale_factor=1)
    transforms = transforms_path(src)
    root = transforms.parent
    if Path(out).resolve() == root.resolve():
        raise InputError(f"--out {out} is the source capture: choose another folder")
    check_replaceable(out, CAPTURE_MARKERS)
    meta = read_transforms(transforms)
    frames = meta["frames"]
    sizes = []
    for frame in frames:
        with _open_image(root / _relative(transforms, frame["file_path"])) as image:
            sizes.append(image.size)
    scale = min(1.0, max_side / max(max(size) for size in sizes))

    def new_size(size: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))

    if {size for size in sizes} != {sizes[0]} and any(key in meta for key in SCALED_X + SCALED_Y):
        raise InputError(f"{transforms} gives intrinsics for all frames, but its images differ in size")
    with staged_dir(out, overwrite=True) as stage:
        for frame, size in zip(frames, sizes, strict=True):
            rel = _relative(transforms, frame["file_path"])
            with _open_image(root / rel) as image:
                if scale == 1.0:
                    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(root / rel, stage / rel)
                else:
                    _save_like(
                        image.resize(new_size(size), Image.Resampling.LANCZOS), image.format, stage / rel
                    )
            _scale_intrinsics(frame, size, new_size(size))
            for key in EXTRA_FILES:
                if isinstance(frame.get(key), str):
                    extra = _relative(transforms, frame[key])
                    _copy_extra(root / extra, stage / extra, new_size(size))
        _scale_intrinsics(meta, sizes[0], new_size(sizes[0]))
        if isinstance(meta.get("ply_file_path"), str) and (root / meta["ply_file_path"]).is_file():
            ply = _relative(transforms, meta["ply_file_path"])
            (stage / ply).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / ply, stage / ply)
        write_json(stage / TRANSFORMS, meta)
        write_json(stage / CAPTURE_SUBSET_FILE, {"source": str(src), "max_side": max_side, "scale": scale})
    return Path(out)


def capture_subset_selection(folder: Path) -> dict | None:
    """What ``write_capture_subset`` recorded for ``folder`` (source, max_side, scale), or None
    for a folder it did not write."""
    path = Path(folder) / CAPTURE_SUBSET_FILE
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    return {key: meta.get(key) for key in ("source", "max_side", "scale")}


# ---------------------------------------------------------------------------------------------
# a synthetic capture

SCENE_FOV = math.radians(60.0)
"""Horizontal field of view of the synthetic capture: wide enough that walls fill the corners."""
SCENE_OBJECT_RADIUS = 0.5
SCENE_ROOM = 4.0
"""Half side of the room (a box centred on the object): well beyond the unit cube, also after
nerfstudio-data rescales the camera ring into [-1, 1]."""
SCENE_CAMERA_RADIUS = 2.0


def _room_colour(points: np.ndarray, axis: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Each of the six walls its own base colour, times a checker of period 1 (texture a model
    must place at the right depth)."""
    base = np.array(
        [[0.9, 0.3, 0.2], [0.2, 0.7, 0.9], [0.3, 0.9, 0.3], [0.9, 0.8, 0.2], [0.7, 0.4, 0.9], [0.8, 0.8, 0.8]]
    )[2 * axis + (side > 0)]
    checker = np.floor(points).sum(-1) % 2
    return base * (0.55 + 0.45 * checker[..., None])


def render_capture_view(c2w: np.ndarray, size: int, focal: float) -> np.ndarray:
    """RGB uint8 view of a sphere at the origin coloured ``(n + 1)/2`` inside a box room of
    textured walls; pixel centres and the OpenGL camera (looks down −z, y up) as nerfstudio's
    ray generator uses them."""
    v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    dirs = np.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -np.ones_like(u)], -1) @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origin = c2w[:3, 3]
    b = dirs @ origin
    disc = b**2 - (origin @ origin - SCENE_OBJECT_RADIUS**2)
    hit = disc > 0
    t_sphere = -b - np.sqrt(np.where(hit, disc, 0.0))
    normal = (origin + t_sphere[..., None] * dirs) / SCENE_OBJECT_RADIUS
    # from inside the box, the ray leaves through the wall of the nearest exit plane
    safe = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    t_walls = (np.sign(safe) * SCENE_ROOM - origin) / safe
    axis = t_walls.argmin(-1)
    t_room = np.take_along_axis(t_walls, axis[..., None], -1)[..., 0]
    points = origin + t_room[..., None] * dirs
    side = np.take_along_axis(dirs, axis[..., None], -1)[..., 0]
    rgb = np.where(hit[..., None], (normal + 1) / 2, _room_colour(points, axis, side))
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def write_capture_scene(out: Path, size: int = 24, views: int = 8, test_views: int = 2) -> Path:
    """A tiny synthetic capture in nerfstudio-data format for tests (no data needed): ``views``
    RGB PNGs of ``size``×``size`` from a ring of cameras around an object in a textured room,
    global pinhole intrinsics (``camera_model`` OPENCV, no distortion), and explicit split lists
    holding out ``test_views`` evenly spaced views (as val and test)."""
    if size < 1:
        raise InputError(f"--size must be >= 1, got {size}")
    if not 1 <= test_views < views:
        raise InputError(f"need 1 <= held-out views < views, got {test_views} of {views}")
    check_replaceable(out, CAPTURE_MARKERS)
    focal = 0.5 * size / math.tan(0.5 * SCENE_FOV)
    held_out = {math.floor((k + 0.5) * views / test_views) for k in range(test_views)}
    with staged_dir(out, overwrite=True) as stage:
        (stage / "images").mkdir()
        frames, names = [], []
        for i in range(views):
            azimuth = 2 * math.pi * i / views
            elevation = 0.25 + 0.2 * math.sin(3 * i)
            position = SCENE_CAMERA_RADIUS * np.array(
                [
                    math.cos(elevation) * math.cos(azimuth),
                    math.cos(elevation) * math.sin(azimuth),
                    math.sin(elevation),
                ]
            )
            c2w = look_at(position)
            name = f"images/frame_{i + 1:05d}.png"
            Image.fromarray(render_capture_view(c2w, size, focal)).save(stage / name)
            frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
            names.append(name)
        held = [name for i, name in enumerate(names) if i in held_out]
        meta = {
            "camera_model": "OPENCV",
            **{"fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size},
            "frames": frames,
            "train_filenames": [name for i, name in enumerate(names) if i not in held_out],
            "val_filenames": held,
            "test_filenames": held,
        }
        write_json(stage / TRANSFORMS, meta)
        write_json(
            stage / CAPTURE_SCENE_FILE,
            {"kind": "capture", "size": size, "views": views, "test_views": test_views},
        )
    return Path(out)
