"""benchmark/launch.py --slurm: the sbatch script for a grid, and a real round trip through a single-node Slurm
(slurmctld and slurmd on this machine) that runs a tiny sweep, stops a task before its "time limit" and sees it
requeued and resumed from its checkpoint. The round trip installs Slurm (slurm-wlm, munge) when it runs as root on
Debian, and is skipped, with the reason, elsewhere."""

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import ROOT, read_scalars, run

TINY = ["--", "--learning-starts", "1000", "--batch-size", "64", "--eval-episodes", "2", "--no-compile"]


def launch(*args, env=None, check=True):
    result = run("benchmark/launch.py", "sac_continuous_action.py", *args, env=env, timeout=120)
    assert not check or result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_sbatch_script_holds_one_task_per_run_with_its_options_log_and_checkpoint(tmp_path):
    out = tmp_path / "sweep"
    script = launch("--slurm", "--dry-run", "--envs", "Hopper-v5", "Walker2d-v5", "--seeds", "1", "2", "3",
                    "--steps", "200000", "--workers", "4", "--out", str(out), "--partition", "gpu", "--time",
                    "12:00:00", "--cpus", "4", "--gpus", "1", "--mem", "16G", "--signal-before", "600",
                    "--", "--batch-size", "512").stdout  # fmt: skip
    assert not out.exists()  # a dry run writes nothing
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert [line for line in lines if line.startswith("#SBATCH")] == [
        "#SBATCH --job-name=sac_continuous_action",
        "#SBATCH --array=0-5%4",  # 6 tasks, 4 at a time
        f"#SBATCH --output={out / 'logs' / 'slurm-%A_%a.out'}",
        "#SBATCH --open-mode=append",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:TERM@600",
        "#SBATCH --time=12:00:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --mem=16G",
    ]
    grid = [(env_id, seed) for env_id in ["Hopper-v5", "Walker2d-v5"] for seed in [1, 2, 3]]
    for task, (env_id, seed) in enumerate(grid):
        i = lines.index(f"    {task}) log={out / 'logs' / f'{env_id}__{seed}.log'} "
                        f"checkpoints='runs/{env_id}__*__{seed}__*/checkpoint.pt'")  # fmt: skip
        assert lines[i + 1] == (f"       command=({sys.executable} {ROOT / 'sac_continuous_action.py'} --env-id "
                                f"{env_id} --seed {seed} --total-timesteps 200000 --threads 4 --batch-size 512 "
                                "--checkpoint-frequency 100000) ;;")  # fmt: skip
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0  # valid bash
    # The script's own flags win; without --workers no throttle; without the options no line for them.
    script = launch("--slurm", "--dry-run", "--envs", "Hopper-v5", "--seeds", "1", "--out", str(out), "--",
                    "--checkpoint-frequency", "5000", "--threads", "1").stdout  # fmt: skip
    assert "#SBATCH --array=0-0\n" in script and "--partition" not in script and "gres" not in script
    assert "--checkpoint-frequency 5000 --threads 1) ;;" in script and script.count("--checkpoint-frequency") == 1


