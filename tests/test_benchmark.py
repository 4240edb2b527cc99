"""The benchmark sweeps through benchmark/launch.py, with real runs: overrides from the environment, the commands,
a run that fails among runs that succeed."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, read_scalars

SWEEP = {"ENVS": "Pendulum-v1 NoSuchEnv-v0", "SEEDS": "1 2", "STEPS": "1500", "WORKERS": "2",
         "EXTRA_ARGS": "--learning-starts 1000 --batch-size 64 --eval-episodes 2"}  # fmt: skip


def sweep(*args, cwd, **variables):
    """benchmark/sac_continuous_action.sh with these arguments and environment variables."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", **variables}
    command = ["bash", str(ROOT / "benchmark" / "sac_continuous_action.sh"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def pendulum_sweep(tmp_path_factory):
    """2 seeds of Pendulum-v1 and 2 of an unknown env (which fail at once), 2 runs at a time."""
    out = tmp_path_factory.mktemp("sweep") / "pendulum"
    return out, sweep("--out", str(out), cwd=out.parent, **SWEEP)


def test_the_environment_overrides_the_sweeps_lists_and_extra_args_reach_the_script(tmp_path):
    result = sweep("--dry-run", "--out", "here", cwd=tmp_path, **SWEEP)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and not (tmp_path / "here").exists()
    grid = [(env_id, seed) for env_id in ["Pendulum-v1", "NoSuchEnv-v0"] for seed in [1, 2]]  # envs first, then seeds
    for line, (env_id, seed) in zip(lines, grid, strict=True):
        assert line.startswith(f"cd {tmp_path / 'here'} && ")
        assert (f"sac_continuous_action.py --env-id {env_id} --seed {seed} --total-timesteps 1500 --threads "
                f"{max(1, len(os.sched_getaffinity(0)) // 2)} --learning-starts 1000 --batch-size 64 --eval-episodes "
                f"2 > {tmp_path / 'here' / 'logs' / f'{env_id}__{seed}.log'} 2>&1") in line  # fmt: skip
    # Without overrides: the published sweep, 6 environments x 3 seeds of 1,000,000 steps.
    published = sweep("--dry-run", cwd=tmp_path).stdout.splitlines()
    assert len(published) == 18 and all("--total-timesteps 1000000 " in line for line in published)
    assert "--env-id Humanoid-v5 --seed 3" in published[-4]


def test_a_sweep_runs_every_run_to_its_log_and_names_the_failed_ones(pendulum_sweep):
    out, result = pendulum_sweep
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 of 4 runs succeeded, 2 did not:" in result.stdout
    for seed in [1, 2]:
        log = out / "logs" / f"NoSuchEnv-v0__{seed}.log"
        assert f"NoSuchEnv-v0__{seed}: exit 2 after" in result.stdout and f"; log {log}\n" in result.stdout
        assert "error: --env-id 'NoSuchEnv-v0' is not a registered gymnasium environment" in log.read_text()
        assert "final evaluation at step 1500" in (out / "logs" / f"Pendulum-v1__{seed}.log").read_text()
    runs = sorted((out / "runs").iterdir())
    assert [run.name.split("__")[:3] for run in runs] == [["Pendulum-v1", "sac_continuous_action", "1"],
                                                          ["Pendulum-v1", "sac_continuous_action", "2"]]  # fmt: skip
    for run in runs:
        assert read_scalars(run)["eval/episodic_return"][-1][0] == 1500
    assert "4/4 runs done, 0 running, 0 waiting, 2 failed" in result.stdout


def test_logs_are_written_while_runs_go_and_a_stopped_sweep_stops_its_runs(tmp_path):
    env = {**os.environ, "ENVS": "Pendulum-v1", "SEEDS": "1 2 3", "WORKERS": "2", "EXTRA_ARGS": "--learning-starts 500"}
    launcher = subprocess.Popen([sys.executable, str(ROOT / "benchmark" / "launch.py"), "sac_continuous_action.py",
                                 "--envs", "Hopper-v5", "--out", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
    log = tmp_path / "logs" / "Pendulum-v1__1.log"
    deadline = time.time() + 120
    while not (log.exists() and "run Pendulum-v1__sac_continuous_action__1__" in log.read_text()):
        assert time.time() < deadline and launcher.poll() is None
        time.sleep(0.1)
    time.sleep(2)  # the run is under way: its first lines are in the log already
    launcher.send_signal(signal.SIGTERM)
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 1  # the third run never started
    assert "2 of 3 runs succeeded, 1 did not:\n  Pendulum-v1__3: not started (the sweep was stopped)" in out
    for seed in [1, 2]:
        assert "stopped by SIGTERM at step" in (tmp_path / "logs" / f"Pendulum-v1__{seed}.log").read_text()
