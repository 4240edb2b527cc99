"""Environment steps per second once learning has started: each mode of each script, Stable-Baselines3 and SBX.

    pip install -r requirements-bench.txt       # adds the peers, Stable-Baselines3 and SBX (not needed for training)
    python benchmark/speed.py --env-id Hopper-v5 --updates 3000 --repeats 3
    python benchmark/speed.py --env-id BreakoutNoFrameskip-v4 --learning-starts 2000 --updates 2000 --repeats 3

For an Atari id it times sac_discrete_atari.py at its defaults (batch 64, one update every 4 env steps), with no
peer: Stable-Baselines3's SAC has no discrete actions.

Every run trains from scratch in a temporary directory for learning_starts + `updates` env steps, one gradient
update per env step once learning has started (batch 256, 256x256 networks; automatic alpha for SAC v2 and the
peers, sac_v1_value.py at its defaults: a value network and a fixed alpha, and a V-Q-pi update every step). The runs are
alternated (mode 1, mode 2, ..., then again) so that a machine whose speed drifts treats every mode alike.
Each rate covers the steps from 100 after learning starts to the end, so that no compiler's first wait (torch.compile,
XLA's jit) is in it: a script's is read from its TensorBoard charts/SPS points, a peer's from a callback at the same
steps. The table gives the mean and spread over the repeats and the ratios to each peer on the CPU and to the
script's eager mode. SBX (Stable-Baselines3's SAC in JAX, its whole gradient
step one jit-compiled call) runs on the CPU; XLA takes its threads itself (all cores), --threads sets torch's.
Modes that need a GPU run only where CUDA is available.

--side-by-side N starts N copies of each run at once (as several runs sharing a machine do) and gives the mean rate of
one copy. The runs inherit the environment, so an OpenMP setting is measured by setting it for speed.py:
    OMP_WAIT_POLICY=PASSIVE python benchmark/speed.py --modes eager --side-by-side 2
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tensorboard_logs import read_run, steps_per_second

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["sac_continuous_action.py", "sac_v1_value.py"]  # those that exist are measured
ATARI_SCRIPTS = ["sac_discrete_atari.py"]  # for Atari ids
CPU_MODES = {"eager": ["--no-cuda", "--no-compile"], "compile": ["--no-cuda", "--compile"]}
CUDA_MODES = {"cuda": ["--cuda", "--no-compile"], "cuda+compile": ["--cuda", "--compile"],
              "cuda+compile+cudagraphs": ["--cuda", "--compile", "--cudagraphs"]}  # fmt: skip
PEERS = {"stable-baselines3": "stable_baselines3", "sbx": "sbx"}  # mode -> the module whose SAC it times

# A peer's SAC (Stable-Baselines3's, or SBX's with the same interface) with the settings of our scripts; it prints its
# rate after learning starts.
PEER_PROGRAM = """
import importlib, sys, time
import gymnasium as gym, torch
from stable_baselines3.common.callbacks import BaseCallback
env_id, learning_starts, total, threads, seed, device, module = sys.argv[1:8]
SAC = importlib.import_module(module).SAC
learning_starts, total, threads = int(learning_starts), int(total), int(threads)
torch.set_num_threads(threads)
class Clock(BaseCallback):
    def __init__(self):
        super().__init__()
        self.times = {}
    def _on_step(self):
        if self.num_timesteps in (learning_starts + 100, total):  # its first updates (and XLA's jit) are before
            self.times[self.num_timesteps] = time.perf_counter()
        return True
model = SAC("MlpPolicy", gym.make(env_id), learning_starts=learning_starts, batch_size=256, buffer_size=1_000_000,
            train_freq=1, gradient_steps=1, ent_coef="auto", policy_kwargs={"net_arch": [256, 256]},
            seed=int(seed), device=device)
