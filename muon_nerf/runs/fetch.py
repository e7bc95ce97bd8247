"""``muon-data``: the public data behind the examples and benchmarks, fetched from its sources into
the layout of ``../shared/data`` and checked against the SHA-256 of the copies our numbers were
measured on.

    muon-data list                                  # every dataset: source, size, licence, fetch or manual
    muon-data fetch [NAME ...] [--to DIR]           # default: every fetchable dataset into ../shared/data

A file lands whole and verified or not at all: it is downloaded into memory, its SHA-256 compared
with the manifest's, and only then written to a temporary beside its place and renamed
(``runs/io.py``). A file already in place with the right sum is kept; one with another sum is
refused before anything is downloaded, and never replaced. Only data a URL serves byte-identical
to our copies is in ``MANIFEST`` with files; the rest (downsampled, remeshed, or never to be
redistributed) is listed as manual, with what to do instead.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import re
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Union

import tyro

from muon_nerf.fit.errors import InputError, run_cli
from muon_nerf.runs.cli import cli
from muon_nerf.runs.io import check_writable_parent, write_files

PROG = "muon-data"
DEFAULT_DIR = Path("../shared/data")
USER_AGENT = "muon-nerf (muon-data fetch)"
ARCHIVE_LIMIT = 1 << 30
"""The most bytes read from an archive's URL (a plain file's limit is its own size)."""
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: where it lands, its bytes' SHA-256 and size, where it comes from."""

    path: str
    """Where it lands under DIR (the layout of ../shared/data), with ``/`` separators."""
    sha256: str
    """Of our copy, the one the numbers were measured on (``../shared/data/SHA256SUMS``)."""
    size: int
    """Bytes of our copy."""
    url: str
    member: str | None = None
    """The file's path inside the archive at ``url`` (.tar.gz, .tgz, .tar or .zip), if it is one."""

    def __post_init__(self) -> None:
        parts = PurePosixPath(self.path).parts
        if not parts or PurePosixPath(self.path).is_absolute() or ".." in parts or "\\" in self.path:
            raise InputError(f"data file path must be relative, inside DIR, got {self.path!r}")
        if not SHA256.match(self.sha256):
            raise InputError(f"{self.path}: sha256 must be 64 lowercase hex digits, got {self.sha256!r}")


@dataclass(frozen=True)
class Dataset:
    """A named set of files: fetchable when it has ``files``, else ``manual`` says what to do."""

    name: str
    layout: str
    """What lands under DIR, in words (paths)."""
    what: str
    licence: str
    source: str
    """Where it comes from: a page, or the URL pattern of ``files``."""
    files: tuple[DataFile, ...] = ()
    size: int = 0
    """Bytes of our copy (manual datasets; a fetchable one's is the sum of its files')."""
    verified: str = ""
    """Whether, and how, its URLs were checked to serve our copies' bytes."""
    manual: str = ""
    """What to do instead, when no URL serves our copies byte-identical (then ``files`` is empty)."""

    def __post_init__(self) -> None:
        if bool(self.files) == bool(self.manual):
            raise InputError(
                f"dataset {self.name!r} needs either files to fetch or a manual instruction, one of the two"
            )

    def total_size(self) -> int:
        return sum(f.size for f in self.files) if self.files else self.size


