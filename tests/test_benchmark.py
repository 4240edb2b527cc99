"""The benchmark sweeps through benchmark/launch.py, with real runs: overrides from the environment, the commands,
a run that fails among runs that succeed, a stopped sweep continued with the same command."""

import csv
import json
import os
import re
import shutil
import signal
import sys
import time

import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import ROOT, read_scalars, run, start

MUJOCO = [f"{name}-v5" for name in ["Hopper", "Walker2d", "HalfCheetah", "Ant", "Humanoid", "InvertedPendulum"]]
DMC = [f"dm_control/{task}-v0" for task in ["cartpole-swingup", "reacher-hard", "cheetah-run", "walker-run",
                                             "humanoid-walk"]]  # fmt: skip
ATARI = [f"{game}NoFrameskip-v4" for game in ["Pong", "Breakout", "BeamRider"]]
SWEEP = {"ENVS": "Pendulum-v1 NoSuchEnv-v0", "SEEDS": "1 2", "STEPS": "1500", "WORKERS": "2",
         "EXTRA_ARGS": "--learning-starts 1000 --batch-size 64 --eval-episodes 2 --no-compile"}  # fmt: skip


def sweep(*args, cwd, sh="sac_continuous_action.sh", **variables):
    """benchmark/{sh} with these arguments and environment variables (and this Python first on the PATH)."""
    path = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"
    return run(f"benchmark/{sh}", *args, cwd=cwd, env={"PATH": path, **variables})


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
                f"2 --no-compile --checkpoint-frequency 100000 >> "
                f"{tmp_path / 'here' / 'logs' / f'{env_id}__{seed}.log'} 2>&1") in line  # fmt: skip

    # Without overrides: the published sweeps, environments x 3 seeds.
    for sh, script, envs, steps in [
        ("sac_continuous_action.sh", "sac_continuous_action.py", MUJOCO, 1_000_000),
        ("sac_v1_value.sh", "sac_v1_value.py", MUJOCO, 1_000_000),
        ("sac_discrete_atari.sh", "sac_discrete_atari.py", ATARI, 5_000_000),
        ("sac_dmc.sh", "sac_continuous_action.py", DMC, 500_000),
    ]:
        published = sweep("--dry-run", cwd=tmp_path, sh=sh).stdout.splitlines()
        assert len(published) == 3 * len(envs), sh
        for line, (env, seed) in zip(published, [(env, seed) for env in envs for seed in [1, 2, 3]], strict=True):
            assert f"{script} --env-id {env} --seed {seed} --total-timesteps {steps} --threads " in line


def test_a_sweep_runs_every_run_to_its_log_and_names_the_failed_ones(pendulum_sweep):
    out, result = pendulum_sweep
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 of 4 runs finished, 2 did not:" in result.stdout
    for seed in [1, 2]:
        log = out / "logs" / f"NoSuchEnv-v0__{seed}.log"
        assert f"NoSuchEnv-v0__{seed}: exit 2 after" in result.stdout and f"; log {log}\n" in result.stdout
        assert "error: --env-id 'NoSuchEnv-v0' is not a registered gymnasium environment" in log.read_text()
        assert "final evaluation at step 1500" in (out / "logs" / f"Pendulum-v1__{seed}.log").read_text()
    runs = sorted((out / "runs").iterdir())
    assert [path.name.split("__")[:3] for path in runs] == [["Pendulum-v1", "sac_continuous_action", "1"],
                                                            ["Pendulum-v1", "sac_continuous_action", "2"]]  # fmt: skip
    for path in runs:
        assert read_scalars(path)["eval/episodic_return"][-1][0] == 1500
    assert "2/4 runs finished, 0 running, 0 waiting, 2 failed" in result.stdout


