"""Shared helpers: the scripts as modules and as processes, their TensorBoard logs, a tiny env, plain critics."""

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
CONTINUOUS = ["sac_continuous_action", "sac_v1_value"]  # the scripts for Box actions, alike outside the algorithm
SCRIPTS = [*CONTINUOUS, "sac_discrete_atari"]  # all three
# Runs a test starts are eager (--no-compile), one thread: compiling takes a minute, and only tests about compiling
# (tests/test_compile.py) pay for it. A test that wants the compiled update adds --compile after these.
EAGER = ["--threads", "1", "--no-compile"]
sys.path.insert(0, str(ROOT))
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sac():
    """sac_continuous_action.py (SAC v2) imported as a module (its functions and classes)."""
    return importlib.import_module("sac_continuous_action")


@pytest.fixture(scope="session")
def v1():
    """sac_v1_value.py (SAC v1) imported as a module."""
    return importlib.import_module("sac_v1_value")


@pytest.fixture(scope="session", params=CONTINUOUS)
def each_sac(request):
    """Each continuous-action script as a module: a test that takes this runs once per script."""
    return importlib.import_module(request.param)


@pytest.fixture(scope="session")
def atari():
    """sac_discrete_atari.py (SAC-Discrete) imported as a module."""
    return importlib.import_module("sac_discrete_atari")


def run_script(*flags: str, cwd: Path, script: str = "sac_continuous_action", timeout: float = 600):
    """Run a script with `flags` in `cwd` (runs/ and videos/ land there); stdout and stderr captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / f"{script}.py"), *EAGER, *flags], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)  # fmt: skip


def start(script: str, *flags: str, cwd: Path) -> subprocess.Popen:
    """Start a script with `flags` in `cwd` and return at once (run_script waits for the end)."""
    command = [sys.executable, str(ROOT / f"{script}.py"), *EAGER, *flags]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_ok(*flags: str, cwd: Path, script: str = "sac_continuous_action") -> subprocess.CompletedProcess:
    result = run_script(*flags, cwd=cwd, script=script)
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


def final_state(cwd: Path, script: str) -> tuple[dict, dict]:
    """A finished run's saved model and its TensorBoard scalars, less charts/SPS (wall-clock time)."""
    saved = torch.load(run_dir(cwd) / f"{script}.pt", weights_only=True)
    scalars = read_scalars(run_dir(cwd))
    del scalars["charts/SPS"]
    return saved, scalars


def collect(sac, env_id, num_envs, steps):
    """Drive the real vector env (SAME_STEP autoreset) through step_envs into a ReplayBuffer, as train() does."""
    envs = sac.make_vector_env(sac.Args(env_id=env_id, num_envs=num_envs))
    rb = sac.ReplayBuffer(1000, 2, 1, torch.device("cpu"))
    obs, _ = envs.reset(seed=0)
    for step in range(steps):
        actions = np.full((num_envs, 1), [-1.0, 0.0, 1.0][step % 3], np.float32)
        next_obs, rewards, terminations, truncations, real_next_obs = sac.step_envs(envs, actions)
        rb.add(obs, actions, rewards, real_next_obs, terminations)
        obs = next_obs
    envs.close()
    return tuple(t[: rb.size].numpy() for t in (rb.obs, rb.actions, rb.rewards, rb.next_obs, rb.terminations))


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


def constant_q(sac, q1_value, q2_value, obs_dim=3, act_dim=1):
    """Twin Q networks whose outputs are q1_value and q2_value everywhere (last layer: zero weights)."""
    qf = sac.SoftQNetworks(obs_dim, act_dim)
    with torch.no_grad():
        qf.w3.zero_()
        qf.b3.copy_(torch.tensor([q1_value, q2_value]).view(2, 1, 1))
    return qf


def plain_twin_critics(qf):
    """The plain definition of the twin critics: two nn.Sequential MLPs, given the stacked module's weights."""
    critics = []
    for i in range(2):
        layers = [torch.nn.Linear(w.shape[1], w.shape[2]) for w in (qf.w1, qf.w2, qf.w3)]
        with torch.no_grad():
            for layer, w, b in zip(layers, (qf.w1, qf.w2, qf.w3), (qf.b1, qf.b2, qf.b3), strict=True):
                layer.weight.copy_(w[i].T)
                layer.bias.copy_(b[i, 0])
        critics.append(torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2]))
    return critics
