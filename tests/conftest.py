"""Shared helpers: the script as a module and as a process, its TensorBoard logs, a tiny env."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sac_continuous_action.py"
sys.path.insert(0, str(ROOT))
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sac():
    """sac_continuous_action.py imported as a module (its functions and classes)."""
    return importlib.import_module("sac_continuous_action")


def run_script(*flags: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the script with `flags` in `cwd` (runs/ and videos/ land there); stdout and stderr captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), "--threads", "1", *flags], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def run_ok(*flags: str, cwd: Path) -> subprocess.CompletedProcess:
    result = run_script(*flags, cwd=cwd)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def run_dir(cwd: Path) -> Path:
    """The single run directory a run made under cwd/runs/."""
    (path,) = (cwd / "runs").iterdir()
    return path


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars of a run's TensorBoard file: tag -> [(step, value), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


class CounterEnv(gym.Env):
    """A tiny env whose observation is [t, episode number]: what a transition holds is visible. The reward is
    the action the env receives (its bounds are [-2, 3]); it terminates at t == terminate_at, if set."""

    def __init__(self, terminate_at=None, render_mode=None):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(np.float32(-2), np.float32(3), (1,), np.float32)
        self.terminate_at, self.t, self.episode = terminate_at, 0, -1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return np.array([0, self.episode], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.t == self.terminate_at
        return np.array([self.t, self.episode], np.float32), float(action[0]), terminated, False, {}


gym.register("tests/Counter-v0", entry_point=CounterEnv, max_episode_steps=5)
