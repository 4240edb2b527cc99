"""Run a sweep: one training script over environments x seeds, on this machine with a pool of workers, or on a
Slurm cluster as one array job.

    python benchmark/launch.py sac_continuous_action.py --envs Hopper-v5 Walker2d-v5 --seeds 1 2 3 \\
        --steps 1000000 [--workers N] [--out DIR] [--dry-run] [--slurm [SLURM OPTIONS]] [-- FLAGS FOR THE SCRIPT]

The benchmark/*.sh sweeps call this with the published settings. In the environment, ENVS, SEEDS, STEPS and WORKERS
(space-separated lists, numbers) replace --envs, --seeds, --steps and --workers, and EXTRA_ARGS adds flags for the
script: ENVS="Hopper-v5" SEEDS="1 2" STEPS=100000 benchmark/sac_v1_value.sh

Every run works in the sweep directory (--out, default sweeps/{script}-{date}-{time}/): its TensorBoard log lands in
runs/ there, and its console output is streamed, line by line as it is printed, to logs/{env}__{seed}.log. By
default as many runs go at once as there are cores, with torch's threads per run set so that together they use each
core once. One progress line tells how many runs are done, running, waiting and failed; at the end a summary names
every failed run with its exit code, its log and the log's last line, and the exit code is 1 if any run failed.

--slurm writes {out}/sweep.sbatch, one array task per run (with --partition, --time, --cpus, --gpus, --mem; --workers
caps the tasks running at once), and submits it with sbatch. The runs write a checkpoint every --checkpoint-frequency
steps; --signal-before seconds before a task's time limit Slurm sends it TERM, the run checkpoints and the task puts
itself back in the queue; a requeued task (this way, or pre-empted) resumes its run from the checkpoint. The runs'
logs are the same files as above, appended across a task's starts; Slurm's own messages go to logs/slurm-*.out.
"""

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["sac_continuous_action.py", "sac_v1_value.py", "sac_discrete_atari.py"]
OVERRIDES = {"ENVS": "envs", "SEEDS": "seeds", "STEPS": "steps", "WORKERS": "workers"}  # environment -> flag


