"""Run a sweep: one training script over environments x seeds, on this machine with a pool of workers, or on a
Slurm cluster as one array job.

    python benchmark/launch.py sac_continuous_action.py --envs Hopper-v5 Walker2d-v5 --seeds 1 2 3 \\
        --steps 1000000 [--workers N] [--out DIR] [--dry-run] [--slurm [SLURM OPTIONS]] [-- FLAGS FOR THE SCRIPT]

The benchmark/*.sh sweeps call this with the published settings. In the environment, ENVS, SEEDS, STEPS and WORKERS
(space-separated lists, numbers) replace --envs, --seeds, --steps and --workers, and EXTRA_ARGS adds flags for the
script: ENVS="Hopper-v5" SEEDS="1 2" STEPS=100000 benchmark/sac_v1_value.sh. --env-flags gives flags to the runs of
one environment (sac_v1_value.sh: the paper's reward scale of each task); the flags for all come after them and win.

Every run works in the sweep directory (--out, default sweeps/{script}-{date}-{time}/): its TensorBoard log lands in
runs/ there, and its console output is streamed, line by line as it is printed, to logs/{env}__{seed}.log. By
default as many runs go at once as there are cores, with torch's threads per run set so that together they use each
core once. One progress line tells how many runs are finished, running, waiting and failed; at the end a summary names
every run that did not finish (a failed one with its exit code, its log and the log's last line), and the exit code is
1 if any run did not finish.

The runs write a checkpoint every --checkpoint-frequency steps. Ctrl-C or SIGTERM stops the sweep: its runs write their
checkpoints and exit. The same command on the same --out continues the sweep (the directory's sweep.json holds its
arguments and how each run ended): a finished run is skipped, a stopped one resumes from its checkpoint (exactly), one
that never started starts, and a failed one is named and started again only with --retry-failed (from its checkpoint
if it has one); one line per run says which. A command whose script, envs, seeds, steps or script flags differ from
the sweep's is refused in one line (exit 2). A run that must start anew but left a run directory without a checkpoint
(stopped before its first one) has that directory moved to discarded/, which the report does not read.

--reported DIR skips the runs that an earlier report (benchmark/report.py's --out) holds to the last step: their
evaluation CSV in DIR/eval_curves/ ends at --steps. A sweep whose sweep directory is gone (a new machine) continues
this way from the small files its results page kept: give it a new --out, and report the page and the new sweep
directory together (report.py reads both).

--slurm writes {out}/sweep.sbatch, one array task per run (with --partition, --time, --cpus, --gpus, --mem; --workers
caps the tasks running at once), and submits it with sbatch. The runs write a checkpoint every --checkpoint-frequency
steps; --signal-before seconds before a task's time limit Slurm sends it TERM, the run checkpoints and the task puts
itself back in the queue; a requeued task (this way, or pre-empted) resumes its run from the checkpoint. The runs'
logs are the same files as above, appended across a task's starts; Slurm's own messages go to logs/slurm-*.out.
"""

import argparse
import json
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
RECORD = "sweep.json"  # in the sweep directory: the sweep's arguments and how each run ended
# What makes a sweep the sweep it is (a continuation must give the same), and how the refusal names each.
IDENTITY = {"script": "the script", "envs": "--envs", "seeds": "--seeds", "steps": "--steps",
            "flags": "the script's flags (after -- and in EXTRA_ARGS)", "env_flags": "--env-flags"}  # fmt: skip
BEFORE_ENV_FLAGS = {"env_flags": {}}  # what a record written before --env-flags existed had: none
FINISHED = "final evaluation at step"  # what each script prints when its run reached its last step (not stopped)


