"""The replay buffer, what a time limit and a termination store, and the input checks, in both continuous scripts."""

import importlib
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import CONTINUOUS, ROOT, CounterEnv, collect, read_scalars, run

gym.register("tests/CounterTerminating-v0", entry_point=CounterEnv, kwargs={"terminate_at": 3},
             max_episode_steps=5)  # fmt: skip


def test_time_limit_is_stored_as_a_bootstrapped_transition_with_the_real_last_observation(each_sac):
    obs, actions, rewards, next_obs, terminations = collect(each_sac, "tests/Counter-v0", num_envs=2, steps=12)
    assert len(obs) == 24
    # Every stored transition is one real step: t -> t + 1 inside one episode, never across an autoreset.
    np.testing.assert_array_equal(next_obs[:, 0], obs[:, 0] + 1)
    np.testing.assert_array_equal(next_obs[:, 1], obs[:, 1])
    # The time limit (5 steps) truncates: next_obs is the real final observation [5, episode] and it bootstraps.
    at_limit = next_obs[:, 0] == 5
    assert at_limit.sum() == 4  # 2 sub-envs x 2 whole episodes in 12 steps
    assert np.all(terminations == 0)


def test_termination_is_stored_as_terminal(each_sac):
    obs, _, _, next_obs, terminations = collect(each_sac, "tests/CounterTerminating-v0", num_envs=1, steps=9)
    np.testing.assert_array_equal(next_obs[:, 0], obs[:, 0] + 1)
    np.testing.assert_array_equal(terminations, (next_obs[:, 0] == 3).astype(np.float32))
    assert terminations.sum() == 3


def test_actions_in_the_unit_cube_reach_the_env_at_its_own_bounds(each_sac):
    # CounterEnv's action space is [-2, 3] and its reward is the action it received.
    _, actions, rewards, _, _ = collect(each_sac, "tests/Counter-v0", num_envs=1, steps=6)
    np.testing.assert_allclose(rewards, -2 + (actions[:, 0] + 1) / 2 * 5)
    np.testing.assert_allclose(sorted(set(rewards.tolist())), [-2.0, 0.5, 3.0])


