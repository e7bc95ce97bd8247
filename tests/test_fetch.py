"""``muon-data`` (``muon_nerf/runs/fetch.py``): a file lands whole and with the right SHA-256, or
not at all; a file already in place is kept when its sum is right and never replaced when it is
not. Sources are ``file://`` URLs (urllib opens them), so no test touches the network."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from muon_nerf.fit.errors import InputError
from muon_nerf.runs import fetch as fetch_module
from muon_nerf.runs.fetch import MANIFEST, DataFile, Dataset, fetch, load_manifest, main, select

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source(tmp_path: Path, name: str, data: bytes) -> str:
    """A file ``name`` holding ``data`` in a source folder, as a ``file://`` URL."""
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def toy(*files: DataFile, name: str = "toy") -> Dataset:
    return Dataset(name=name, layout="", what="", licence="", source="", files=files)


def everything(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden temporaries included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_a_good_fetch_lands_with_the_right_sum(tmp_path, capsys):
    data = b"kodim" * 1000
    url = source(tmp_path, "kodim01.png", data)
    to = tmp_path / "data"
    written = fetch([toy(DataFile("kodak/kodim01.png", sha256(data), len(data), url))], to)
    assert written == [to / "kodak" / "kodim01.png"]
    assert sha256((to / "kodak" / "kodim01.png").read_bytes()) == sha256(data)
    assert everything(to) == ["kodak/kodim01.png"]  # no temporary left beside it
    assert f"from {url}" in capsys.readouterr().out


@pytest.mark.parametrize("sent", [b"not the expected bytes", b"kodim" * 1000 + b"more"])
def test_a_wrong_sum_or_size_is_refused_and_leaves_no_file(tmp_path, sent):
    expected = b"kodim" * 1000
    url = source(tmp_path, "kodim01.png", sent)
    to = tmp_path / "data"
    with pytest.raises(InputError if len(sent) < len(expected) else OSError) as err:
        fetch([toy(DataFile("kodak/kodim01.png", sha256(expected), len(expected), url))], to)
    message = str(err.value)
    assert url in message and "not written" in message and "\n" not in message
    assert not to.exists()  # not even the folders: the check that DIR is writable removed what it made


def test_a_failed_download_names_its_url_and_writes_nothing(tmp_path):
    url = (tmp_path / "src" / "missing.wav").as_uri()
    to = tmp_path / "data"
    with pytest.raises(OSError, match="cannot download " + url):
        fetch([toy(DataFile("audio/gt_bach.wav", "0" * 64, 10, url))], to)
    assert not to.exists()


def test_an_existing_correct_file_is_kept_without_a_download(tmp_path, capsys):
    data = b"bach" * 100
    to = tmp_path / "data"
    target = to / "audio" / "gt_bach.wav"
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    before = os.stat(target)
    missing = (tmp_path / "src" / "gone.wav").as_uri()  # a download would fail
    written = fetch([toy(DataFile("audio/gt_bach.wav", sha256(data), len(data), missing))], to)
    assert written == []
    after = os.stat(target)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert f"kept     {target}" in capsys.readouterr().out


def test_an_existing_wrong_file_is_refused_before_any_download_and_left_untouched(tmp_path, monkeypatch):
    good = b"chest" * 50
    to = tmp_path / "data"
    wrong = to / "ct" / "chest.png"
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes(b"someone else's file")
    other = DataFile("audio/gt_bach.wav", sha256(good), len(good), source(tmp_path, "bach.wav", good))
    downloads = []
    monkeypatch.setattr(fetch_module, "download", lambda *a: downloads.append(a) or good)
    with pytest.raises(InputError) as err:
        fetch([toy(other, DataFile("ct/chest.png", sha256(good), len(good), other.url))], to)
    message = str(err.value)
    assert str(wrong) in message and sha256(b"someone else's file") in message and "not replaced" in message
    assert wrong.read_bytes() == b"someone else's file"
    assert downloads == [] and everything(to) == ["ct/chest.png"]


def tarball(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("pack, suffix", [(tarball, ".tar.gz"), (zipped, ".zip")])
def test_archive_members_are_extracted_from_one_download(tmp_path, monkeypatch, pack, suffix):
    members = {
        "bunny/reconstruction/bun_zipper.ply": b"ply\n" + b"1 2 3\n" * 200,
        "bunny/reconstruction/bun_zipper_res4.ply": b"ply\n" + b"4 5 6\n" * 20,
        "bunny/data/bun000.ply": b"a range scan not asked for",
    }
    url = source(tmp_path, "bunny" + suffix, pack(members))
    files = [
        DataFile(f"shapes/bunny/{Path(m).name}", sha256(members[m]), len(members[m]), url, member=m)
        for m in list(members)[:2]
    ]
    downloads = []
    real = fetch_module.download
    monkeypatch.setattr(fetch_module, "download", lambda *a: downloads.append(a[0]) or real(*a))
    to = tmp_path / "data"
    fetch([toy(*files)], to)
    assert downloads == [url]
    assert everything(to) == ["shapes/bunny/bun_zipper.ply", "shapes/bunny/bun_zipper_res4.ply"]
    for f, m in zip(files, list(members)[:2], strict=True):
        assert (to / f.path).read_bytes() == members[m]
    missing = DataFile("shapes/bunny/x.ply", "0" * 64, 1, url, member="bunny/reconstruction/x.ply")
    with pytest.raises(InputError, match="has no file bunny/reconstruction/x.ply"):
        fetch([toy(missing)], to)


def test_an_unknown_or_manual_name_is_refused_naming_the_choices():
    fetchable = [d.name for d in MANIFEST if d.files]
    manual = [d.name for d in MANIFEST if not d.files]
    assert fetchable and manual
    with pytest.raises(InputError) as err:
        select(MANIFEST, ["kodak", "nosuch"])
    assert "'nosuch'" in str(err.value) and all(name in str(err.value) for name in fetchable + manual)
    with pytest.raises(InputError, match="captures cannot be fetched byte-identical: never redistributed"):
        select(MANIFEST, ["captures"])
    assert [d.name for d in select(MANIFEST, [])] == fetchable
    assert [d.name for d in select(MANIFEST, ["bunny", "kodak", "bunny"])] == ["bunny", "kodak"]


def test_a_manifest_path_outside_the_folder_is_refused(tmp_path):
    bad = [{"name": "x", "layout": "", "what": "", "licence": "", "source": "", "files": []}]
    bad[0]["files"] = [{"path": "../outside.png", "sha256": "0" * 64, "size": 1, "url": "file:///x"}]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"must be relative, inside DIR, got '\.\./outside\.png'"):
        load_manifest(path)


def test_list_names_every_dataset_its_source_and_whether_it_is_fetchable(capsys):
    main(["list"])
    out = capsys.readouterr().out
    for d in MANIFEST:
        assert f"{d.name}  [{'fetch' if d.files else 'manual'}]" in out
    assert MANIFEST[1].files[0].url in out and "never redistributed" in out


def test_the_cli_refuses_a_wrong_sum_in_one_error_line(tmp_path):
    """``muon-data`` itself (the console script): exit 2, one ``error:`` line naming the URL."""
    url = source(tmp_path, "kodim01.png", b"changed upstream")
    manifest = [
        {"name": "kodak", "layout": "kodak/", "what": "", "licence": "", "source": "", "files": []},
    ]
    manifest[0]["files"] = [{"path": "kodak/kodim01.png", "sha256": sha256(b"ours"), "size": 16, "url": url}]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    command = Path(sys.executable).parent / "muon-data"
    assert command.is_file(), "pip install -e . installs the muon-data console script"
    args = [str(command), "fetch", "kodak", "--to", str(tmp_path / "data"), "--manifest", "manifest.json"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {url}: SHA-256 {sha256(b'changed upstream')}")
    assert not (tmp_path / "data").exists() or everything(tmp_path / "data") == []


@pytest.mark.skipif(not (SHARED / "SHA256SUMS").is_file(), reason="no ../shared/data beside the checkout")
def test_the_manifest_holds_the_sums_and_sizes_of_our_copies():
    """Every fetchable file's SHA-256 is the one in ../shared/data/SHA256SUMS (the copies the
    numbers were measured on), and its size is our copy's."""
    sums = {}
    for line in (SHARED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.removeprefix("./")] = digest
    files = [f for d in MANIFEST for f in d.files]
    assert len(files) == 21
    for f in files:
        assert sums.get(f.path) == f.sha256, f.path
        assert (SHARED / f.path).stat().st_size == f.size, f.path
