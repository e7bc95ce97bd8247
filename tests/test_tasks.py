"""The one task registry: every tool finds a task's config by name through ``muon_nerf.tasks``."""

from __future__ import annotations

import pytest

from muon_nerf.fit.errors import InputError
from muon_nerf.runs.task import TaskConfig
from muon_nerf.signals.image import ImageTask
from muon_nerf.tasks import EXTRA_MODULES, FIT_TASKS, TASKS, require_extra, task_config


def test_registry_names_every_task_and_its_command():
    assert list(TASKS) == ["image", "audio", "ct", "sisr", "sdf"]
    assert FIT_TASKS == ("image", "audio", "ct", "sisr")  # muon-fit's; SDF has muon-sdf
    assert TASKS["sdf"].command == "muon-sdf fit" and TASKS["sdf"].extra == "sdf"
    assert all(TASKS[t].command == f"muon-fit {t}" and TASKS[t].extra is None for t in FIT_TASKS)
    assert task_config("image") is ImageTask


@pytest.mark.parametrize("task", list(TASKS))
def test_every_entry_is_a_task_config_with_a_signal(task):
    if TASKS[task].extra:
        for module in EXTRA_MODULES[TASKS[task].extra]:
            pytest.importorskip(module, reason=f"task {task} needs the [{TASKS[task].extra}] extra")
    cls = task_config(task)
    assert issubclass(cls, TaskConfig) and cls.signal is not TaskConfig.signal
    cls().check()


def test_unknown_task_and_missing_extra_are_one_line_errors():
    with pytest.raises(InputError, match="unknown task 'video'; choose one of image, audio, ct, sisr, sdf"):
        task_config("video")
    with pytest.raises(InputError, match=r"needs the \[sweep\] extra \(no_such_module_xyz is missing\)"):
        require_extra("sweep", ("no_such_module_xyz",), "muon-sweep")