@dataclass
class Run:
    env_id: str
    seed: int
    command: list[str]
    log: Path
    outcome: str | None = None  # "finished", "stopped" (exit 0 after a stop, with a checkpoint), "failed"; None: yet to
    resume: Path | None = None  # the checkpoint this start resumes from
    process: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    returncode: int | None = None
    log_file: object = field(default=None, repr=False)
    log_start: int = 0  # where this start's output begins in the log (which is appended across starts)

    @property
    def name(self) -> str:
        return f"{self.env_id}__{self.seed}"

    @property
    def pattern(self) -> str:
        """The run's directories, relative to the sweep: {env}__{exp_name}__{seed}__{unix time}."""
        return f"runs/{self.env_id.replace('/', '-').replace(':', '-')}__*__{self.seed}__*"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's options, with the environment's overrides, and the flags after `--` for the script."""
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script", choices=SCRIPTS, help="the training script to sweep")
    parser.add_argument("--envs", nargs="+", required=True, help="gymnasium ids")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--steps", type=int, help="--total-timesteps of every run (default: the script's own)")
    parser.add_argument("--env-flags", nargs="+", default=[], metavar="ENV=FLAGS",
                        help="flags for the runs of one environment only, before the flags for all (which "
                             "win): Humanoid-v5='--reward-scale 20'; an environment not swept is left out")  # fmt: skip
    parser.add_argument("--workers", type=int, help="runs at once (default: one per core)")
    parser.add_argument("--out", type=Path, help="the sweep directory (default: sweeps/{script}-{date}-{time})")
    parser.add_argument("--dry-run", action="store_true", help="print the commands (the sbatch script), run nothing")
    parser.add_argument("--checkpoint-frequency", type=int, default=100_000, metavar="STEPS",
                        help="the runs' --checkpoint-frequency, unless the script flags set it: a stopped sweep loses "
                             "at most this many steps per run (default: 100000)")  # fmt: skip
    parser.add_argument("--reported", type=Path, metavar="DIR",
                        help="skip runs whose evaluations in DIR/eval_curves/ (a report) reach --steps")  # fmt: skip
    parser.add_argument("--retry-failed", action="store_true",
                        help="continuing a sweep: start its failed runs again (default: name them)")  # fmt: skip
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
    for variable, flag in OVERRIDES.items():
        if os.environ.get(variable, "").strip():
            own += [f"--{flag}", *os.environ[variable].split()]  # given last, it wins over the same flag before it
    args = parser.parse_args(own)
    if args.workers is not None and args.workers <= 0:
        parser.error(f"--workers must be positive, got {args.workers}")
    for flag in ["steps", "cpus", "signal_before", "checkpoint_frequency"]:
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if args.reported is not None and not (args.reported / "eval_curves").is_dir():
        parser.error(f"--reported {args.reported}: no eval_curves/ there (give a directory report.py wrote)")
    if args.reported is not None and args.steps is None:
        parser.error("--reported needs --steps: a run is reported when its evaluations reach that step")
    if args.gpus < 0:
        parser.error(f"--gpus must be 0 or more, got {args.gpus}")
    env_flags = {}
    for item in args.env_flags:
        env_id, equals, flags = item.partition("=")
        if not equals or not env_id:
            parser.error(f"--env-flags {item!r}: give ENV=FLAGS, e.g. Humanoid-v5='--reward-scale 20'")
        if env_id in args.envs:  # (a sweep's own list may name more environments than ENVS keeps)
            env_flags[env_id] = shlex.split(flags)
    args.env_flags = env_flags
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
    if not any(flag.split("=")[0] == "--checkpoint-frequency" for flag in extra):  # a stopped run resumes from it
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
                *args.env_flags.get(env_id, []),
                *extra,
            ],
            logs / f"{env_id.replace('/', '-').replace(':', '-')}__{seed}.log",
        )  # fmt: skip
        for env_id, seed in runs
    ], workers


def command_of(run: Run) -> list[str]:
    return [*run.command, "--resume", str(run.resume)] if run.resume else run.command


def start(run: Run, out: Path) -> None:
    """Start the run, its output appended to its log after a line that says how it starts."""
    run.log.parent.mkdir(parents=True, exist_ok=True)
    run.log_file = open(run.log, "a")
    how = f"resumes from {run.resume}" if run.resume else "starts"
    run.log_file.write(f"launch.py {time.strftime('%Y-%m-%d %H:%M:%S')}: {run.name} {how}\n")
    run.log_file.flush()
    run.log_start = run.log_file.tell()
    # Unbuffered: the log file receives each line as the script prints it, not when the run ends.
    # SAC_SWEEP: the runs share the cores by plan (--threads each), so a sibling run is no reason to warn of a busy one.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SAC_SWEEP": "1"}
    run.process = subprocess.Popen(command_of(run), cwd=out, stdout=run.log_file, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    run.started = time.time()


def finish(run: Run, returncode: int) -> None:
    """How the run ended: failed (exit code not 0), finished (it printed its final evaluation) or stopped."""
    run.returncode, run.seconds = returncode, time.time() - run.started
    run.log_file.close()
    with open(run.log, "rb") as f:
        f.seek(run.log_start)
        printed = f.read().decode(errors="replace")
    run.outcome = "failed" if returncode != 0 else "finished" if FINISHED in printed else "stopped"


def last_line_of(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-200:] if lines else "(empty)"


class ProgressLine:
    """One line, redrawn in place on a terminal, printed anew otherwise, whenever the counts change."""

    def __init__(self, total: int):
        self.total, self.tty, self.last, self.began = total, sys.stdout.isatty(), None, time.time()

    def show(self, runs: list[Run]) -> None:
        ended = {outcome: sum(run.outcome == outcome for run in runs) for outcome in ("finished", "stopped", "failed")}
        running = sum(run.process is not None and run.outcome is None for run in runs)
        counts = (*ended.values(), running)
        if counts == self.last:
            return
        self.last = counts
        elapsed = time.strftime("%H:%M:%S", time.gmtime(time.time() - self.began))
        waiting = self.total - sum(ended.values()) - running
        stopped = f", {ended['stopped']} stopped" if ended["stopped"] else ""  # only while the sweep is being stopped
        text = (f"{ended['finished']}/{self.total} runs finished, {running} running, {waiting} waiting, "
                f"{ended['failed']} failed{stopped}  ({elapsed})")  # fmt: skip
        print(f"\r{text}" if self.tty else text, end="" if self.tty else "\n", flush=True)

    def close(self) -> None:
        if self.tty:
            print()


def run_all(runs: list[Run], workers: int, out: Path, record: dict) -> None:
    """Keep `workers` runs going until all that have no outcome yet have ended; the record is written as each starts
    and ends. SIGINT or SIGTERM: the runs going get SIGTERM (they stop after their step and write their checkpoint), no
    new one starts."""
    stopping, progress = [], ProgressLine(len(runs))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopping.append(signum))
    waiting, going = [run for run in runs if run.outcome is None], []
    while waiting or going:
        if stopping:
            for run in going:
                run.process.send_signal(signal.SIGTERM)
            waiting, stopping = [], []
        for run in list(going):
            if (code := run.process.poll()) is not None:
                finish(run, code)
                going.remove(run)
                write_record(out, record, runs)
        while waiting and len(going) < workers:  # after the ends, so one progress line shows both
            run = waiting.pop(0)
            discard_stale(run, out)
            start(run, out)
            going.append(run)
            write_record(out, record, runs)
        progress.show(runs)
        time.sleep(0.2)
    progress.close()


def summary(runs: list[Run], out: Path) -> int:
    """Print how the sweep went; return the launcher's exit code (1 if any run did not finish)."""
    unfinished = [run for run in runs if run.outcome != "finished"]
    print(f"{len(runs) - len(unfinished)} of {len(runs)} runs finished"
          + (f", {len(unfinished)} did not:" if unfinished else ""))  # fmt: skip
    for run in unfinished:
        if run.outcome is None:
            print(f"  {run.name}: not started (the sweep was stopped)")
        elif run.outcome == "stopped":
            print(f"  {run.name}: stopped after {run.seconds:.0f} s, with its checkpoint")
        elif run.returncode is None:  # failed in an earlier start of the sweep, not retried
            print(f"  {run.name}: failed before; log {run.log} (--retry-failed starts it again)")
        else:
            print(f"  {run.name}: exit {run.returncode} after {run.seconds:.0f} s; log {run.log}\n"
                  f"      {last_line_of(run.log.read_text(errors='replace')[run.log_start:])}")  # fmt: skip
    if any(run.outcome in (None, "stopped") for run in runs):
        print(f"continue the sweep with the same command (--out {out})")
    return 1 if unfinished else 0