KODAK = {
    "kodim01": ("a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd", 736501),
    "kodim02": ("4f4b74a79237e311d72cad958237b5f7088d8bce1c82305ebefe1a70e3022dfd", 617995),
    "kodim03": ("e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db", 502888),
    "kodim04": ("e3b946107c5d3441c022f678d0c3caf1e224d81b1604ba840a4f88e562de61aa", 637432),
    "kodim05": ("10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53", 785610),
    "kodim06": ("363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18", 618959),
    "kodim07": ("b77d3f006f42414bb242222e0482e750c0fb9e5ee8d4bed2f6f11c5605fe54a4", 566322),
    "kodim08": ("ba23983c76b4832ee0e8af0592664756841a16779acd69f792e268fb6d13d6e7", 788470),
    "kodim09": ("6a4361c2fc194feb4edaa9f9a4a0620fb9943e460ac7fdf037fb0f6dd6607a7d", 582899),
    "kodim10": ("9dfb70f5867c29ff9ed6313683f19b3d867849e40fbc0c4c54a4a89df341cf23", 593463),
    "kodim11": ("7936814b58b5387fce2e4e2488b4ec830dadd95fa9520f358ddb30990b50f2b6", 621023),
    "kodim12": ("d78c37c2f04f23761ed2367dd77e2db584ddd4c3950833fecf89f199a8126980", 531024),
    "kodim13": ("bc34a3ce58dea09dce1704c997171602de90cb34d0c8503a988b77f473d39b08", 822712),
    "kodim14": ("55a94550ff18f3246c4074fd32b77b0c74447c26b6ad274d564d999c0450ba6e", 692201),
    "kodim15": ("7538cbb80cb9103606c48b806eae57d56c885c7f90b9b3be70a41160f9cbb683", 612582),
    "kodim16": ("a89c7268ccd4718ba424a99fc4643c572cf692ca6eae887185ceb4e9f11d2e54", 534247),
}
"""SHA-256 and size of our kodim01–16."""

SIREN_COMMIT = "4df34baee3f0f9c8f351630992c1fe1f69114b5f"
"""The tip of vsitzmann/siren's branch master (2020-07-28), where data/gt_bach.wav was checked."""
BUNNY_URL = "https://graphics.stanford.edu/pub/3Dscanrep/bunny.tar.gz"
BUNNY = {
    "bun_zipper.ply": ("e5bfa06a738e5c59e4c147c6edc17df99e09735daa3432391e841fba825a2a33", 3033193),
    "bun_zipper_res2.ply": ("8faa052bb08cf1625eec97b6508baceee11eec9cf28f83f6a9d4547ab15d7761", 658744),
    "bun_zipper_res3.ply": ("d628625d14fbe5deecb123536b515405c522984d43488cc24f91980eb75edadc", 148524),
    "bun_zipper_res4.ply": ("2ca4b1c9206eb2768f10eeb06f30d2dcf576c21f69243335660c896605d1f0ab", 34359),
}
"""SHA-256 and size of our copies of the tarball's ``bunny/reconstruction/`` meshes."""

UNVERIFIED = "not verified from here (no network) to serve our bytes; a download that does not is refused"

