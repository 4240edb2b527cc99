"""Runs that survive faults, with real processes and real signals: checkpoints, exact resume after SIGKILL, SIGTERM,
non-finite values from the environment, bad checkpoints and unwritable run directories."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import CONTINUOUS, ROOT, final_state, read_scalars, run_dir, run_ok, run_script

NETWORKS = {"sac_continuous_action": ["actor", "qf", "qf_target"], "sac_v1_value": ["actor", "qf", "vf", "vf_target"]}


@pytest.fixture(params=CONTINUOUS)
def script(request):
    """Each continuous-action script's name: a test that takes this runs once per script."""
    return request.param


def start(script, *flags, cwd):
    command = [sys.executable, str(ROOT / f"{script}.py"), "--threads", "1", *flags]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(process, path, iteration, timeout=300):
    """Poll until the checkpoint at `path` is at least `iteration` (an atomic rename: never a partial file)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        if path.exists() and torch.load(path, weights_only=True)["iteration"] >= iteration:
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint in time")


@pytest.mark.parametrize("env_id, total, every", [("Pendulum-v1", 1500, 500), ("Hopper-v5", 1200, 400)])
def test_a_run_killed_after_a_checkpoint_and_resumed_ends_exactly_as_one_left_alone(
    tmp_path, script, env_id, total, every
):
    flags = ["--env-id", env_id, "--total-timesteps", str(total), "--learning-starts", "300", "--batch-size", "64",
             "--eval-frequency", str(total), "--eval-episodes", "1", "--save-model", "--no-cuda",
             "--checkpoint-frequency", str(every), "--num-envs", "2"]  # fmt: skip
    (tmp_path / "alone").mkdir()
    (tmp_path / "killed").mkdir()
    run_ok(*flags, cwd=tmp_path / "alone", script=script)

    process = start(script, *flags, cwd=tmp_path / "killed")
    while not (tmp_path / "killed" / "runs").exists():
        time.sleep(0.02)
    checkpoint = run_dir(tmp_path / "killed") / "checkpoint.pt"
    wait_for_checkpoint(process, checkpoint, every)  # the second one: at step 2 * every, iteration every (2 sub-envs)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = run_ok("--resume", str(checkpoint.parent), cwd=tmp_path / "killed", script=script)
    assert f"resuming run {checkpoint.parent.name} at step {2 * every}" in resumed.stdout

    alone, logs_alone = final_state(tmp_path / "alone", script)
    killed, logs_killed = final_state(tmp_path / "killed", script)
    for net in NETWORKS[script]:
        for key in alone[net]:
            assert torch.equal(alone[net][key], killed[net][key]), (net, key)
    assert torch.equal(alone["log_alpha"], killed["log_alpha"])
    # The same episodes, losses and evaluation, each step once: what the killed process logged after its
    # checkpoint was dropped when the resumed run logged those steps again.
    assert logs_killed == logs_alone and len(logs_alone["charts/episodic_return"]) >= 2


def test_sigterm_stops_after_the_step_writes_a_checkpoint_and_the_run_resumes(tmp_path, script):
    flags = ["--env-id", "Pendulum-v1", "--total-timesteps", "100000", "--learning-starts", "300", "--batch-size",
             "64", "--eval-episodes", "1", "--checkpoint-frequency", "50000", "--save-model"]  # fmt: skip
    process = start(script, *flags, cwd=tmp_path)
    while not (tmp_path / "runs").exists() or not list(run_dir(tmp_path).glob("events.*")):
        time.sleep(0.05)
    time.sleep(3)  # into the learning phase
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    path = run_dir(tmp_path)
    checkpoint = torch.load(path / "checkpoint.pt", weights_only=True)
    step = checkpoint["iteration"]
    assert 300 < step < 100_000 and checkpoint["buffer"]["size"] == step
    assert f"stopped by SIGTERM at step {step}; checkpoint {path.relative_to(tmp_path)}/checkpoint.pt" in out
    assert f"--resume {path.relative_to(tmp_path)}" in out and (path / f"{script}.pt").exists()
    end = (step // 100 + 3) * 100  # a longer run than the stopped one asked for: --total-timesteps may change
    run_ok("--resume", str(path), "--total-timesteps", str(end), cwd=tmp_path, script=script)
    scalars = read_scalars(path)
    assert scalars["losses/qf1_loss"][-1][0] == end and scalars["eval/episodic_return"][-1][0] == end
    steps = [s for s, _ in scalars["losses/qf1_loss"]]
    assert steps == sorted(set(steps))  # no step twice


def test_a_non_finite_reward_stops_the_run_with_one_line(tmp_path, script):
    result = run_script("--env-id", "tests.faulty_envs:NaNRewardPendulum-v0", "--total-timesteps", "1000",
                        "--learning-starts", "300", "--batch-size", "64", "--checkpoint-frequency", "20",
                        cwd=tmp_path, script=script)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().endswith("error: non-finite reward from the environment at step 50; the run stops "
                                          "(the last checkpoint, if any, is from before it)")  # fmt: skip
    assert torch.load(run_dir(tmp_path) / "checkpoint.pt", weights_only=True)["iteration"] == 40  # the last good one


def test_bad_checkpoints_are_refused_with_one_line(tmp_path, script):
    run_ok("--env-id", "Pendulum-v1", "--total-timesteps", "400", "--learning-starts", "300", "--batch-size", "64",
           "--eval-episodes", "1", "--checkpoint-frequency", "200", cwd=tmp_path, script=script)  # fmt: skip
    good = run_dir(tmp_path) / "checkpoint.pt"
    truncated, other = tmp_path / "truncated.pt", tmp_path / "other.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    other_script = "sac_discrete_atari"
    torch.save({"script": other_script, "iteration": 3}, other)
    cases = [
        ([str(truncated)], f"--resume {truncated}: cannot load it"),
        ([str(other)], f"--resume {other}: not a checkpoint of {script}.py (it is {other_script}.py's)"),
        ([str(good), "--batch-size", "128"], "--batch-size 128 differs from the run's 64; a resumed run keeps its"),
        ([str(tmp_path / "missing")], "cannot load it"),
    ]
    for flags, message in cases:
        result = run_script("--resume", *flags, cwd=tmp_path, script=script)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_an_unwritable_run_directory_is_refused_before_training(tmp_path, script):
    (tmp_path / "runs").write_text("a file where the runs directory should be")
    result = run_script("--env-id", "Pendulum-v1", "--checkpoint-frequency", "100", cwd=tmp_path, script=script)
    assert result.returncode == 2 and "error: cannot write the run directory runs/Pendulum-v1__" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_restored_environments_continue_their_episodes_exactly(each_sac):
    """env_state / set_env_state on MuJoCo and classic control: a restored copy steps exactly as the original."""
    for env_id in ["Hopper-v5", "Pendulum-v1"]:
        original, copy = each_sac.make_env(env_id), each_sac.make_env(env_id)
        original.reset(seed=0)
        copy.reset(seed=1)
        for _ in range(30):
            original.step(original.action_space.sample())
        assert each_sac.set_env_state(copy, each_sac.env_state(original))
        rng = np.random.default_rng(0)
        for _ in range(20):
            action = rng.uniform(-1, 1, original.action_space.shape).astype(np.float32)
            a, b = original.step(action), copy.step(action)
            assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
        assert each_sac.time_limit_of(copy)._elapsed_steps == 50
        assert np.array_equal(original.unwrapped.np_random.random(3), copy.unwrapped.np_random.random(3))
