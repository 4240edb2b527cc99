"""Environment steps per second once learning has started, measured on real training runs.

    python benchmark/speed.py --env-id Hopper-v5 --updates 5000 --repeats 1

Each run trains sac_continuous_action.py from scratch for learning_starts + `updates` env steps (one gradient
update per env step after learning starts) in a temporary directory, and the rate is read from the wall times
of its TensorBoard charts/SPS points: (last step - first step after learning starts) / (their time apart).
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps_per_second_after(run_dir: Path, learning_starts: int) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    points = [e for e in acc.Scalars("charts/SPS") if e.step > learning_starts]
    first, last = points[0], points[-1]
    return (last.step - first.step) / (last.wall_time - first.wall_time)


def machine() -> str:
    """The CPU model and core count (Linux reports the model in /proc/cpuinfo, not platform.processor())."""
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []  # fmt: skip
    return f"{models[0] if models else platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="Hopper-v5")
    parser.add_argument("--learning-starts", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=5000, help="env steps (= updates) timed after learning starts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args, extra = parser.parse_known_args()  # anything else goes to the script, e.g. --no-cuda
    rates = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as cwd:
            total = args.learning_starts + args.updates
            command = [sys.executable, str(ROOT / "sac_continuous_action.py"), "--env-id", args.env_id,
                       "--total-timesteps", str(total), "--learning-starts", str(args.learning_starts),
                       "--threads", str(args.threads), "--eval-frequency", str(total), "--eval-episodes", "1",
                       "--seed", str(repeat + 1), *extra]  # fmt: skip
            subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
            (run_dir,) = (Path(cwd) / "runs").iterdir()
            rates.append(steps_per_second_after(run_dir, args.learning_starts))
            print(f"run {repeat + 1}: {rates[-1]:.1f} env steps/s after learning starts", flush=True)
    mean = sum(rates) / len(rates)
    print(f"{args.env_id}, {args.threads} threads, {args.updates} updates timed, {machine()}: "
          f"mean {mean:.1f} env steps/s over {len(rates)} runs")  # fmt: skip


if __name__ == "__main__":
    main()