def test_a_sweep_continued_skips_finished_runs_and_names_failed_ones_until_retried(pendulum_sweep):
    out, _ = pendulum_sweep
    result = sweep("--out", str(out), cwd=out.parent, **SWEEP)  # the same command again
    assert result.returncode == 1, result.stdout + result.stderr
    for seed in [1, 2]:
        assert f"  Pendulum-v1__{seed}: finished: skipped\n" in result.stdout
        log = out / "logs" / f"NoSuchEnv-v0__{seed}.log"
        assert (f"  NoSuchEnv-v0__{seed}: failed before: skipped (--retry-failed starts it again); log {log}\n"
                in result.stdout)  # fmt: skip
    assert "4 runs of sac_continuous_action.py, 0 to run" in result.stdout
    assert "2 of 4 runs finished, 2 did not:" in result.stdout
    # A run directory without a checkpoint, as a run stopped before its first one leaves (here a finished run's, its
    # checkpoint left out), is moved out of the report's way when its run starts anew.
    (finished,) = out.glob("runs/*__1__*")
    stale = out / "runs" / "NoSuchEnv-v0__sac_continuous_action__1__1"
    shutil.copytree(finished, stale, ignore=shutil.ignore_patterns("checkpoint.pt"))
    retried = sweep("--out", str(out), "--retry-failed", cwd=out.parent, **SWEEP)
    assert retried.returncode == 1
    assert "4 runs of sac_continuous_action.py, 2 to run" in retried.stdout
    assert "  NoSuchEnv-v0__1: failed before: starts\n" in retried.stdout
    moved = f"  NoSuchEnv-v0__1: runs/{stale.name} has no checkpoint to resume from: moved to discarded/"
    assert moved in retried.stdout
    assert not stale.exists() and list((out / "discarded" / stale.name).glob("events.out.tfevents.*"))
    log = (out / "logs" / "NoSuchEnv-v0__1.log").read_text()  # appended: both starts and both errors
    assert log.count("NoSuchEnv-v0__1 starts\n") == 2 and log.count("is not a registered gymnasium environment") == 2
    assert "2 runs, 1 environment x script groups" in report(out, "--out", out / "report").stdout  # not discarded/


# Pendulum, 3 seeds, 2 at a time, a checkpoint every 700 steps: a sweep left alone, and the same sweep stopped after
# its first two runs' first checkpoints, then continued.
def sweep_command(out, *changes, flags="--learning-starts 500 --batch-size 64 --eval-episodes 2 --eval-frequency 1000"):
    """launch.py's arguments for that sweep in `out`, `changes` given after its own, `flags` for the script."""
    return ["sac_continuous_action.py", "--envs", "Pendulum-v1", "--seeds", "1", "2", "3", "--steps", "2000",
            "--workers", "2", "--checkpoint-frequency", "700", "--out", str(out), *changes, "--", *flags.split(),
            "--save-model", "--no-compile"]  # fmt: skip


def final_states(out):
    """seed -> (saved model, TensorBoard scalars less charts/SPS) of each run of a sweep."""
    states = {}
    for path in (out / "runs").iterdir():
        scalars = read_scalars(path)
        del scalars["charts/SPS"]
        states[int(path.name.split("__")[2])] = torch.load(path / "sac_continuous_action.pt"), scalars
    return states