# ----------------------------------------------------------------------------------------------------
# Continuing a sweep: its record (sweep.json) and each run's checkpoint decide what each run does.
# ----------------------------------------------------------------------------------------------------
def identity(args: argparse.Namespace, extra: list[str]) -> dict:
    return {"script": args.script, "envs": args.envs, "seeds": args.seeds, "steps": args.steps, "flags": extra,
            "env_flags": args.env_flags}  # fmt: skip


def read_record(out: Path, args: argparse.Namespace, extra: list[str]) -> dict | None:
    """The record of the sweep in `out` (None if there is none yet); the program ends (exit 2) if its arguments
    differ from this command's, or if the sweep is still going."""
    path = out / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        refuse(f"--out {out}: cannot read {RECORD} ({e})")
    for key, value in identity(args, extra).items():
        if (recorded := record["arguments"].get(key, BEFORE_ENV_FLAGS.get(key))) != value:
            theirs, ours = (shlex.join(map(str, v)) if isinstance(v, list) else str(v) for v in (recorded, value))
            refuse(f"--out {out} is a sweep with {IDENTITY[key]} {theirs or '(none)'}, not {ours or '(none)'}: "
                   "continue it with its own arguments, or give another --out")  # fmt: skip
    for name, pid in [("launch.py", record.get("launcher")), *[(name, run.get("pid"))
                      for name, run in record["runs"].items() if run.get("outcome") is None]]:  # fmt: skip
        if pid and pid != os.getpid() and still_going(pid, name):
            refuse(f"--out {out}: the sweep is still going ({name}, pid {pid}); stop it first")
    return record