clock = Clock()
model.learn(total, callback=clock)
print((total - learning_starts - 100) / (clock.times[total] - clock.times[learning_starts + 100]))
"""


def measure(script: str, flags: list[str], args, seed: int) -> float:
    """--side-by-side training runs at once, each in a fresh temporary directory; the mean of their env steps/s
    after learning starts."""
    total = args.learning_starts + args.updates
    if script in PEERS:  # a peer prints its rate
        device = "cuda" if "--cuda" in flags else "cpu"
        command = [sys.executable, "-c", PEER_PROGRAM, args.env_id, str(args.learning_starts), str(total),
                   str(args.threads), str(seed), device, PEERS[script]]  # fmt: skip
    else:
        command = [sys.executable, str(ROOT / script), "--env-id", args.env_id, "--total-timesteps", str(total),
                   "--learning-starts", str(args.learning_starts), "--threads", str(args.threads),
                   "--eval-frequency", str(total), "--eval-episodes", "1", "--seed", str(seed), *flags]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cwds = [Path(tmp) / str(i) for i in range(args.side_by_side)]
        runs = []
        for cwd in cwds:
            cwd.mkdir()
            runs.append(subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True))
        outputs = [run.communicate()[0] for run in runs]
        if any(run.returncode for run in runs):
            raise SystemExit(f"speed.py: error: {' '.join(command)} failed (exit {[run.returncode for run in runs]})")
        if script in PEERS:
            rates = [float(out.split()[-1]) for out in outputs]
        else:
            # after the first 100 steps of learning, which hold the wait for torch.compile (the peers: for jit)
            sps = [read_run(next((cwd / "runs").iterdir()))[0]["charts/SPS"] for cwd in cwds]
            rates = [steps_per_second(rows, after_step=args.learning_starts + 100) for rows in sps]
    return statistics.mean(rates)


def machine() -> str:
    """The CPU model and core count (Linux reports the model in /proc/cpuinfo, not platform.processor()),
    and the GPU where there is one."""
    import torch

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []  # fmt: skip
    cpu = f"{models[0] if models else platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}{gpu}, torch {torch.__version__}"


def runs_to_make(args) -> list[tuple[str, str, list[str]]]:
    """(label, script or peer, flags) for every mode asked for."""
    import importlib.util

    import torch

    modes = dict(CPU_MODES)
    if torch.cuda.is_available():
        modes.update(CUDA_MODES)
    atari = args.env_id.startswith("ALE/") or "NoFrameskip" in args.env_id
    known = [*modes] if atari else [*modes, *PEERS]
    wanted = args.modes or known
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"speed.py: error: unknown or unavailable --modes {unknown}; here: {known}")
    scripts = [
        s for s in (args.scripts or (ATARI_SCRIPTS if atari else SCRIPTS)) if (ROOT / s).exists() or Path(s).exists()
    ]
    runs = [(f"{Path(s).stem} {m}", s, modes[m]) for s in scripts for m in wanted if m not in PEERS]
    for peer in [m for m in wanted if m in PEERS]:
        if importlib.util.find_spec(PEERS[peer]) is None:
            raise SystemExit(f"speed.py: error: {peer} is not installed: pip install -r requirements-bench.txt")
        runs.append((f"{peer} (cpu)", peer, ["--no-cuda"]))
        if torch.cuda.is_available() and peer == "stable-baselines3":  # SBX's JAX is the CPU build here
            runs.append((f"{peer} (cuda)", peer, ["--cuda"]))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="Hopper-v5")
    parser.add_argument("--learning-starts", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=3000,
                        help="env steps after learning starts (an update each; Atari: every 4th); the first 100 are "
                        "not timed")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode, alternated")
    parser.add_argument("--side-by-side", type=int, default=1, help="copies of each run started at once")
    parser.add_argument("--modes", nargs="*", help=f"default: all ({', '.join([*CPU_MODES, *CUDA_MODES, *PEERS])})")
    parser.add_argument("--scripts", nargs="*", help=f"default: those of {SCRIPTS} that exist")
    args = parser.parse_args()
    if args.updates <= 100:
        parser.error(f"--updates must be above 100 (the first 100 are not timed), got {args.updates}")
    runs = runs_to_make(args)
    rates: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for repeat in range(args.repeats):
        for label, script, flags in runs:
            rates[label].append(measure(script, flags, args, seed=repeat + 1))
            print(f"repeat {repeat + 1}/{args.repeats} {label}: {rates[label][-1]:.1f} env steps/s", flush=True)

    means = {label: statistics.mean(r) for label, r in rates.items()}
    together = f", {args.side_by_side} side by side (the rate of one)" if args.side_by_side > 1 else ""
    omp = f", OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}" if "OMP_WAIT_POLICY" in os.environ else ""
    print(f"\n{args.env_id}, {args.threads} threads{omp}, {args.updates} env steps after {args.learning_starts} random "
          f"steps (the last {args.updates - 100} timed), {args.repeats} runs each{together}, alternated; "
          f"{machine()}\n")  # fmt: skip
    print("| run | env steps/s | vs SB3 (cpu) | vs SBX (cpu) | vs eager |\n|-|-|-|-|-|")
    for label, r in rates.items():
        spread = f" ± {statistics.stdev(r):.1f}" if len(r) > 1 else ""
        peers = [means.get(f"{peer} (cpu)") for peer in PEERS]
        versus = [f"{means[label] / peer:.2f}x" if peer else "-" for peer in peers]
        eager = means.get(f"{label.split()[0]} eager")
        versus.append(f"{means[label] / eager:.2f}x" if eager and label.split()[0] not in PEERS else "-")
        print(f"| {label} | {means[label]:.1f}{spread} | {' | '.join(versus)} |")


if __name__ == "__main__":
    main()