def test_a_stopped_sweep_continued_with_the_same_command_ends_as_if_never_stopped(tmp_path):
    alone = run("benchmark/launch.py", *sweep_command(tmp_path / "alone"))
    assert alone.returncode == 0 and "3 of 3 runs finished\n" in alone.stdout, alone.stdout + alone.stderr

    out = tmp_path / "stopped"
    command = sweep_command(out)
    launcher = start("benchmark/launch.py", *command)
    while len(list(out.glob("runs/*/checkpoint.pt"))) < 2:  # written atomically: there means whole
        assert launcher.poll() is None, launcher.communicate()
        time.sleep(0.1)
    launcher.send_signal(signal.SIGTERM)
    stopped, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 1, stopped
    assert ("0 of 3 runs finished, 3 did not:\n  Pendulum-v1__1: stopped after" in stopped
            and "  Pendulum-v1__3: not started (the sweep was stopped)\n" in stopped)  # fmt: skip
    assert f"continue the sweep with the same command (--out {out})" in stopped
    for seed in [1, 2]:
        assert "stopped by SIGTERM at step" in (out / "logs" / f"Pendulum-v1__{seed}.log").read_text()
    assert not list(out.glob("runs/*__3__*"))

    continued = run("benchmark/launch.py", *command)
    assert continued.returncode == 0, continued.stdout + continued.stderr
    for seed in [1, 2]:
        (checkpoint,) = out.glob(f"runs/*__{seed}__*/checkpoint.pt")
        assert f"  Pendulum-v1__{seed}: stopped: resumes from {checkpoint.relative_to(out)}\n" in continued.stdout
    assert "  Pendulum-v1__3: not started: starts\n" in continued.stdout
    assert "3 of 3 runs finished\n" in continued.stdout
    ours, theirs = final_states(out), final_states(tmp_path / "alone")
    assert sorted(ours) == sorted(theirs) == [1, 2, 3]
    for seed, (model, scalars) in ours.items():
        their_model, their_scalars = theirs[seed]
        assert scalars == their_scalars  # every logged return, length and loss at every step
        for network in ["actor", "qf", "qf_target"]:
            for name, tensor in model[network].items():
                assert torch.equal(tensor, their_model[network][name]), (seed, network, name)

    # Once more: every run finished, none starts again.
    logs = {path: path.read_text() for path in (out / "logs").iterdir()}
    again = run("benchmark/launch.py", *command)
    assert again.returncode == 0 and "3 runs of sac_continuous_action.py, 0 to run" in again.stdout
    assert again.stdout.count(": finished: skipped\n") == 3
    assert logs == {path: path.read_text() for path in (out / "logs").iterdir()}

    # The same sweep directory with other arguments: refused, in one line, before anything runs.
    for other, message in [
        (sweep_command(out, "--steps", "3000"), "--steps 2000, not 3000"),
        (sweep_command(out, "--seeds", "1", "2"), "--seeds 1 2 3, not 1 2"),
        (sweep_command(out, flags="--learning-starts 500"), "the script's flags (after -- and in EXTRA_ARGS) --lear"),
    ]:
        refused = run("benchmark/launch.py", *other)
        assert refused.returncode == 2 and refused.stdout == "", refused.stderr
        assert refused.stderr.startswith(f"error: --out {out} is a sweep with {message}")
        assert refused.stderr.count("\n") == 1
    assert logs == {path: path.read_text() for path in (out / "logs").iterdir()}


def report(*args):
    return run("benchmark/report.py", *map(str, args), timeout=300)


