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
NETWORKS = {  # the networks each script saves (--save-model), in its model file and its checkpoints
    "sac_continuous_action": ["actor", "qf", "qf_target"],
    "sac_v1_value": ["actor", "qf", "vf", "vf_target"],
    "sac_discrete_atari": ["actor", "qf1", "qf2", "qf1_target", "qf2_target"],
}
# Runs a test starts are eager (--no-compile), one thread: compiling takes a minute, and only tests about compiling
# (tests/test_compile.py) pay for it. A test that wants the compiled update adds --compile after these.
EAGER = ["--threads", "1", "--no-compile"]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmark")]  # the scripts, and benchmark/'s modules
torch.set_num_threads(1)
from tensorboard_logs import read_run  # noqa: E402  (benchmark/ is on the path only from here)


@pytest.fixture(scope="session")
def sac():
    """sac_continuous_action.py (SAC v2) imported as a module (its functions and classes)."""
    return importlib.import_module("sac_continuous_action")


@pytest.fixture(scope="session")
def v1():
    """sac_v1_value.py (SAC v1) imported as a module."""
    return importlib.import_module("sac_v1_value")


# A test runs over the scripts by taking one of these fixtures: `script` or `each_sac` (the same script as a module)
# once per continuous-action script, `any_script` once per script of the three.
@pytest.fixture(scope="session", params=CONTINUOUS)
def script(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def each_sac(script):
    return importlib.import_module(script)


@pytest.fixture(scope="session", params=SCRIPTS)
def any_script(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def atari():
    """sac_discrete_atari.py (SAC-Discrete) imported as a module."""
    return importlib.import_module("sac_discrete_atari")


def command(program: str, *args: str) -> list[str]:
    """The command line of a program of the repository: a SAC script by its name (EAGER first, so that flags given
    after it win), or a file by its path from the root (benchmark/launch.py, benchmark/sac_continuous_action.sh)."""
    if program in SCRIPTS:
        return [sys.executable, str(ROOT / f"{program}.py"), *EAGER, *args]
    path = ROOT / program
    return ["bash" if path.suffix == ".sh" else sys.executable, str(path), *args]


def run(program: str, *args: str, cwd: Path = ROOT, timeout: float = 600, env: dict | None = None, **options):
    """Run a program of the repository (see command) in `cwd` (where runs/ and videos/ land) to its end; stdout and
    stderr captured; `env` adds to the environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(command(program, *args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, **options)  # fmt: skip


def start(program: str, *args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.Popen:
    """Start a program of the repository (see command) and return at once."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(command(program, *args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def run_ok(program: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """run(), which must succeed."""
    result = run(program, *args, cwd=cwd)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def run_dir(cwd: Path) -> Path:
    """The single run directory a run made under cwd/runs/."""
    (path,) = (cwd / "runs").iterdir()
    return path


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars of a run's TensorBoard file: tag -> [(step, value), ...]."""
    scalars, _ = read_run(path)
    return {tag: [(int(step), float(value)) for step, _, value in rows] for tag, rows in scalars.items()}


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
