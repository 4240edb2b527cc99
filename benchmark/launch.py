"""Run a sweep: one training script over environments x seeds, on this machine with a pool of workers.

    python benchmark/launch.py sac_continuous_action.py --envs Hopper-v5 Walker2d-v5 --seeds 1 2 3 \\
        --steps 1000000 [--workers N] [--out DIR] [--dry-run] [-- FLAGS FOR THE SCRIPT]

The benchmark/*.sh sweeps call this with the published settings. In the environment, ENVS, SEEDS, STEPS and WORKERS
(space-separated lists, numbers) replace --envs, --seeds, --steps and --workers, and EXTRA_ARGS adds flags for the
script: ENVS="Hopper-v5" SEEDS="1 2" STEPS=100000 benchmark/sac_v1_value.sh

Every run works in the sweep directory (--out, default sweeps/{script}-{date}-{time}/): its TensorBoard log lands in
runs/ there, and its console output is streamed, line by line as it is printed, to logs/{env}__{seed}.log. By
default as many runs go at once as there are cores, with torch's threads per run set so that together they use each
core once. One progress line tells how many runs are done, running, waiting and failed; at the end a summary names
every failed run with its exit code, its log and the log's last line, and the exit code is 1 if any run failed.
"""

import argparse
import os
import shlex
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
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    for variable, flag in OVERRIDES.items():
        if os.environ.get(variable, "").strip():
            own += [f"--{flag}", *os.environ[variable].split()]  # given last, it wins over the same flag before it
    args = parser.parse_args(own)
    if args.workers is not None and args.workers <= 0:
        parser.error(f"--workers must be positive, got {args.workers}")
    if args.steps is not None and args.steps <= 0:
        parser.error(f"--steps must be positive, got {args.steps}")
    if args.out is None:
        args.out = Path("sweeps") / f"{Path(args.script).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    return args, extra + shlex.split(os.environ.get("EXTRA_ARGS", ""))


def plan(args: argparse.Namespace, extra: list[str]) -> tuple[list[Run], int]:
    """Every run's command and log, and the number of workers. Threads per run: the cores shared among the
    workers (at least 1), unless the script's flags set --threads themselves."""
    runs = [(env_id, seed) for env_id in args.envs for seed in args.seeds]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(args.workers or cores, len(runs))
    threads = [] if "--threads" in extra else ["--threads", str(max(1, cores // workers))]
    steps = [] if args.steps is None else ["--total-timesteps", str(args.steps)]
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


def last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][-200:] if lines else "(empty log)"


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
        while waiting and len(going) < workers:
            going.append(waiting.pop(0))
            start(going[-1], out)
        for run in list(going):
            if (code := run.process.poll()) is not None:
                finish(run, code)
                going.remove(run)
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
                  f"      {last_line(run.log)}")  # fmt: skip
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    args, extra = parse_args(argv)
    runs, workers = plan(args, extra)
    out = args.out.resolve()
    if args.dry_run:
        for run in runs:
            print(f"cd {shlex.quote(str(out))} && {shlex.join(run.command)} > {shlex.quote(str(run.log))} 2>&1")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    print(f"sweep of {len(runs)} runs of {args.script}, {workers} at a time, in {out} (logs in {out / 'logs'})")
    run_all(runs, workers, out)
    code = summary(runs)
    print(f"report: python {shlex.quote(str(ROOT / 'benchmark' / 'report.py'))} {shlex.quote(str(out))} "
          f"--out {shlex.quote(str(out / 'report'))}")  # fmt: skip
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
