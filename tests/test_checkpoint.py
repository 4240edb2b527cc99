"""Runs that survive faults, with real processes and real signals: checkpoints, exact resume after SIGKILL, SIGTERM,
non-finite values from the environment and in the losses, bad checkpoints and unwritable run directories."""

import importlib
import importlib.metadata
import io
import json
import platform
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONTINUOUS, NETWORKS, ROOT, final_state, read_scalars, run, run_dir, run_ok, start

ENV = {"sac_continuous_action": "Pendulum-v1", "sac_v1_value": "Pendulum-v1",
       "sac_discrete_atari": "BreakoutNoFrameskip-v4"}  # fmt: skip


def saved_step(path: Path) -> int:
    """The env step at which a checkpoint was written."""
    return torch.load(path, weights_only=True)["state"]["global_step"]


def wait_for_checkpoint(process, cwd, step, timeout=600) -> Path:
    """Poll until the run started in `cwd` has written a checkpoint of at least `step` (an atomic rename: never a
    partial file); return its path. What the run reports, not a time, says how far it is: a loaded machine only
    makes this wait longer."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        path = next((cwd / "runs").glob("*/checkpoint.pt"), None)
        if path and saved_step(path) >= step:
            return path
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint of step {step} in {timeout} s")


def killed_and_resumed(script, flags, every, tmp_path):
    """Run `flags` twice: once left alone, once killed by SIGKILL right after its second checkpoint (at step
    2 * every, with 2 sub-envs) and resumed. Returns both final states (model, scalars)."""
    (tmp_path / "alone").mkdir()
    (tmp_path / "killed").mkdir()
    run_ok(script, *flags, cwd=tmp_path / "alone")
    process = start(script, *flags, cwd=tmp_path / "killed")
    checkpoint = wait_for_checkpoint(process, tmp_path / "killed", 2 * every)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = run_ok(script, "--resume", str(checkpoint.parent), cwd=tmp_path / "killed")
    assert f"resuming run {checkpoint.parent.name} at step {2 * every}" in resumed.stdout
    return final_state(tmp_path / "alone", script), final_state(tmp_path / "killed", script)


def assert_same_run(alone, killed, networks):
    (alone, logs_alone), (killed, logs_killed) = alone, killed
    for net in networks:
        for key in alone[net]:
            assert torch.equal(alone[net][key], killed[net][key]), (net, key)
    assert torch.equal(alone["log_alpha"], killed["log_alpha"])
    # The same episodes, losses and evaluation, each step once: what the killed process logged after its
    # checkpoint was dropped when the resumed run logged those steps again.
    assert logs_killed == logs_alone and len(logs_alone["charts/episodic_return"]) >= 2


# DeepMind Control: killed mid-episode (its episodes are 1,000 steps), with the target the task placed in the model.
@pytest.mark.parametrize("env_id, total, every", [("Pendulum-v1", 1500, 500), ("Hopper-v5", 1200, 400),
                                                  ("dm_control/reacher-hard-v0", 2400, 800)])  # fmt: skip
def test_a_run_killed_after_a_checkpoint_and_resumed_ends_exactly_as_one_left_alone(
    tmp_path, script, env_id, total, every
):
    flags = ["--env-id", env_id, "--total-timesteps", str(total), "--learning-starts", "300", "--batch-size", "64",
             "--eval-frequency", str(total), "--eval-episodes", "1", "--save-model", "--no-cuda",
             "--checkpoint-frequency", str(every), "--num-envs", "2"]  # fmt: skip
    assert_same_run(*killed_and_resumed(script, flags, every, tmp_path), NETWORKS[script])


def test_a_breakout_run_killed_after_a_checkpoint_and_resumed_ends_exactly_as_one_left_alone(tmp_path):
    """The emulators, the wrappers (frame stacks, lives, scores in progress) and the frame store, whose rings of
    300 slots per sub-env have wrapped around by the second checkpoint (step 800, 400 steps per sub-env)."""
    flags = ["--env-id", "BreakoutNoFrameskip-v4", "--total-timesteps", "1200", "--learning-starts", "600",
             "--buffer-size", "600", "--target-network-frequency", "200", "--eval-frequency", "1200",
             "--eval-episodes", "1", "--save-model", "--no-cuda", "--checkpoint-frequency", "400",
             "--num-envs", "2", "--batch-size", "16"]  # fmt: skip
    alone, killed = killed_and_resumed("sac_discrete_atari", flags, 400, tmp_path)
    assert_same_run(alone, killed, NETWORKS["sac_discrete_atari"])


def stopped_by_ctrl_c_and_resumed(script, flags, past, tmp_path):
    """Run `flags` (no --checkpoint-frequency: the default, 0) twice: once left alone, once sent SIGINT as a user's
    Ctrl-C once the run reports a step past `past`, then resumed with the command it printed. Returns both final
    states (model, scalars) and what the stopped run printed."""
    (tmp_path / "alone").mkdir()
    (tmp_path / "stopped").mkdir()
    run_ok(script, *flags, cwd=tmp_path / "alone")
    process = start(script, *flags, cwd=tmp_path / "stopped")
    for line in process.stdout:  # what the run reports, not a time, says how far it is
        if (step := re.match(r"step +(\d+)/", line)) and int(step.group(1)) > past:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    resume = re.search(r"resume with: python \S+ --resume (\S+)", out)
    assert resume, out
    resumed = run_ok(script, "--resume", resume.group(1), cwd=tmp_path / "stopped")
    assert "resuming run" in resumed.stdout
    return final_state(tmp_path / "alone", script), final_state(tmp_path / "stopped", script), out


@pytest.mark.parametrize("script", [*CONTINUOUS, "sac_discrete_atari"])
def test_a_default_run_stopped_by_ctrl_c_writes_its_checkpoint_and_resumes_exactly(tmp_path, script):
    """Without --checkpoint-frequency, a Ctrl-C after learning has started still writes the checkpoint, saying its
    size first, and the run it resumes ends as one left alone."""
    if script in CONTINUOUS:
        flags = ["--env-id", "Pendulum-v1", "--total-timesteps", "3000", "--learning-starts", "1000",
                 "--batch-size", "64", "--eval-frequency", "1000", "--eval-episodes", "1", "--save-model",
                 "--no-cuda"]  # fmt: skip
        past = 1100
    else:
        flags = ["--env-id", "BreakoutNoFrameskip-v4", "--total-timesteps", "1000", "--learning-starts", "500",
                 "--buffer-size", "1000", "--target-network-frequency", "200", "--eval-frequency", "1000",
                 "--eval-episodes", "1", "--save-model", "--no-cuda", "--batch-size", "16"]  # fmt: skip
        past = 600
    alone, stopped, out = stopped_by_ctrl_c_and_resumed(script, flags, past, tmp_path)
    assert_same_run(alone, stopped, NETWORKS[script])
    said = re.search(r"writing the checkpoint of step (\d+) \(([\d.]+) (kB|MB|GB)\): a second Ctrl-C", out)
    step, size, unit = said.groups()
    assert f"stopped by SIGINT at step {step}; checkpoint runs/" in out and past < int(step)
    written = float(size) * {"kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    (path,) = (tmp_path / "stopped" / "runs").glob("*/checkpoint.pt")
    assert 0.8 < written / path.stat().st_size < 1.2  # what was said, near what the stop's checkpoint takes


def test_sigterm_stops_after_the_step_writes_a_checkpoint_and_the_run_resumes(tmp_path, any_script):
    script = any_script
    flags = ["--env-id", ENV[script], "--total-timesteps", "100000", "--learning-starts", "300", "--batch-size",
             "64", "--eval-episodes", "1", "--checkpoint-frequency", "400", "--save-model"]  # fmt: skip
    process = start(script, *flags, cwd=tmp_path)
    wait_for_checkpoint(process, tmp_path, 400)  # the run is past learning_starts: it says so with a checkpoint
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    path = run_dir(tmp_path)
    checkpoint = torch.load(path / "checkpoint.pt", weights_only=True)
    step = checkpoint["state"]["global_step"]
    buffer = checkpoint["buffer"]
    if script in CONTINUOUS:  # one transition per step, the buffer's filled part
        assert 400 <= step < 100_000 and buffer["size"] == step and len(buffer["obs"]) == step
    else:  # one frame per step and one more per episode end (a lost life): the slots written so far
        assert 400 <= step < 100_000 and step < buffer["written"] == len(buffer["frames"][0]) < 2 * step
    assert f"stopped by SIGTERM at step {step}; checkpoint {path.relative_to(tmp_path)}/checkpoint.pt" in out
    assert f"--resume {path.relative_to(tmp_path)}" in out and (path / f"{script}.pt").exists()
    end = (step // 100 + 3) * 100  # a longer run than the stopped one asked for: --total-timesteps may change
    run_ok(script, "--resume", str(path), "--total-timesteps", str(end), cwd=tmp_path)
    scalars = read_scalars(path)
    assert scalars["losses/qf1_loss"][-1][0] == end and scalars["eval/episodic_return"][-1][0] == end
    steps = [s for s, _ in scalars["losses/qf1_loss"]]
    assert steps == sorted(set(steps))  # no step twice
    assert_provenance(path / "provenance.json", [(0, step), (step, end)])


def assert_provenance(path: Path, parts: list[tuple[int, int]]) -> None:
    """The run's provenance.json has one part per start, each with the env steps it took (first, last), the commit of
    this checkout, this interpreter's package versions, this machine's CPU, the runs' --threads 1, and its seconds."""
    recorded = json.loads(path.read_text())
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":")[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    assert [(part["first_step"], part["last_step"]) for part in recorded] == parts
    for part in recorded:
        assert part["commit"].removesuffix("+modified") == head and part["python"] == platform.python_version()
        for package in ("torch", "gymnasium", "numpy", "mujoco", "ale_py"):
            assert part[package] == importlib.metadata.version(package), package
        assert part["cpu"].startswith(cpu) and part["device"] == "cpu" and part["threads"] == 1
        assert part["compile"] is False and part["train_seconds"] > 0 and part["eval_seconds"] >= 0
    assert recorded[-1]["eval_seconds"] > 0  # the part that ran to the end evaluated there


def test_a_first_sigint_asks_for_a_stop_and_a_second_one_exits_at_once(any_script):
    code = (f"import os, signal, time; from {any_script} import StopSignals; stop = StopSignals(); "
            "os.kill(os.getpid(), signal.SIGINT); print('requested', stop.requested, flush=True); "
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(5); print('not stopped')")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 130 and result.stdout == "requested SIGINT\n"
    assert result.stderr.strip() == "second SIGINT: stopping now, without a checkpoint"


def test_a_non_finite_reward_stops_the_run_with_one_line(tmp_path, script):
    result = run(script, "--env-id", "tests.faulty_envs:NaNRewardPendulum-v0", "--total-timesteps", "1000",
                        "--learning-starts", "300", "--batch-size", "64", "--checkpoint-frequency", "20",
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().endswith("error: non-finite reward from the environment at step 50; the run stops "
                                          "(the last checkpoint, if any, is from before it)")  # fmt: skip
    assert saved_step(run_dir(tmp_path) / "checkpoint.pt") == 40  # the last good one


def test_bad_checkpoints_are_refused_with_one_line(tmp_path, any_script):
    script = any_script
    run_ok(script, "--env-id", ENV[script], "--total-timesteps", "400", "--learning-starts", "300", "--batch-size",
           "64", "--eval-episodes", "1", "--checkpoint-frequency", "200", cwd=tmp_path)  # fmt: skip
    good = run_dir(tmp_path) / "checkpoint.pt"
    truncated, corrupted, other = tmp_path / "truncated.pt", tmp_path / "corrupted.pt", tmp_path / "other.pt"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    actor = torch.load(good, weights_only=True)["state"]["agent"]["actor"].values()
    weights = max((t for t in actor if t.is_contiguous()), key=torch.numel).numpy().tobytes()
    at = data.index(weights[:64]) + 10  # a byte inside the actor's largest weights: the file still loads
    corrupted.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    other_script = next(name for name in ENV if name != script)
    torch.save({"script": other_script, "run_name": "other"}, other)
    cases = [
        ([str(truncated)], f"--resume {truncated}: cannot load it"),
        ([str(corrupted)], f"--resume {corrupted}: the file is corrupted (its contents do not match the checksum"),
        ([str(other)], f"--resume {other}: not a checkpoint of {script}.py (it is {other_script}.py's)"),
        ([str(good), "--batch-size", "128"], "--batch-size 128 differs from the run's 64; a resumed run keeps its"),
        ([str(tmp_path / "missing")], "cannot load it"),
    ]
    for flags, message in cases:
        result = run(script, "--resume", *flags, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_an_unwritable_run_directory_is_refused_before_training(tmp_path, any_script):
    (tmp_path / "runs").write_text("a file where the runs directory should be")
    result = run(any_script, "--env-id", ENV[any_script], "--checkpoint-frequency", "100", cwd=tmp_path)
    assert result.returncode == 2 and f"error: cannot write the run directory runs/{ENV[any_script]}__" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# Files larger than this fail to be written (RLIMIT_FSIZE): each script's checkpoint at step 200 fits, the next one, at
# step 400, does not: it holds 200 more transitions and the first losses. Measured with torch 2.13 (v2: 3,005,579 and
# 3,013,003 bytes; v1: 3,544,923 and 3,552,283; Atari: 75,842,087 and 77,290,791); the limits lie halfway.
FILE_LIMIT = {"sac_continuous_action": 3_009_300, "sac_v1_value": 3_548_600, "sac_discrete_atari": 76_566_000}


def test_a_full_disk_during_a_checkpoint_stops_the_run_and_keeps_the_previous_checkpoint(tmp_path, any_script):
    def limit_file_size():  # in the child: a write past the limit fails with EFBIG instead of killing it (SIGXFSZ)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT[any_script], FILE_LIMIT[any_script]))

    result = run(any_script, "--env-id", ENV[any_script], "--total-timesteps", "600", "--learning-starts", "300",
                 "--batch-size", "64", "--checkpoint-frequency", "200", "--no-cuda", cwd=tmp_path,
                 preexec_fn=limit_file_size)  # fmt: skip
    path = run_dir(tmp_path) / "checkpoint.pt"
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.endswith(f"error: cannot write the checkpoint {path.relative_to(tmp_path)} at step 400: File "
                                  "too large; the previous checkpoint is unchanged\n")  # fmt: skip
    assert saved_step(path) == 200 and not path.with_suffix(".pt.tmp").exists()
    assert run_ok(any_script, "--resume", str(path), "--total-timesteps", "400", cwd=tmp_path)


def test_a_non_finite_loss_stops_the_run_with_one_line(tmp_path, any_script, capsys, monkeypatch):
    """The losses are read every 100 env steps, at the end of the step (Run.end_of_step)."""
    module = importlib.import_module(any_script)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(signal, "signal", lambda signum, handler: None)  # pytest keeps its own handlers
    run = module.Run(module.Args(env_id=ENV[any_script], cuda=False), checkpoint=None)
    losses = {"qf1_loss": torch.tensor(0.5), "actor_loss": torch.tensor(float("inf")), "alpha": torch.tensor([0.2])}
    with pytest.raises(SystemExit) as stop:
        run.end_of_step(module.TrainState(None, None, global_step=300, losses=losses), rb=None, envs=None)
    assert stop.value.code == 1
    assert capsys.readouterr().err.endswith("error: non-finite actor_loss in the update at step 300; the run stops "
                                            "(the last checkpoint, if any, is from before it)\n")  # fmt: skip


def test_a_checkpoint_holds_only_the_filled_part_of_the_buffer(any_script):
    """filled_part(t, n): t[:n] with only its own n rows written by torch.save, and no copy made."""
    buffer = torch.arange(1000 * 6, dtype=torch.float32).view(1000, 6)
    for t in [buffer, buffer.view(2, 500, 6)[1]]:  # a whole buffer and one sub-env's ring in a larger one
        part = importlib.import_module(any_script).filled_part(t, 10)
        assert torch.equal(part, t[:10]) and part.data_ptr() == t.data_ptr()
        written = io.BytesIO()
        torch.save(part, written)
        assert 10 * 6 * 4 <= len(written.getvalue()) < 10 * 6 * 4 + 2000  # 24 kB for the whole buffer


def test_restored_environments_continue_their_episodes_exactly(each_sac):
    """env_state / set_env_state on MuJoCo, classic control and DeepMind Control (whose reacher places its target in
    the model at each reset): a restored copy steps exactly as the original."""
    each_sac.register_dm_control()
    for env_id in ["Hopper-v5", "Pendulum-v1", "dm_control/reacher-hard-v0"]:
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
        if env_id.startswith("dm_control/"):  # no TimeLimit wrapper: dm_control counts its steps itself
            assert copy.unwrapped._env._step_count == 50
        else:
            assert each_sac.time_limit_of(copy)._elapsed_steps == 50
        assert np.array_equal(original.unwrapped.np_random.random(3), copy.unwrapped.np_random.random(3))


def test_flags_given_are_told_apart_from_flags_at_their_default(any_script):
    module = importlib.import_module(any_script)
    argv = ["--env-id", "X", "--no-cuda", "--total-timesteps=5", "--seed", "1", "--not-a-flag", "--save_model"]
    assert module.flags_given(argv) == {"env_id", "cuda", "total_timesteps", "seed", "save_model"}


def test_a_flag_given_on_resume_applies_even_at_its_default_value(tmp_path, any_script):
    """--eval-frequency and --checkpoint-frequency set back to their defaults on --resume take effect (the run had
    evaluated every 150 steps; a flag at its default value used to be dropped for the run's own value); a setting of
    the run given at its default value, where the run had another, is refused."""
    script, defaults = any_script, importlib.import_module(any_script).Args()
    run_ok(script, "--env-id", ENV[script], "--total-timesteps", "400", "--learning-starts", "300", "--batch-size",
           "64", "--buffer-size", "2000", "--eval-frequency", "150", "--eval-episodes", "1", "--checkpoint-frequency",
           "400", "--no-cuda", cwd=tmp_path)  # fmt: skip
    path = run_dir(tmp_path)
    run_ok(script, "--resume", str(path), "--total-timesteps", "600", "--eval-frequency", str(defaults.eval_frequency),
           "--checkpoint-frequency", "0", cwd=tmp_path)  # fmt: skip
    assert [step for step, _ in read_scalars(path)["eval/episodic_return"]] == [150, 300, 400, 600]
    assert saved_step(path / "checkpoint.pt") == 400  # none written after it
    result = run(script, "--resume", str(path), "--learning-starts", str(defaults.learning_starts), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"--learning-starts {defaults.learning_starts} differs from the run's 300" in result.stderr


def test_only_the_training_devices_cuda_generator_is_saved_and_restored(any_script, monkeypatch):
    """A CPU run saves no CUDA state and makes no CUDA call; a GPU run saves its own GPU's generator, which goes back
    to the training GPU on resume, also where fewer GPUs are visible than where it was saved (here a checkpoint of the
    older form, one generator for each of 8 GPUs, resumed where 1 is visible), and is not used on the CPU."""
    module = importlib.import_module(any_script)

    def no_cuda(*args, **kwargs):
        raise AssertionError("a CPU run called CUDA")

    for name in ["get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "init"]:
        monkeypatch.setattr(torch.cuda, name, no_cuda)
    state = module.rng_state(torch.device("cpu"))
    assert set(state) == {"python", "numpy", "torch", "cuda"} and state["cuda"] is None
    module.set_rng_state(state, torch.device("cpu"))

    generator, gpu = torch.arange(16, dtype=torch.uint8), torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: generator + device.index)
    assert torch.equal(module.rng_state(gpu)["cuda"], generator)
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda new_state, device: restored.append((new_state, device)))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    module.set_rng_state({**state, "cuda": generator}, gpu)
    module.set_rng_state({**state, "cuda": [generator + i for i in range(8)]}, gpu)
    module.set_rng_state({**state, "cuda": generator}, torch.device("cpu"))
    assert [device for _, device in restored] == [gpu, gpu]
    assert all(torch.equal(new_state, generator) for new_state, _ in restored)