def test_the_report_of_a_sweep_holds_what_its_tensorboard_files_hold(pendulum_sweep, tmp_path):
    out, sweep_result = pendulum_sweep
    assert f"report: python {ROOT / 'benchmark' / 'report.py'} {out} --out {out / 'report'}" in sweep_result.stdout
    references = tmp_path / "references.csv"
    references.write_text("env_id,steps,mean,std,kind,approximate,source,url\n"
                          "Pendulum-v0,1500,-150,10,eval,,A source,https://example.org/a\n"  # another version: shown
                          "Pendulum-v1,3000,-140,,eval,yes,Another source,https://example.org/b\n")  # fmt: skip
    result = report(out, "--out", tmp_path / "report", "--references", references)
    assert result.returncode == 0, result.stderr
    assert "2 runs, 1 environment x script groups" in result.stdout  # the failed runs left no TensorBoard file
    results = (tmp_path / "report" / "results.md").read_text()
    [row] = [line for line in results.splitlines() if line.startswith("| Pendulum-v1 | sac_continuous_action |")]
    cells = [cell.strip() for cell in row.split("|")[3:-1]]
    scalars = [read_scalars(run) for run in sorted((out / "runs").iterdir())]
    train = [np.mean([value for _, value in s["charts/episodic_return"][-10:]]) for s in scalars]
    evals = [s["eval/episodic_return"][-1][1] for s in scalars]
    sps = []  # each SPS value covers the steps since the previous one: total steps over total seconds
    for s in scalars:
        (first, _), *rest = s["charts/SPS"]
        seconds = sum((step - before) / rate for (before, _), (step, rate) in zip(s["charts/SPS"], rest, strict=False))
        sps.append((rest[-1][0] - first) / seconds)
    last5 = [np.mean([value for _, value in s["eval/episodic_return"][-5:]]) for s in scalars]
    # Two seeds: too few for an interval, their mean and [min, max] said as such.
    spread = f"mean {np.mean(evals):.1f} [min {min(evals):.1f}, max {max(evals):.1f}]"
    assert cells == ["2 (1, 2)", "1,500", f"{np.mean(train):.1f} ± {np.std(train):.1f}",
                     f"{np.mean(evals):.1f} ± {np.std(evals):.1f}", spread,
                     f"{np.mean(last5):.1f} ± {np.std(last5):.1f}", f"{np.mean(sps):.0f}",
                     "-150.0 ± 10.0 (eval, Pendulum-v0) [1]"]  # fmt: skip
    assert results.endswith("Sources:\n\n1. A source <https://example.org/a>\n")
    # Each run's provenance.json, one part (it ran once, from step 0 to its end), is a row of provenance.csv.
    with open(tmp_path / "report" / "provenance.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    recorded = [json.loads((path / "provenance.json").read_text()) for path in sorted((out / "runs").iterdir())]
    assert [(row["seed"], row["part"], row["first_step"], row["last_step"]) for row in rows] == [
        ("1", "1", "0", "1500"), ("2", "1", "0", "1500")]  # fmt: skip
    assert [row["commit"] for row in rows] == [parts[0]["commit"] for parts in recorded]
    assert "| Pendulum-v1 seed 1 | 1 |" in results and "| S1 | " in results
    for path, s in zip(sorted((out / "runs").iterdir()), scalars, strict=True):  # each run's evaluation curve, a CSV
        seed = path.name.split("__")[2]
        curve = (tmp_path / "report" / "eval_curves" / f"Pendulum-v1__sac_continuous_action__{seed}.csv").read_text()
        header, *rows = [line.split(",") for line in curve.splitlines()]
        assert header == ["step", "mean_return", "std_return"] and len(rows) == len(s["eval/episodic_return"]) >= 1
        logged = zip(s["eval/episodic_return"], s["eval/episodic_return_std"], strict=True)
        for row, ((step, mean), (std_step, std)) in zip(rows, logged, strict=True):
            assert int(row[0]) == step == std_step and float(row[1]) == pytest.approx(mean, rel=1e-5)
            assert float(row[2]) == pytest.approx(std, rel=1e-5, abs=1e-6)
    for name in ["learning_curves.png", "Pendulum-v1.png"]:  # one environment: one 500 x 360 panel in both
        path = tmp_path / "report" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(path)  # decodes the whole file: a truncated or corrupt PNG raises
        assert image.shape == (360, 500, 4)
        assert len(np.unique(image.reshape(-1, 4), axis=0)) > 50  # drawn on: curves, band, text


def test_the_report_refuses_what_it_cannot_read_in_one_line(tmp_path):
    nothing = f"error: no TensorBoard event files or evaluation CSVs under {tmp_path}"
    for runs_dir, message in [(tmp_path / "missing", f"error: RUNS_DIR '{tmp_path / 'missing'}' is not a directory"),
                              (tmp_path, nothing)]:  # fmt: skip
        result = report(runs_dir, "--out", tmp_path / "report")
        assert (result.returncode, result.stderr) == (2, message + "\n")
    assert not (tmp_path / "report").exists()


def test_a_sweep_on_a_new_machine_skips_the_runs_its_results_page_holds(tmp_path):
    """--reported: the MuJoCo page holds Hopper-v5 and Ant-v5 seeds 1-5 to 300,000 steps, so of seeds 5 and 6 only 6
    is run, here and on Slurm; at other --steps none is skipped. Without a report's eval_curves/ or --steps: exit 2."""
    page = ROOT / "docs" / "results" / "mujoco-v5-300k"
    launch = ["benchmark/launch.py", "sac_continuous_action.py", "--envs", "Hopper-v5", "Ant-v5", "--seeds", "5", "6",
              "--out", "here"]  # fmt: skip
    result = run(*launch, "--steps", "300000", "--reported", str(page), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.endswith(": skipped")]
    commands = [line for line in result.stdout.splitlines() if line.startswith("cd ")]
    for env_id, line in zip(["Hopper-v5", "Ant-v5"], skipped, strict=True):
        assert line == f"  {env_id}__5: in {page / 'eval_curves' / f'{env_id}__sac_continuous_action__5.csv'}: skipped"
    for env_id, line in zip(["Hopper-v5", "Ant-v5"], commands, strict=True):
        assert f"--env-id {env_id} --seed 6 --total-timesteps 300000 " in line
    slurm = run(*launch, "--steps", "300000", "--reported", str(page), "--slurm", "--dry-run", cwd=tmp_path)
    assert "#SBATCH --array=0-1\n" in slurm.stdout and slurm.stdout.count("--seed 6 ") == 2, slurm.stderr
    longer = run(*launch, "--steps", "1000000", "--reported", str(page), "--dry-run", cwd=tmp_path)
    assert longer.stdout.count("cd ") == 4 and "skipped" not in longer.stdout
    for flags, message in [(["--steps", "300000", "--reported", str(ROOT / "docs")], "no eval_curves/ there"),
                           (["--reported", str(page)], "--reported needs --steps")]:  # fmt: skip
        refused = run(*launch, *flags, "--dry-run", cwd=tmp_path)
        assert refused.returncode == 2 and message in refused.stderr.splitlines()[-1]
    assert not (tmp_path / "here").exists()


def test_every_published_reference_has_its_number_steps_and_source():
    with open(ROOT / "benchmark" / "references.csv", newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    assert len(rows) >= 10
    for row in rows:
        assert int(row["steps"]) > 0 and float(row["mean"]) == float(row["mean"])
        assert row["std"] == "" or float(row["std"]) >= 0
        assert row["kind"] in {"training", "eval", "score"} and row["approximate"] in {"", "yes"}
        assert row["source"] and row["url"].startswith("https://")


def test_a_published_model_is_the_actor_and_args_and_its_gif_shows_the_first_seconds(tmp_path):
    """benchmark/publish_model.py on a Pendulum run: the model file holds what --eval-model needs and nothing more, and
    plays as the run's own model; the GIF is 5 s of the episode (Pendulum renders at 30 fps, every 2nd frame kept)."""
    from PIL import Image

    flags = ["--env-id", "Pendulum-v1", "--total-timesteps", "600", "--learning-starts", "500", "--batch-size", "64",
             "--eval-episodes", "1", "--save-model", "--seed", "3"]  # fmt: skip
    trained = run("sac_continuous_action", *flags, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = run("benchmark/publish_model.py", str(run_dir), "--out", str(tmp_path / "models"), timeout=300)
    assert result.returncode == 0, result.stderr
    path, whole = tmp_path / "models" / "Pendulum-v1__sac_continuous_action__3.pt", run_dir / "sac_continuous_action.pt"
    published, saved = torch.load(path, weights_only=True), torch.load(whole, weights_only=True)
    assert set(published) == {"script", "args", "actor"} and published["args"] == saved["args"]
    assert all(torch.equal(published["actor"][k], saved["actor"][k]) for k in saved["actor"])
    assert path.stat().st_size < 1_000_000 and 2 * path.stat().st_size < whole.stat().st_size  # no critics
    both = [run("sac_continuous_action", "--eval-model", str(p), "--seed", "3", "--eval-episodes", "1", cwd=tmp_path)
            for p in (path, whole)]  # fmt: skip
    returns = [re.search(r"return (\S+)", r.stdout).group(1) for r in both]
    assert returns[0] == returns[1] and f"Pendulum-v1: return {returns[0]}" in result.stdout
    gif = Image.open(tmp_path / "models" / "Pendulum-v1__sac_continuous_action__3.gif")
    assert gif.size == (160, 160) and gif.n_frames == 75 and gif.info["duration"] == 70  # 66.7 ms, in hundredths


def test_the_sac_v1_sweep_runs_each_task_at_the_papers_reward_scale(tmp_path):
    """Appendix D of arXiv 1801.01290: reward scale 20 for Humanoid, 5 for the others, given per environment, so that
    EXTRA_ARGS (after them, and winning) still reaches every run."""
    result = run("benchmark/sac_v1_value.sh", "--dry-run", "--out", "sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scales = {re.search(r"--env-id (\S+)", line).group(1): re.findall(r"--reward-scale (\S+)", line)
              for line in result.stdout.splitlines()}  # fmt: skip
    assert scales == {
        env_id: ["20" if env_id == "Humanoid-v5" else "5"]
        for env_id in ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5"]
    }
    env = {"ENVS": "Humanoid-v5 Hopper-v5", "EXTRA_ARGS": "--reward-scale 10"}
    result = run("benchmark/sac_v1_value.sh", "--dry-run", "--out", "sweep", cwd=tmp_path, env=env)
    scales = {re.search(r"--env-id (\S+)", line).group(1): re.findall(r"--reward-scale (\S+)", line)
              for line in result.stdout.splitlines()}  # fmt: skip
    assert scales == {"Humanoid-v5": ["20", "10"], "Hopper-v5": ["5", "10"]}  # the last one given is the one taken
    refused = run("benchmark/launch.py", "sac_v1_value.py", "--envs", "Hopper-v5", "--env-flags", "Hopper-v5",
                  "--dry-run", cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2 and "--env-flags 'Hopper-v5': give ENV=FLAGS" in refused.stderr