MANIFEST: tuple[Dataset, ...] = (
    Dataset(
        name="kodak",
        layout="kodak/kodim01.png … kodim16.png",
        what="Kodak PhotoCD set, kodim01–16, 768×512 / 512×768 RGB PNG",
        licence="Eastman Kodak, released for unrestricted research use",
        source="https://r0k.us/graphics/kodak/",
        files=tuple(
            DataFile(f"kodak/{name}.png", sha, size, f"https://r0k.us/graphics/kodak/kodak/{name}.png")
            for name, (sha, size) in KODAK.items()
        ),
        verified=UNVERIFIED,
    ),
    Dataset(
        name="audio",
        layout="audio/gt_bach.wav",
        what="6.99 s Bach excerpt, mono, 44.1 kHz",
        licence="MIT (the SIREN repository)",
        source="https://github.com/vsitzmann/siren",
        files=(
            DataFile(
                "audio/gt_bach.wav",
                "023940a1bcc534349e16ff46f360ffbfffa993842961dbed955c168fd2f38190",
                1232886,
                f"https://raw.githubusercontent.com/vsitzmann/siren/{SIREN_COMMIT}/data/gt_bach.wav",
            ),
        ),
        verified=f"verified: data/gt_bach.wav at vsitzmann/siren@{SIREN_COMMIT[:7]} (branch master's tip) "
        "has our copy's SHA-256, read from a snapshot of the repository (the URL itself was not downloaded)",
    ),
    Dataset(
        name="bunny",
        layout="shapes/bunny/bun_zipper.ply, bun_zipper_res2/3/4.ply",
        what="Stanford Bunny zipper reconstruction (35,947 vertices) and its coarser _res2/3/4",
        licence="Stanford 3D Scanning Repository: credit the Stanford Computer Graphics Laboratory",
        source=BUNNY_URL,
        files=tuple(
            DataFile(f"shapes/bunny/{name}", sha, size, BUNNY_URL, member=f"bunny/reconstruction/{name}")
            for name, (sha, size) in BUNNY.items()
        ),
        verified=UNVERIFIED,
    ),
    Dataset(
        name="ct",
        layout="ct/chest.png",
        what="chest CT slice, 435×326, 16-bit grayscale",
        licence="MIT (the WIRE repository)",
        source="https://github.com/vishwa91/wire (README: data folder on Dropbox)",
        size=189857,
        manual="WIRE's git has no data/ (git-ignored): download chest.png from the Dropbox data folder its "
        "README links, then check its SHA-256 (docs/data.md); the same bytes are in "
        "github.com/AlirezaMorsali/STAF at commit 46f3da5 (a pull request's, on no branch)",
    ),
    Dataset(
        name="div2k",
        layout="div2k/tancik512_00.png, tancik512_01.png, 0001_1216x832.png",
        what="DIV2K images downsampled to 512×512 (the Fourier-features and FINER papers'); 0001 at 1216×832",
        licence="DIV2K: academic research use",
        source="https://data.vision.ee.ethz.ch/cvl/DIV2K/",
        size=2924598,
        manual="downsample DIV2K images as described; a resampled PNG's bytes depend on the resizer and "
        "the encoder, so yours need not match our SHA-256 (../shared/data/SHA256SUMS)",
    ),
    Dataset(
        name="armadillo",
        layout="shapes/armadillo/armadillo_50k.obj",
        what="Stanford Armadillo remeshed to 49,990 vertices, watertight",
        licence="Stanford 3D Scanning Repository; remesh from an MIT-licensed repository",
        source="https://graphics.stanford.edu/data/3Dscanrep/",
        size=3562197,
        manual="remesh the Stanford Armadillo to a watertight ~50k-vertex mesh; yours need not match our "
        "file byte for byte",
    ),
    Dataset(
        name="lego",
        layout="nerf_synthetic/lego/ (transforms_{train,val,test}.json, train/ val/ test/)",
        what="NeRF-synthetic lego, 2× box-downsampled to 400×400 RGBA, Blender format",
        licence="see the NeRF repository",
        source="nerf_synthetic.zip of https://github.com/bmild/nerf",
        size=51519759,
        manual="take lego/ from nerf_synthetic.zip and box-downsample its images 2× (800 → 400 px); "
        "the PNGs' bytes need not match ours",
    ),
    Dataset(
        name="captures",
        layout="captures/fruit/, captures/stitch/ (images/, transforms.json)",
        what="real phone captures with COLMAP poses, downsized 2×",
        licence="none stated: benchmark use only, never redistributed",
        source="github.com/tusharparimi/fruit-NeRF @ 236cb01, github.com/lambkin108/TensoRF_mydata @ 7df228d",
        size=3574784 + 6082672,
        manual="never redistributed (no data licence): take them from the two repositories at those commits "
        "for your own benchmark runs and downsize 2×; never copy them into the project",
    ),
)
"""Every dataset the examples and benchmarks read, in the order ``muon-data list`` prints them."""


def load_manifest(path: Path) -> tuple[Dataset, ...]:
    """A manifest from a JSON file: a list of datasets, each an object of ``Dataset``'s fields with
    ``files`` a list of objects of ``DataFile``'s (a mirror's URLs, or a test's ``file://`` ones)."""
    try:
        entries = json.loads(Path(path).read_text())
        datasets = tuple(
            Dataset(**{**entry, "files": tuple(DataFile(**f) for f in entry.get("files", ()))})
            for entry in entries
        )
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise InputError(f"cannot read manifest {path}: {err}") from None
    names = [d.name for d in datasets]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"manifest {path} must name each dataset once, got {names}")
    return datasets