def test_without_sbatch_the_launcher_says_so_in_one_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no sbatch on it
    result = launch("--slurm", "--envs", "Hopper-v5", "--out", str(tmp_path / "sweep"), env=env, check=False)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: --slurm: sbatch is not on PATH")
    assert not (tmp_path / "sweep").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def why_no_slurm() -> str | None:
    """Why a single-node Slurm cannot be started here, or None after installing what it needs."""
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        return "the Slurm round trip installs and starts Slurm: it needs root on Debian"
    if all(shutil.which(tool) for tool in ["slurmctld", "slurmd", "sbatch", "munged"]):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in [["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "slurm-wlm", "munge"]]:  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return f"{' '.join(command)} failed: {last}"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node cluster on this machine: munged, slurmctld and slurmd in the foreground, with their own key,
    sockets, ports and state in a temporary directory. Yields the environment that Slurm's commands need."""
    reason = why_no_slurm()
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("slurm")
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname()
    (d / "slurm.conf").write_text("\n".join([
        "ClusterName=sactest", f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={d / 'munge.socket'}",
        "SlurmUser=root", "SlurmdUser=root", f"StateSaveLocation={d / 'state'}", f"SlurmdSpoolDir={d / 'spool'}",
        f"SlurmctldPidFile={d / 'slurmctld.pid'}", f"SlurmdPidFile={d / 'slurmd.pid'}",
        f"SlurmctldLogFile={d / 'slurmctld.log'}", f"SlurmdLogFile={d / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "MinJobAge=3600",  # ended jobs stay visible to scontrol
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN",
        f"PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP", "",
    ]))  # fmt: skip
    env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf")}
    daemons = [
        subprocess.Popen(["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={d / 'munge.socket'}",
                          f"--pid-file={d / 'munged.pid'}", f"--log-file={d / 'munged.log'}",
                          f"--seed-file={d / 'munged.seed'}"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    ]  # fmt: skip
    wait_for(lambda: (d / "munge.socket").exists(), 60, "munged to open its socket")
    for daemon in (["slurmctld", "-D", "-i"], ["slurmd", "-D"]):
        log = open(d / f"{daemon[0]}.out", "w")
        daemons.append(subprocess.Popen(daemon, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        deadline = time.time() + 60
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout:
            assert all(p.poll() is None for p in daemons), f"a Slurm daemon ended; see {d}"
            assert time.time() < deadline, f"the node did not come up in 60 s; see {d}"
            time.sleep(1)
        yield env
    finally:
        subprocess.run(["scancel", "--partition=test"], env=env, capture_output=True)  # no run outlives the test
        time.sleep(1)
        for p in reversed(daemons):
            p.terminate()
            p.wait(timeout=30)


def tasks(job: str, env: dict) -> dict[int, dict[str, str]]:
    """Each array task's fields in `scontrol show job` (JobState, Restarts, ...), by task id."""
    result = subprocess.run(["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True)
    fields = [dict(item.split("=", 1) for item in line.split() if "=" in item) for line in result.stdout.splitlines()]
    return {int(f["ArrayTaskId"]): f for f in fields if f.get("ArrayTaskId", "").isdigit()}


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.5)


def test_a_slurm_sweep_runs_and_a_task_stopped_before_its_time_limit_is_requeued_and_resumed(slurm, tmp_path):
    out = tmp_path / "sweep"
    result = launch("--slurm", "--envs", "Pendulum-v1", "--seeds", "1", "2", "--steps", "3000", "--cpus", "1",
                    "--time", "30", "--out", str(out), *TINY, "--checkpoint-frequency", "500", env=slurm)  # fmt: skip
    assert result.stdout.startswith("submitted array job "), result.stdout
    job = result.stdout.split()[3].rstrip(":")
    assert (out / "sweep.sbatch").read_text().startswith("#!/bin/bash\n")
    log = out / "logs" / "Pendulum-v1__1.log"
    wait_for(lambda: log.exists() and "step 1200/3000" in log.read_text(), 300, "task 0 to pass step 1,200")
    # What Slurm does --signal-before seconds before the time limit: TERM to the batch shell alone.
    subprocess.run(["scancel", "--batch", "--signal=TERM", f"{job}_0"], env=slurm, check=True)
    wait_for(lambda: tasks(job, slurm)[0]["Restarts"] == "1", 120, "task 0 to be requeued")
    # Slurm holds a requeued job back for a while (its BeginTime, about 2 minutes): let it start sooner. Not in the
    # second of the requeue (its SubmitTime): the requeue revoked the job's credential, to the second, and a start in
    # that same second is refused ("Job credential revoked") and never retried.
    requeued = datetime.fromisoformat(tasks(job, slurm)[0]["SubmitTime"])
    start = (requeued + timedelta(seconds=2)).isoformat(timespec="seconds")
    subprocess.run(["scontrol", "update", f"JobId={job}_0", f"StartTime={start}"], env=slurm, check=True)
    wait_for(lambda: [t.get("JobState") for t in tasks(job, slurm).values()] == ["COMPLETED"] * 2, 300,
             f"both tasks to complete: {tasks(job, slurm)}")  # fmt: skip
    assert [t["Restarts"] for _, t in sorted(tasks(job, slurm).items())] == ["1", "0"]
    first = log.read_text()
    [run_dir] = (out / "runs").glob("Pendulum-v1__sac_continuous_action__1__*")  # the resumed run kept its directory
    assert "start 1\n" in first and "stopped by SIGTERM at step" in first and "(exit 0): requeued" in first
    assert f"start 2, resuming from runs/{run_dir.name}/checkpoint.pt\n" in first
    for text in [first, (out / "logs" / "Pendulum-v1__2.log").read_text()]:
        assert "final evaluation at step 3000" in text, text
    scalars = read_scalars(run_dir)
    steps = [step for step, _ in scalars["charts/SPS"]]
    assert steps == sorted(set(steps)) and steps[-1] == 3000  # every step logged once, across the two starts
    assert scalars["eval/episodic_return"][-1][0] == 3000