def test_replay_buffer_wraps_around_and_samples_only_what_it_holds(each_sac):
    rb = each_sac.ReplayBuffer(5, 1, 1, torch.device("cpu"))
    for i in range(3):  # two sub-envs a step: 6 transitions into 5 places
        rb.add(np.array([[2 * i], [2 * i + 1]]), np.zeros((2, 1)), np.array([2 * i, 2 * i + 1]),
               np.zeros((2, 1)), np.zeros(2))  # fmt: skip
    assert rb.size == 5 and rb.pos == 1
    np.testing.assert_array_equal(rb.obs[:, 0].numpy(), [5, 1, 2, 3, 4])  # 0, the oldest, was overwritten
    np.testing.assert_array_equal(rb.rewards.numpy(), [5, 1, 2, 3, 4])
    torch.manual_seed(0)
    batch = rb.sample(1000)
    assert set(batch.obs[:, 0].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    torch.testing.assert_close(batch.obs[:, 0], batch.rewards)  # the fields of a transition stay together


def test_partially_filled_buffer_samples_only_filled_rows(each_sac):
    rb = each_sac.ReplayBuffer(100, 1, 1, torch.device("cpu"))
    rb.add(np.array([[7.0], [8.0]]), np.zeros((2, 1)), np.ones(2), np.zeros((2, 1)), np.zeros(2))
    assert set(rb.sample(500).obs[:, 0].tolist()) == {7.0, 8.0}


BAD_ARGS = [  # both scripts
    ({"batch_size": 0}, "--batch-size must be positive"),
    ({"total_timesteps": -5}, "--total-timesteps must be positive"),
    ({"buffer_size": 100, "batch_size": 256}, "--batch-size (256) must not exceed --buffer-size (100)"),
    ({"learning_starts": 100}, "--learning-starts (100) must be at least --batch-size (256)"),
    ({"learning_starts": 5000, "total_timesteps": 5000}, "--learning-starts (5000) must be below --total-timesteps"),
    ({"learning_starts": 5000, "total_timesteps": 5002, "num_envs": 4}, "a multiple of --num-envs 4), or nothing"),
    ({"gamma": 1.0}, "--gamma must be in [0, 1)"),
    ({"tau": 0.0}, "--tau must be in (0, 1]"),
    ({"tau": 1.5}, "--tau must be in (0, 1]"),
    ({"q_lr": float("nan")}, "--q-lr must be a positive number"),
    ({"eval_frequency": 0}, "--eval-frequency must be positive"),
    ({"eval_episodes": 0}, "--eval-episodes must be positive"),
    ({"num_envs": 0}, "--num-envs must be positive"),
    ({"cudagraphs": True, "cuda": False}, "--cudagraphs needs a CUDA device, and --no-cuda was given"),
    ({"env_id": "NoSuchEnv-v0"}, "--env-id 'NoSuchEnv-v0' is not a registered gymnasium environment; list the ids"),
    ({"env_id": "Hoper-v5"}, "is not a registered gymnasium environment; did you mean 'Hopper-v5'? list the ids"),
    ({"env_id": "dm_control/cheetah-run"},  # no version: the closest id, and a listing that has the dm_control ids
     "did you mean 'dm_control/cheetah-run-v0'? list the ids with: python -c \"import gymnasium, shimmy; "
     "gymnasium.register_envs(shimmy); gymnasium.pprint_registry()\""),
    ({"env_id": "CartPole-v1"}, "has a discrete action space (Discrete(2)); use sac_discrete_atari.py"),
    ({"env_id": "tests/Unbounded-v0"}, "is unbounded; SAC needs finite bounds"),
    ({"env_id": "tests/DictObs-v0"}, "the observation space must be a 1-D Box"),
]
BAD_ARGS_V2 = [
    ({"alpha": -0.1}, "--alpha must be a positive number"),
    ({"policy_frequency": 0}, "--policy-frequency must be positive"),
]
BAD_ARGS_V1 = [
    ({"vf_lr": 0.0}, "--vf-lr must be a positive number"),
    ({"reward_scale": -1.0}, "--reward-scale must be a positive number"),
    ({"policy_reg": -1e-3}, "--policy-reg must be a non-negative number"),
    ({"policy_reg": float("nan")}, "--policy-reg must be a non-negative number"),
]


class UnboundedActionEnv(CounterEnv):
    def __init__(self, render_mode=None):
        super().__init__()
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


class DictObsEnv(CounterEnv):
    """A dict observation with a part that is not a vector (a dict of vectors, DeepMind Control's, is flattened)."""

    def __init__(self, render_mode=None):
        super().__init__()
        self.observation_space = gym.spaces.Dict({"t": gym.spaces.Box(0, 10, (1,)), "flag": gym.spaces.Discrete(2)})


gym.register("tests/Unbounded-v0", entry_point=UnboundedActionEnv)
gym.register("tests/DictObs-v0", entry_point=DictObsEnv)


CASES = [("sac_continuous_action", *case) for case in BAD_ARGS + BAD_ARGS_V2]
CASES += [("sac_v1_value", *case) for case in BAD_ARGS + BAD_ARGS_V1]


@pytest.mark.parametrize("script, overrides, message", CASES)
def test_bad_input_is_refused_with_one_line(script, overrides, message, capsys):
    sac = importlib.import_module(script)
    with pytest.raises(SystemExit) as exit_info:
        sac.check_inputs(sac.Args(**overrides))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_good_input_passes_the_checks(each_sac):
    assert each_sac.check_inputs(each_sac.Args(env_id="Pendulum-v1")) == (3, 1)
    assert each_sac.check_inputs(each_sac.Args(env_id="Hopper-v5")) == (11, 3)


@pytest.mark.parametrize("flags, message", [
    (["--env-id", "NoSuchEnv-v0"], "is not a registered gymnasium environment; list the ids with"),
    (["--env-id", "CartPole-v1"], "use sac_discrete_atari.py"),
    (["--eval-model", "missing.pt"], "--eval-model missing.pt: cannot load it"),
])  # fmt: skip
def test_bad_input_from_the_command_line_exits_2_before_training(tmp_path, script, flags, message):
    result = run(script, *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_track_without_wandb_is_refused(each_sac, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    with pytest.raises(SystemExit) as exit_info:
        each_sac.check_inputs(each_sac.Args(env_id="Pendulum-v1", track=True))
    assert exit_info.value.code == 2 and "--track needs Weights & Biases: pip install wandb" in capsys.readouterr().err


def test_eval_model_refuses_a_file_that_is_not_a_saved_model(each_sac, capsys, tmp_path):
    other_script = next(name for name in CONTINUOUS if name != each_sac.__name__)
    cases = [("other.pt", {"actor": {}}), ("garbage.pt", None), ("other_script.pt", {"script": other_script})]
    for name, content in cases:
        path = tmp_path / name
        torch.save(content, path) if content is not None else path.write_bytes(b"not a torch file")
        with pytest.raises(SystemExit) as exit_info:
            each_sac.evaluate_saved_model(each_sac.Args(eval_model=str(path)))
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and f"--eval-model {path}" in err and err.count("\n") == 1, err


def test_v1_rewards_are_unscaled_with_autotune_unless_a_scale_is_given(v1):
    """--reward-scale defaults to 5 (alpha fixed at 1), and to 1 with --autotune (alpha learnt, and a scale would
    only multiply alpha and the losses by it); a scale given is kept either way."""
    cases = [({}, 5.0), ({"autotune": True}, 1.0), ({"autotune": True, "reward_scale": 5.0}, 5.0),
             ({"reward_scale": 20.0}, 20.0)]  # fmt: skip
    for overrides, scale in cases:
        assert v1.Args(**overrides).reward_scale == scale, overrides


def test_progress_in_a_log_file_every_5_percent_every_30_seconds_and_at_every_evaluation(
    any_script, capsys, monkeypatch
):
    module, clock = importlib.import_module(any_script), [1000.0]
    monkeypatch.setattr(module.time, "time", lambda: clock[0])
    progress = module.Progress(total=10_000)  # captured stdout is not a terminal: plain lines
    printed, at_600 = [], module.Evaluation(step=600, mean=-150.0, std=10.0)
    for step, seconds, last_eval in [(100, 1, None), (200, 29, None), (300, 31, None), (400, 40, None), (500, 45, None),
                                     (600, 50, at_600), (700, 55, at_600), (10_000, 56, at_600)]:  # fmt: skip
        clock[0] = 1000.0 + seconds
        progress.update(step, -200.0, last_eval)
        printed += [line.split("/")[0] for line in capsys.readouterr().out.splitlines()]
    # 30 s after the start (step 300), 5% (500), an evaluation (600), and the end.
    assert printed == ["step   300", "step   500", "step   600", "step 10000"]


def compile_checked(module, given):
    """check_inputs on a small env of the script; the Args it leaves (compile True or False)."""
    env_id = "BreakoutNoFrameskip-v4" if module.__name__ == "sac_discrete_atari" else "Pendulum-v1"
    args = module.Args(env_id=env_id, cuda=False, buffer_size=10_000)
    module.check_inputs(args, given=given)
    return args


def test_without_a_cpp_compiler_the_default_is_eager_and_an_explicit_compile_is_refused(
    any_script, monkeypatch, capsys
):
    module = importlib.import_module(any_script)
    monkeypatch.setenv("CXX", "no-such-c++-compiler")  # what the scripts (and inductor) take for the C++ compiler
    assert compile_checked(module, given=set()).compile is False  # --compile at its default: eager, with a notice
    assert capsys.readouterr().out == ("no C++ compiler (g++, or the one named by $CXX) to compile the update for the "
                                       "CPU: the update runs eagerly (--no-compile); install g++\n")  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        compile_checked(module, given={"compile"})  # --compile on the command line: refused
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.count("\n") == 1
    assert error.endswith("error: --compile: no C++ compiler (g++, or the one named by $CXX) to compile the update for "
                          "the CPU; install g++, or give --no-compile\n")  # fmt: skip


def test_a_torch_that_cannot_compile_autograd_makes_the_default_eager_and_refuses_an_explicit_compile(
    any_script, monkeypatch, capsys
):
    """torch before 2.11 has no torch._dynamo.config.trace_autograd_ops: setting it would raise at the first update."""
    module = importlib.import_module(any_script)
    monkeypatch.delattr(torch._dynamo.config, "trace_autograd_ops")  # hidden, as on such a torch
    assert not hasattr(torch._dynamo.config, "trace_autograd_ops")
    assert compile_checked(module, given=set()).compile is False
    notice = capsys.readouterr().out
    assert notice == (f"torch {torch.__version__} cannot compile torch.autograd.grad into a graph (it has no "
                      "torch._dynamo.config.trace_autograd_ops): the update runs eagerly (--no-compile); torch 2.11 or "
                      "newer compiles the update\n")  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        compile_checked(module, given={"compile"})
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.count("\n") == 1 and "error: --compile: torch " in error


def test_on_cuda_a_missing_c_compiler_for_triton_is_found_before_training(any_script, monkeypatch):
    module = importlib.import_module(any_script)
    monkeypatch.setenv("CC", "no-such-c-compiler")  # what Triton takes for its C compiler
    assert module.why_not_compiled(on_cuda=True) == (
        "no C compiler (gcc or clang, or the one named by $CC) for Triton to compile the update",
        "install gcc",
    )
    monkeypatch.delenv("CC")
    monkeypatch.setenv("PATH", "/nonexistent")  # neither gcc nor clang
    assert module.why_not_compiled(on_cuda=True)[1] == "install gcc"
    assert module.why_not_compiled(on_cuda=False)[1] == "install g++"  # the CPU's C++ compiler is gone too


def test_a_run_where_torch_cannot_compile_the_update_trains_eagerly_after_one_notice(tmp_path):
    hide = ("import runpy, sys, torch._dynamo.config as config; del config.trace_autograd_ops; "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")  # fmt: skip
    script = str(ROOT / "sac_continuous_action.py")
    command = [sys.executable, "-c", hide, script, "--env-id", "Pendulum-v1", "--threads", "1", "--total-timesteps",
               "400", "--learning-starts", "300", "--batch-size", "32", "--eval-episodes", "1"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trace_autograd_ops): the update runs eagerly (--no-compile)") == 1
    assert "torch.compile" not in result.stdout and "final evaluation at step 400" in result.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert [step for step, _ in read_scalars(run_dir)["losses/qf_loss"]] == [400]  # it learnt (from step 301)


@pytest.mark.parametrize("script", [*CONTINUOUS, "sac_discrete_atari"])
def test_a_tracked_run_and_its_resume_are_one_wandb_run(tmp_path, script):
    """--track, with W&B offline (no account, no network): the run and its --resume log to one W&B run, whose id is
    made from the run's name (so a requeued Slurm task goes on in it too)."""
    module = importlib.import_module(script)
    env_id = "BreakoutNoFrameskip-v4" if script == "sac_discrete_atari" else "Pendulum-v1"
    offline = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    flags = ["--env-id", env_id, "--total-timesteps", "600", "--learning-starts", "500", "--batch-size", "64",
             "--eval-episodes", "1", "--checkpoint-frequency", "600", "--track", "--no-cuda"]  # fmt: skip
    first = run(script, *flags, cwd=tmp_path, env=offline)
    assert first.returncode == 0, first.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    resumed = run(script, "--resume", str(run_dir), "--total-timesteps", "700", cwd=tmp_path, env=offline)
    assert resumed.returncode == 0, resumed.stderr
    runs = sorted(path.name for path in (tmp_path / "wandb").glob("offline-run-*"))
    run_id = module.wandb_run_id(run_dir.name)
    assert len(runs) == 2 and all(name.endswith(f"-{run_id}") for name in runs), runs
    assert run_id == run_dir.name  # a name of these characters, under 64 of them, is its own id
    long = module.wandb_run_id("dm_control/humanoid-walk-v0__a_long_experiment_name_given_with_exp_name__1__1796482000")
    assert (
        len(long) == 64
        and long.startswith("dm_control-humanoid-walk-v0__")
        and set(long) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    )


def test_a_run_started_on_a_busy_machine_says_so_in_one_line_but_not_a_sweeps_run(tmp_path):
    """As many busy processes as the cores: fewer idle cores than --threads 2. The run says so, with the remedy; a run
    that launch.py started (SAC_SWEEP) shares the cores by plan and says nothing. Both train."""
    cores = len(os.sched_getaffinity(0))
    spin = "import sys; print('spinning', flush=True)\nwhile True: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True) for _ in range(cores)]
    try:
        for process in busy:
            assert process.stdout.readline() == "spinning\n"  # each is in its loop
        flags = ["--env-id", "Pendulum-v1", "--total-timesteps", "260", "--learning-starts", "256", "--threads", "2",
                 "--eval-episodes", "1"]  # fmt: skip
        alone = run("sac_continuous_action", *flags, cwd=tmp_path)
        swept = run("sac_continuous_action", *flags, cwd=tmp_path, env={"SAC_SWEEP": "1"})
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert alone.returncode == swept.returncode == 0, alone.stderr + swept.stderr
    [line] = [line for line in alone.stdout.splitlines() if "busy" in line]
    assert f"this machine is busy: other processes keep {cores} of its {cores} cores running" in line
    assert "give --threads 1, or run fewer at once" in line
    assert "busy" not in swept.stdout
