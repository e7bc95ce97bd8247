"""``muon-sweep --address``: a real Ray head (``ray start --head``) on 127.0.0.1, and the sweep's own
command attaching to it from another process.

What proves the trials ran on that cluster, not on a local runtime the sweep might start instead:
the head's job table (kept by its GCS) lists a finished driver whose pid is the sweep process's, and
the trials' actors belong to that driver's job. A sweep ignoring ``--address`` would register with a
runtime of its own, which the head never sees.

The head is isolated: a temporary folder of its own (short: Ray's unix sockets live under it), free
ports chosen at run time, no dashboard, usage stats off, a token of its own where the Ray version
has token authentication, no ``RAY_*`` variable of the caller. It is stopped by signalling its
process group and session, so only the processes this test started are ended (``ray stop --force``
would end every Ray runtime of the machine, a user's or another test run's included).
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_test_image

pytest.importorskip("ray", reason="muon-sweep --address needs the [sweep] extra (ray[tune])")
pytest.importorskip("ray.tune", reason="muon-sweep --address needs the [sweep] extra (ray[tune])")

HEAD_START_S = 240
"""All tries at starting the head together (Ray itself gives its raylet 30 s, too little on a
loaded CI machine: a head that times out is started again)."""
HEAD_TRIES = 3
SWEEP_S = 480
CHECK_S = 180

SWEEP = "import sys; from muon_nerf.sweep.cli import entrypoint; sys.argv[0] = 'muon-sweep'; entrypoint()"

CHECK = """
import json, sys
import ray
from ray._private import state  # the GCS's tables: no dashboard needed, unlike the state API
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(json.dumps({"jobs": state.jobs(), "actors": list(state.actors().values())}, default=str))
"""
"""The head's job table and actor table, as one line of JSON."""


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ray_env() -> dict[str, str]:
    """This environment without the caller's ``RAY_*`` (no ``RAY_ADDRESS`` to fall back on), with a
    token of the test's own: recent Ray starts a head with token authentication once a token
    exists, and a driver given an explicit address uses one only when told to."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def _session(sid: int) -> list[int]:
    """Processes of session ``sid`` (the head's workers have process groups of their own)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            if os.getsid(int(entry.name)) == sid:
                pids.append(int(entry.name))
    return pids


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to ``ray start --block`` (it stops what it started), then SIGKILL to what is left of
    its process group and session: only this test's processes."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in _session(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _start_head(
    temp_dir: Path, env: dict[str, str], log: Path, deadline: float
) -> tuple[subprocess.Popen, int] | None:
    """One try at a one-node cluster; (process, GCS port) once it is up, None if it gave up."""
    port, dash_port, agent_port, client_port = _free_ports(4)
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
    cmd += ["--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2", "--num-gpus", "0"]
    cmd += ["--include-dashboard=false", "--dashboard-port", str(dash_port)]
    cmd += ["--dashboard-agent-listen-port", str(agent_port), "--disable-usage-stats"]
    cmd += ["--temp-dir", str(temp_dir)]
    if importlib.util.find_spec("grpc") is not None:  # Ray starts its client server, on 10001 by default
        cmd += ["--ray-client-server-port", str(client_port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            return None
        time.sleep(0.5)
    return proc, port


@pytest.fixture
def ray_head():
    """A one-node Ray cluster on 127.0.0.1 (2 CPUs): yields (address, environment for its clients)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="mnr", dir="/tmp"))
    env = _ray_env()
    logs: list[str] = []
    proc = None
    try:
        deadline = time.monotonic() + HEAD_START_S
        for attempt in range(HEAD_TRIES):
            log = temp_dir / f"head-{attempt}.log"
            started = _start_head(temp_dir, env, log, deadline)
            logs.append(log.read_text())
            if started is not None:
                proc, port = started
                break
            if time.monotonic() > deadline:
                break
        if proc is None:
            pytest.fail(f"ray start --head failed {len(logs)} times; last output:\n{logs[-1][-3000:]}")
        yield f"127.0.0.1:{port}", env
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_sweep_runs_its_trials_on_the_ray_cluster_given_by_address(ray_head, tmp_path):
    address, env = ray_head
    png = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(16, 16) * 255 + 0.5).astype(np.uint8)).save(png)
    args = ["image", "--image", str(png), "--width", "16", "--num-layers", "3", "--steps", "30"]
    args += ["--eval-every", "10", "--rank-every", "10", "--grid", "1", "--lr-range", "1e-3", "1e-2"]
    args += ["--muon-lr-range", "1e-2", "1e-1", "--output-dir", str(tmp_path / "out"), "--run-name", "c"]
    sweep = subprocess.Popen(
        [sys.executable, "-c", SWEEP, *args, "--address", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        output, _ = sweep.communicate(timeout=SWEEP_S)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, output[-4000:]

    # The sweep's outputs: one Adam and one Muon trial, both fitted, a preset for each.
    run_dir = tmp_path / "out" / "image" / "c"
    with open(run_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["optimizer"] for r in rows) == ["adam", "muon"]
    assert all(r["status"] == "ok" and math.isfinite(float(r["psnr"])) for r in rows), rows
    summary = json.loads((run_dir / "sweep.json").read_text())
    assert summary["sweep"]["address"] == address
    assert summary["concurrency"] == 2  # the head's 2 CPUs, one per trial
    assert [t["status"] for t in summary["trials"]] == ["ok", "ok"]
    assert all(math.isfinite(t["value"]) and t["step"] == 30 for t in summary["trials"])
    for opt in ("adam", "muon"):
        preset = json.loads((run_dir / f"preset-{opt}.json").read_text())
        assert preset["task"] == "image" and preset["config"]["optim"]["optimizer"] == opt
        assert preset["config"]["optim"]["lr"] == pytest.approx(summary["best"][opt]["lr"])
    assert (run_dir / "heatmap.png").is_file()

    # The head ran them: the sweep process is one of its (finished) drivers, and actors of that job
    # (Tune's trial actors) were placed on it.
    check = subprocess.run(
        [sys.executable, "-c", CHECK, address], capture_output=True, text=True, env=env, timeout=CHECK_S
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-3000:]
    tables = json.loads(check.stdout.strip().splitlines()[-1])
    jobs = [j for j in tables["jobs"] if j["DriverPid"] == sweep.pid]
    assert len(jobs) == 1 and jobs[0]["IsDead"], tables["jobs"]
    actors = [a for a in tables["actors"] if a["JobID"] == jobs[0]["JobID"]]
    assert actors and all(a["State"] == "DEAD" for a in actors), actors