def select(manifest: Sequence[Dataset], names: Iterable[str]) -> list[Dataset]:
    """The datasets ``names`` asks for (none: every fetchable one); refuses an unknown name or a
    manual dataset, naming the choices."""
    by_name = {d.name: d for d in manifest}
    names = list(dict.fromkeys(names))
    fetchable = ", ".join(d.name for d in manifest if d.files) or "none"
    for name in names:
        if name not in by_name:
            manual = ", ".join(d.name for d in manifest if not d.files) or "none"
            raise InputError(
                f"unknown dataset {name!r}: fetchable are {fetchable}; manual ({PROG} list) are {manual}"
            )
        if not by_name[name].files:
            raise InputError(f"{name} cannot be fetched byte-identical: {by_name[name].manual}")
    return [by_name[n] for n in names] if names else [d for d in manifest if d.files]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_place(target: Path, expected: DataFile) -> bool:
    """Whether ``target`` already holds ``expected`` (True) or is missing (False); refuses a
    target with other bytes, or that is not a file, in one line: it is never replaced."""
    if not target.exists():
        if target.is_symlink():
            raise InputError(f"{target} is a broken link: not replaced; remove it, then fetch again")
        return False
    if not target.is_file():
        raise InputError(f"{target} exists and is not a file: not replaced")
    got = sha256_of(target.read_bytes())
    if got != expected.sha256:
        raise InputError(
            f"{target} exists with SHA-256 {got}, not the expected {expected.sha256}: not replaced; "
            "move it away, then fetch again"
        )
    return True


def reason(err: BaseException, timeout: float) -> str:
    """Why a download failed, in a few words."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    cause = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} s (--timeout)"
    return str(cause) or type(cause).__name__


def download(url: str, limit: int, timeout: float) -> bytes:
    """The bytes at ``url`` (at most ``limit``), or an ``OSError`` naming it."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(limit + 1)
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise OSError(f"cannot download {url}: {reason(err, timeout)}; nothing was written") from None
    if len(data) > limit:
        raise OSError(f"{url} sent more than the expected {limit} bytes: not written")
    return data


def archive_members(data: bytes, url: str, members: Iterable[str]) -> dict[str, bytes]:
    """The bytes of ``members`` of the archive ``data`` (.tar, .tar.gz/.tgz or .zip), read in
    memory: nothing of the archive is unpacked to disk."""
    out: dict[str, bytes] = {}
    member = ""
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in members:
                    out[member] = archive.read(member)
            return out
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in members:
                handle = archive.extractfile(member)
                if handle is None:  # a folder or a link
                    raise KeyError(member)
                out[member] = handle.read()
        return out
    except KeyError:
        raise InputError(f"{url} has no file {member}: nothing was written") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(
            f"{url} is not a readable .tar.gz or .zip archive ({err}): nothing was written"
        ) from None


def fetch(datasets: Sequence[Dataset], to: Path, timeout: float = 60.0) -> list[Path]:
    """Fetch every file of ``datasets`` into ``to`` that is not there yet, each URL once, each file
    checked against its SHA-256 before it is written; the files written, in order. Existing
    files are checked first, all of them, before anything is downloaded."""
    to = Path(to)
    todo: dict[str, list[DataFile]] = {}
    for dataset in datasets:
        for f in dataset.files:
            if in_place(to / f.path, f):
                print(f"kept     {to / f.path}  (already there, SHA-256 matches)")
            else:
                check_writable_parent(to / f.path)
                todo.setdefault(f.url, []).append(f)
    written: list[Path] = []
    try:
        for url, files in todo.items():
            archived = any(f.member is not None for f in files)
            data = download(url, ARCHIVE_LIMIT if archived else max(f.size for f in files), timeout)
            members = archive_members(data, url, [f.member for f in files if f.member]) if archived else {}
            verified: dict[Path, bytes] = {}
            for f in files:
                body = members[f.member] if f.member is not None else data
                got = sha256_of(body)
                if got != f.sha256:
                    where = url if f.member is None else f"{url} ({f.member})"
                    raise InputError(
                        f"{where}: SHA-256 {got}, not the expected {f.sha256} of {f.path}: not written"
                    )
                if not in_place(to / f.path, f):  # it may have appeared during the download
                    verified[to / f.path] = body
            write_files(verified)
            for path in verified:
                print(f"fetched  {path}  ({len(verified[path]) / 1e6:.2f} MB, SHA-256 matches)  from {url}")
            written += verified
    except KeyboardInterrupt as err:
        err.args = (f"{len(written)} files fetched before it were kept, whole; no file was half-written",)
        raise
    return written