@dataclass
class Run:
    env_id: str
    seed: int
    command: list[str]
    log: Path
    process: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    returncode: int | None = None
    log_file: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.env_id}__{self.seed}"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's options, with the environment's overrides, and the flags after `--` for the script."""
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script", choices=SCRIPTS, help="the training script to sweep")
    parser.add_argument("--envs", nargs="+", required=True, help="gymnasium ids")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--steps", type=int, help="--total-timesteps of every run (default: the script's own)")
    parser.add_argument("--workers", type=int, help="runs at once (default: one per core)")
    parser.add_argument("--out", type=Path, help="the sweep directory (default: sweeps/{script}-{date}-{time})")
    parser.add_argument("--dry-run", action="store_true", help="print the commands (the sbatch script), run nothing")
    slurm = parser.add_argument_group("Slurm", "--slurm: one array job, one task per run, submitted with sbatch")
    slurm.add_argument("--slurm", action="store_true", help="submit the sweep to Slurm instead of running it here")
    slurm.add_argument("--partition", help="#SBATCH --partition (default: the cluster's)")
    slurm.add_argument("--time", default="1-00:00:00", help="#SBATCH --time of each task (default: %(default)s)")
    slurm.add_argument("--cpus", type=int, default=2, help="#SBATCH --cpus-per-task, and --threads (default: 2)")
    slurm.add_argument("--gpus", type=int, default=0, help="#SBATCH --gres=gpu:N per task (default: 0)")
    slurm.add_argument("--mem", help="#SBATCH --mem per task, e.g. 16G (default: the cluster's)")
    slurm.add_argument("--signal-before", type=int, default=300, metavar="SECONDS",
                       help="SIGTERM this long before the time limit: the run checkpoints and the task is requeued "
                            "(default: 300)")  # fmt: skip
    slurm.add_argument(
        "--checkpoint-frequency",
        type=int,
        default=100_000,
        metavar="STEPS",
        help="the runs' --checkpoint-frequency, unless the script flags set it (default: 100000)",
    )
    for variable, flag in OVERRIDES.items():
        if os.environ.get(variable, "").strip():
            own += [f"--{flag}", *os.environ[variable].split()]  # given last, it wins over the same flag before it
    args = parser.parse_args(own)
    if args.workers is not None and args.workers <= 0:
        parser.error(f"--workers must be positive, got {args.workers}")
    for flag in ["steps", "cpus", "signal_before", "checkpoint_frequency"]:
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if args.gpus < 0:
        parser.error(f"--gpus must be 0 or more, got {args.gpus}")
    if args.out is None:
        args.out = Path("sweeps") / f"{Path(args.script).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    return args, extra + shlex.split(os.environ.get("EXTRA_ARGS", ""))


def plan(args: argparse.Namespace, extra: list[str]) -> tuple[list[Run], int]:
    """Every run's command and log, and the number of workers. Threads per run, unless the script's flags set
    --threads themselves: here the cores shared among the workers (at least 1), on Slurm the task's --cpus."""
    runs = [(env_id, seed) for env_id in args.envs for seed in args.seeds]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(args.workers or cores, len(runs))
    per_run = args.cpus if args.slurm else max(1, cores // workers)
    threads = [] if "--threads" in extra else ["--threads", str(per_run)]
    steps = [] if args.steps is None else ["--total-timesteps", str(args.steps)]
    if args.slurm and "--checkpoint-frequency" not in extra:  # a requeued task resumes from its checkpoint
        extra = [*extra, "--checkpoint-frequency", str(args.checkpoint_frequency)]
    logs = args.out.resolve() / "logs"
    return [
        Run(
            env_id,
            seed,
            [
                sys.executable,
                str(ROOT / args.script),
                "--env-id",
                env_id,
                "--seed",
                str(seed),
                *steps,
                *threads,
                *extra,
            ],
            logs / f"{env_id.replace('/', '-')}__{seed}.log",
        )  # fmt: skip
        for env_id, seed in runs
    ], workers


def start(run: Run, out: Path) -> None:
    run.log.parent.mkdir(parents=True, exist_ok=True)
    run.log_file = open(run.log, "w")
    # Unbuffered: the log file receives each line as the script prints it, not when the run ends.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run.process = subprocess.Popen(run.command, cwd=out, stdout=run.log_file, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    run.started = time.time()


def finish(run: Run, returncode: int) -> None:
    run.returncode, run.seconds = returncode, time.time() - run.started
    run.log_file.close()


def last_line_of(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-200:] if lines else "(empty)"


class ProgressLine:
    """One line, redrawn in place on a terminal, printed anew otherwise, whenever the counts change."""

    def __init__(self, total: int):
        self.total, self.tty, self.last, self.began = total, sys.stdout.isatty(), None, time.time()

    def show(self, runs: list[Run]) -> None:
        done = sum(run.returncode is not None for run in runs)
        failed = sum(run.returncode not in (None, 0) for run in runs)
        running = sum(run.process is not None and run.returncode is None for run in runs)
        counts = (done, running, failed)
        if counts == self.last:
            return
        self.last = counts
        elapsed = time.strftime("%H:%M:%S", time.gmtime(time.time() - self.began))
        text = (f"{done}/{self.total} runs done, {running} running, {self.total - done - running} waiting, "
                f"{failed} failed  ({elapsed})")  # fmt: skip
        print(f"\r{text}" if self.tty else text, end="" if self.tty else "\n", flush=True)

    def close(self) -> None:
        if self.tty:
            print()


def run_all(runs: list[Run], workers: int, out: Path) -> None:
    """Keep `workers` runs going until all have ended. SIGINT or SIGTERM: the runs going get SIGTERM (they stop
    after their step and write their checkpoint, if they write any), no new one starts."""
    stopping, progress = [], ProgressLine(len(runs))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopping.append(signum))
    waiting, going = list(runs), []
    while waiting or going:
        if stopping:
            for run in going:
                run.process.send_signal(signal.SIGTERM)
            waiting, stopping = [], []
        for run in list(going):
            if (code := run.process.poll()) is not None:
                finish(run, code)
                going.remove(run)
        while waiting and len(going) < workers:  # after the ends, so one progress line shows both
            going.append(waiting.pop(0))
            start(going[-1], out)
        progress.show(runs)
        time.sleep(0.2)
    progress.close()


def summary(runs: list[Run]) -> int:
    """Print how the sweep went; return the launcher's exit code (1 if any run failed or never started)."""
    failed = [run for run in runs if run.returncode != 0]
    ok = len(runs) - len(failed)
    print(f"{ok} of {len(runs)} runs succeeded" + (f", {len(failed)} did not:" if failed else ""))
    for run in failed:
        if run.returncode is None:
            print(f"  {run.name}: not started (the sweep was stopped)")
        else:
            print(f"  {run.name}: exit {run.returncode} after {run.seconds:.0f} s; log {run.log}\n"
                  f"      {last_line_of(run.log.read_text(errors='replace'))}")  # fmt: skip
    return 1 if failed else 0


# What every task runs after the `case` that gave it its log, its command and where its run's checkpoint would be.
TASK = """
cd "$SWEEP"
# A requeued task (stopped before its time limit, or pre-empted) continues its run from the run's last checkpoint.
checkpoint=$(ls -t $checkpoints 2>/dev/null | head -n 1)
if [ -n "$checkpoint" ]; then command+=(--resume "$checkpoint"); fi
start=$((${SLURM_RESTART_COUNT:-0} + 1))
echo "slurm job $SLURM_JOB_ID on $(hostname), start $start${checkpoint:+, resuming from $checkpoint}" >> "$log"
# Slurm sends TERM to this shell alone (B:TERM) before the time limit: the shell passes it on to the run, which ends
# its step, writes its checkpoint and exits 0; then the shell puts the task back in the queue. A pre-empted task gets
# TERM from Slurm itself and Slurm requeues it (--requeue).
stopping=
trap 'stopping=1; kill -TERM "$pid" 2>/dev/null' TERM
PYTHONUNBUFFERED=1 "${command[@]}" >> "$log" 2>&1 < /dev/null &
pid=$!
wait "$pid"; code=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; code=$?; done  # a trapped signal ends a wait early: wait again
if [ -n "$stopping" ]; then
    echo "slurm job $SLURM_JOB_ID stopped before its time limit (exit $code): requeued" >> "$log"
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$code"
"""


def sbatch_script(args: argparse.Namespace, runs: list[Run]) -> str:
    """One array job, task i = runs[i]: the #SBATCH options, each task's log, checkpoint pattern and command, then
    TASK."""
    out = args.out.resolve()
    options = [f"--job-name={Path(args.script).stem}",
               f"--array=0-{len(runs) - 1}" + (f"%{args.workers}" if args.workers else ""),  # %N: N tasks at once
               f"--output={out / 'logs' / 'slurm-%A_%a.out'}", "--open-mode=append", "--requeue",
               f"--signal=B:TERM@{args.signal_before}", f"--time={args.time}",
               f"--cpus-per-task={args.cpus}"]  # fmt: skip
    options += [f"--partition={args.partition}"] if args.partition else []
    options += [f"--gres=gpu:{args.gpus}"] if args.gpus else []
    options += [f"--mem={args.mem}"] if args.mem else []
    tasks = []
    for i, run in enumerate(runs):
        checkpoints = f"runs/{run.env_id.replace('/', '-')}__*__{run.seed}__*/checkpoint.pt"
        tasks.append(f"    {i}) log={shlex.quote(str(run.log))} checkpoints={shlex.quote(checkpoints)}\n"
                     f"       command=({shlex.join(run.command)}) ;;")  # fmt: skip
    return "\n".join([
        "#!/bin/bash",
        f"# {args.script} over {len(runs)} runs, one array task each; written by benchmark/launch.py --slurm.",
        f"# Submit it again with: sbatch {shlex.quote(str(out / 'sweep.sbatch'))}",
        *(f"#SBATCH {option}" for option in options),
        f"SWEEP={shlex.quote(str(out))}",
        'case "$SLURM_ARRAY_TASK_ID" in',
        *tasks,
        "esac",
    ]) + "\n" + TASK  # fmt: skip


def submit(args: argparse.Namespace, runs: list[Run]) -> int:
    """Write {out}/sweep.sbatch and submit it; the runs' logs go where the local launcher puts them."""
    if shutil.which("sbatch") is None:
        print("error: --slurm: sbatch is not on PATH (run the launcher where Slurm's commands are, or add --dry-run "
              "to see the script)", file=sys.stderr)  # fmt: skip
        return 2
    out = args.out.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)  # Slurm does not create the directory of --output
    path = out / "sweep.sbatch"
    path.write_text(sbatch_script(args, runs))
    result = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"error: sbatch {path}: {last_line_of(result.stderr)}", file=sys.stderr)
        return 1
    job = result.stdout.strip().split(";")[0]
    print(f"submitted array job {job}: {len(runs)} tasks of {args.script}, script {path}, logs in {out / 'logs'}; "
          f"watch with: squeue -j {job}")  # fmt: skip
    report_hint(out)
    return 0


def report_hint(out: Path) -> None:
    report = ROOT / "benchmark" / "report.py"
    print(f"report: python {shlex.quote(str(report))} {shlex.quote(str(out))} --out {shlex.quote(str(out / 'report'))}")


def main(argv: list[str]) -> int:
    args, extra = parse_args(argv)
    runs, workers = plan(args, extra)
    out = args.out.resolve()
    if args.slurm:
        if args.dry_run:
            print(sbatch_script(args, runs), end="")
            return 0
        return submit(args, runs)
    if args.dry_run:
        for run in runs:
            print(f"cd {shlex.quote(str(out))} && {shlex.join(run.command)} > {shlex.quote(str(run.log))} 2>&1")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    print(f"sweep of {len(runs)} runs of {args.script}, {workers} at a time, in {out} (logs in {out / 'logs'})")
    run_all(runs, workers, out)
    code = summary(runs)
    report_hint(out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