def still_going(pid: int, name: str) -> bool:
    """Whether the process `pid` is alive and is this sweep's launcher or run (not another that took its pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return ("launch.py" if name == "launch.py" else "--env-id") in command


def refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def continue_runs(runs: list[Run], record: dict, out: Path, retry_failed: bool) -> None:
    """What each run of a sweep that has a record does now, one line each: skipped (finished, or failed and not
    retried), resumed from its newest checkpoint, or started."""
    for run in [run for run in runs if run.outcome is None]:  # (not those --reported skipped)
        before = record["runs"].get(run.name, {}).get("outcome")
        checkpoint = newest_checkpoint(run, out)
        if before == "finished":
            run.outcome, line = "finished", "finished: skipped"
        elif before == "failed" and not retry_failed:
            run.outcome, line = "failed", f"failed before: skipped (--retry-failed starts it again); log {run.log}"
        else:
            run.resume = checkpoint
            was = {"failed": "failed before", "stopped": "stopped", None: "not started" if not checkpoint else "ended"}
            line = f"{was[before]}: " + (f"resumes from {checkpoint}" if checkpoint else "starts")
        print(f"  {run.name}: {line}")


def skip_reported(runs: list[Run], reported: Path, script: str, steps: int) -> None:
    """--reported: each run yet to run whose evaluation CSV in that report ends at `steps` is skipped, one line each.
    The CSV is named as report.py names it: {env}__{exp_name}__{seed}.csv (exp_name: --exp-name, or the script)."""
    for run in runs:
        path = reported / "eval_curves" / f"{run.env_id.replace('/', '-')}__{script}__{run.seed}.csv"
        if path.is_file():
            rows = path.read_text().split()[1:]  # under the header: step,mean_return,std_return
            if rows and int(rows[-1].split(",")[0]) == steps:
                run.outcome = "finished"
                print(f"  {run.name}: in {path}: skipped")


def newest_checkpoint(run: Run, out: Path) -> Path | None:
    found = sorted(out.glob(f"{run.pattern}/checkpoint.pt"), key=lambda path: path.stat().st_mtime)
    return found[-1].relative_to(out) if found else None


def discard_stale(run: Run, out: Path) -> None:
    """A run that starts anew: the directories an earlier start left without a checkpoint go to discarded/ (kept, but
    out of the report's way: a seed counted twice would skew it)."""
    if run.resume:
        return
    for stale in out.glob(run.pattern):
        (out / "discarded").mkdir(exist_ok=True)
        stale.rename(out / "discarded" / stale.name)
        print(f"  {run.name}: {stale.relative_to(out)} has no checkpoint to resume from: moved to discarded/")


def write_record(out: Path, record: dict, runs: list[Run]) -> None:
    """sweep.json, atomically (a stop mid-write leaves the previous one whole)."""
    record["runs"] = {run.name: {"outcome": run.outcome, "exit": run.returncode,
                                 "pid": run.process.pid if run.process else None} for run in runs}  # fmt: skip
    (out / f"{RECORD}.tmp").write_text(json.dumps(record, indent=1) + "\n")
    os.replace(out / f"{RECORD}.tmp", out / RECORD)


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
PYTHONUNBUFFERED=1 SAC_SWEEP=1 "${command[@]}" >> "$log" 2>&1 < /dev/null &
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
        checkpoints = f"runs/{run.env_id.replace('/', '-').replace(':', '-')}__*__{run.seed}__*/checkpoint.pt"
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
    record = read_record(out, args, extra)
    if args.reported:
        exp_name = extra[extra.index("--exp-name") + 1] if "--exp-name" in extra[:-1] else Path(args.script).stem
        skip_reported(runs, args.reported, exp_name, args.steps)
    if args.slurm:
        to_submit = [run for run in runs if run.outcome is None]
        if not to_submit:
            print(f"nothing to submit: --reported {args.reported} holds every run")
            return 0
        if args.dry_run:
            print(sbatch_script(args, to_submit), end="")
            return 0
        return submit(args, to_submit)
    if record:
        print(f"continuing the sweep in {out}:")
        continue_runs(runs, record, out, args.retry_failed)
    if args.dry_run:
        for run in [run for run in runs if run.outcome is None]:
            print(f"cd {shlex.quote(str(out))} && {shlex.join(command_of(run))} >> {shlex.quote(str(run.log))} 2>&1")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    record = {"arguments": identity(args, extra), "launcher": os.getpid()}
    write_record(out, record, runs)
    to_run = sum(run.outcome is None for run in runs)
    print(f"sweep of {len(runs)} runs of {args.script}, {to_run} to run, {workers} at a time, in {out} "
          f"(logs in {out / 'logs'})")  # fmt: skip
    run_all(runs, workers, out, record)
    record["launcher"] = None  # ended: a later launcher that gets this pid is not this sweep's
    write_record(out, record, runs)
    code = summary(runs, out)
    report_hint(out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