@dataclass
class Fetch:
    """Download public datasets from their sources into DIR (the layout of ../shared/data), each
    file checked against the SHA-256 of our copy before it is written. A file already there with
    the right sum is kept; one with another sum is refused, never replaced."""

    names: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="[NAME ...]")] = ()
    """Datasets to fetch (muon-data list names them); none: every fetchable one."""
    to: Annotated[Path, tyro.conf.arg(metavar="DIR")] = DEFAULT_DIR
    """The folder to fetch into."""
    timeout: float = 60.0
    """Seconds a download may wait for the server before it is abandoned."""
    manifest: Path | None = None
    """A JSON manifest to use instead of the built-in one (a mirror's URLs, or a test's)."""


@dataclass
class ListData:
    """Print every dataset: what lands where, its size, licence and source URLs, and whether a
    download is byte-identical to our copy (fetch) or has to be made by hand (manual)."""

    manifest: Path | None = None
    """A JSON manifest to use instead of the built-in one."""


Command = Union[  # noqa: UP007  (tyro reads the subcommands from a typing.Union)
    Annotated[Fetch, tyro.conf.subcommand("fetch")],
    Annotated[ListData, tyro.conf.subcommand("list")],
]


def sources(dataset: Dataset) -> str:
    urls = list(dict.fromkeys(f.url for f in dataset.files))
    if not urls:
        return dataset.source
    return urls[0] if len(urls) == 1 else f"{urls[0]} … {urls[-1].rsplit('/', 1)[-1]} ({len(urls)} URLs)"


def describe(manifest: Sequence[Dataset]) -> str:
    """What ``muon-data list`` prints: a block per dataset."""
    blocks = []
    for d in manifest:
        kind = "fetch" if d.files else "manual"
        rows = [
            f"{d.name}  [{kind}]  {d.total_size() / 1e6:.1f} MB  {d.layout}",
            f"  what       {d.what}",
            f"  licence    {d.licence}",
            f"  source     {sources(d)}",
        ]
        if d.files:
            rows.append(
                "  identical  yes: every file is checked against our copy's SHA-256 before it is written"
            )
            rows.append(f"  URL        {d.verified}")
        else:
            rows.append(f"  identical  no, make it by hand: {d.manual}")
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks)


def main(args: list[str]) -> None:
    command = cli(Command, args, PROG)
    manifest = MANIFEST if command.manifest is None else load_manifest(command.manifest)
    if isinstance(command, ListData):
        print(describe(manifest))
        return
    datasets = select(manifest, command.names)
    if command.timeout <= 0:
        raise InputError(f"--timeout must be > 0 seconds, got {command.timeout}")
    written = fetch(datasets, command.to, command.timeout)
    kept = sum(len(d.files) for d in datasets) - len(written)
    print(f"{len(written)} fetched, {kept} already there, in {command.to}")
    manual = [d.name for d in manifest if not d.files]
    if manual and not command.names:
        print(f"manual, not fetched: {', '.join(manual)} ({PROG} list says how to make them)")


def entrypoint() -> None:
    run_cli(lambda: main(sys.argv[1:]))


if __name__ == "__main__":
    entrypoint()
