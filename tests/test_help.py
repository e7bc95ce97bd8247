"""``--help`` of every task command: the task's own flags first, help text on every flag, no raw
reStructuredText/Markdown (tyro prints docstrings as written)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re

import pytest

from muon_nerf.tasks import EXTRA_MODULES, TASKS, task_config

MAIN_FLAG = {"image": "--image", "audio": "--audio", "ct": "--image", "sisr": "--image", "sdf": "--mesh"}
"""The flag naming each task's input."""

MARKUP = re.compile(r"`|:(?:class|func|meth|mod|attr|ref):|\\n|\*\*|(?<![\w*])\*[^\s*][^*\n]*\*(?![\w*])")


def need_extra(task: str) -> None:
    extra = TASKS[task].extra
    for module in EXTRA_MODULES[extra] if extra else ():
        pytest.importorskip(module, reason=f"task {task} needs the [{extra}] extra")


def run_help(parse, monkeypatch) -> str:
    """What ``parse(["--help"])`` prints, 80 columns wide, asserting it exits 0."""
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), pytest.raises(SystemExit) as stop:
        parse(["--help"])
    assert stop.value.code in (0, None), out.getvalue()
    return out.getvalue()


def fit_help(task: str, monkeypatch) -> str:
    from muon_nerf.signals.cli import parse

    return run_help(lambda args: parse(task, args), monkeypatch)


def sdf_help(monkeypatch) -> str:
    from muon_nerf.sdf.cli import parse_fit

    return run_help(parse_fit, monkeypatch)


def sweep_help(task: str, monkeypatch) -> str:
    from muon_nerf.sweep.cli import parse  # parsing needs no Ray; running a sweep does

    return run_help(lambda args: parse(task, args), monkeypatch)


def options(text: str) -> list[tuple[str, str, str]]:
    """``(section, invocation, help)`` of every option in tyro's plain (non-terminal) help.

    A section is a title line (`` field.encoding options``) and a rule, then optionally a
    description closed by an indented rule, then its options: ``  --flag METAVAR  help…`` with
    the help wrapped onto lines indented further (or all of it there, under a long invocation).
    """
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        title = re.fullmatch(r" (\S.*?)\s*", line)
        if title and not title[1].startswith("-"):
            sections.append((title[1], []))
        elif sections:
            sections[-1][1].append(line)
    entries: list[list[str]] = []
    for section, lines in sections:
        rules = [i for i, line in enumerate(lines) if re.match(r"  -{10,}", line)]
        for line in lines[rules[0] + 1 :] if rules else lines:
            if re.fullmatch(r" +-{10,}\s*", line):
                continue
            option = re.fullmatch(r"  (-\S.*?)(?:\s{2,}(.*?))?\s*", line)
            if option:
                entries.append([section, option[1], option[2] or ""])
            elif entries and entries[-1][0] == section and re.match(r" {5,}\S", line):
                entries[-1][2] += " " + line.strip()
    return [tuple(e) for e in entries]


def check_help(text: str, main_flag: str) -> None:
    opts = options(text)
    flags = [inv.split()[0].rstrip(",") for _, inv, _ in opts]
    assert len(opts) > 40 and len(set(flags)) == len(flags), flags
    for shared in ("--arch", "--steps", "--muon-lr"):
        assert flags.index(main_flag) < flags.index(shared), f"{main_flag} is listed after {shared}"
    missing = [
        (section, inv)
        for section, inv, helptext in opts
        if not re.sub(r"\((?:default|fixed to):[^)]*\)|\(required\)", "", helptext).strip()
    ]
    assert not missing, f"flags without help text: {missing}"
    markup = [line.strip() for line in text.splitlines() if MARKUP.search(line)]
    assert not markup, f"raw markup in --help: {markup}"


@pytest.mark.parametrize("task", ["image", "audio", "ct", "sisr"])
def test_muon_fit_help(task, monkeypatch):
    check_help(fit_help(task, monkeypatch), MAIN_FLAG[task])


def test_muon_sdf_fit_help(monkeypatch):
    need_extra("sdf")
    check_help(sdf_help(monkeypatch), "--mesh")


def test_muon_sweep_help(monkeypatch):
    text = sweep_help("image", monkeypatch)
    check_help(text, "--image")
    flags = [inv.split()[0].rstrip(",") for _, inv, _ in options(text)]
    assert flags.index("--image") < flags.index("--grid")


@pytest.mark.parametrize("task", list(TASKS))
def test_task_flags_lead_the_field_order(task):
    """What puts them first: ``data`` keeps ``TaskConfig``'s first place when a task redeclares it
    (tyro lists flags in field order); construction and presets go by name, so nothing else moves."""
    need_extra(task)
    cls = task_config(task)
    names = [f.name for f in dataclasses.fields(cls)]
    assert names[:4] == ["data", "field", "optim", "fit"], names
    assert dataclasses.is_dataclass(cls().data)


def test_options_parser_reads_wrapped_and_bare_help():
    text = (
        " options\n ------------\n  -h, --help  show this help and exit\n"
        "  --long-flag-name {a,b}\n                 Wrapped help. (default:\n                 a)\n"
        "  --bare INT   (default: 3)\n\n"
        " data options\n ------------\n  A description with\n  --a-flag-looking line.\n  ------------\n"
        "  --image PATH  The image. (default: None)\n"
    )
    assert options(text) == [
        ("options", "-h, --help", "show this help and exit"),
        ("options", "--long-flag-name {a,b}", " Wrapped help. (default: a)"),
        ("options", "--bare INT", "(default: 3)"),
        ("data options", "--image PATH", "The image. (default: None)"),
    ]


def test_muon_fit_help_names_every_other_front_end_and_its_extra(monkeypatch, capsys):
    """A core-only install has no ``ns-train`` at all (nerfstudio brings it): ``muon-fit --help``
    is where a newcomer learns which extra brings which command."""
    from muon_nerf.signals.cli import entrypoint

    monkeypatch.setattr("sys.argv", ["muon-fit", "--help"])
    entrypoint()
    out = capsys.readouterr().out
    assert out.startswith("usage: muon-fit {image,audio,ct,sisr}")
    extras = {"muon-sdf": "[sdf]", "muon-sweep": "[sweep]", "ns-train muon-nerf": "[nerf]"}
    for command, extra in extras.items():
        (line,) = [line for line in out.splitlines() if line.strip().startswith(command)]
        assert line.rstrip().endswith(extra), line
    assert max(len(line) for line in out.splitlines()[1:]) <= 100
