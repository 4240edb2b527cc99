"""The GPU check's steps and its one table; benchmark/gpu_check.sh runs it (after installing the wheels it carries).

    benchmark/gpu_check.sh          on a machine with an NVIDIA GPU: about 8 minutes at most, start to end

Steps, each with a time limit so that the whole fits one call of a lent GPU machine:
  1. the CUDA tests (tests/test_cuda.py, and tests/test_compile.py's CUDA cases): the compiled update and its CUDA
     graphs against the eager one after 12 updates, one graph per kind of step, all three scripts; short real runs of
     each script with --compile and with --cudagraphs, their TensorBoard logs read back; the Atari buffer's samples
     whose copies to the GPU still wait. In parallel (pytest-xdist) where it is installed.
  2. benchmark/speed.py on Hopper-v5, sac_continuous_action.py: eager, --compile and --cudagraphs on CUDA.
  3. the same with --cudagraphs, 4 and then 8 runs side by side on the one GPU (the rate of one run, and of all).
Each step's whole output goes to $OUT (or a temporary directory) as {step}.log; the table is printed last and saved
as table.md. LeanRL's figure for CleanRL's SAC on an H100 (eager 127 env steps/s, compiled with CUDA graphs 725) is
shown beside ours for comparison.
"""

import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SPEED = [sys.executable, "benchmark/speed.py", "--env-id", "Hopper-v5", "--learning-starts", "1000", "--updates",
         "1100", "--repeats", "1", "--threads", "2", "--scripts", "sac_continuous_action.py", "--modes"]  # fmt: skip
MODES = {"cuda": "eager", "cuda+compile": "--compile", "cuda+compile+cudagraphs": "--cudagraphs"}  # speed.py's names
PARALLEL = ["-n", "8"] if importlib.util.find_spec("xdist") else []
# (name, command, seconds at most)
STEPS = [
    ("tests", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PARALLEL, "-k", "cuda",
               "tests/test_cuda.py", "tests/test_compile.py"], 210),
    ("speed", [*SPEED, *MODES], 150),
    ("side-by-side-4", [*SPEED, "cuda+compile+cudagraphs", "--side-by-side", "4"], 60),
    ("side-by-side-8", [*SPEED, "cuda+compile+cudagraphs", "--side-by-side", "8"], 60),
]  # fmt: skip


def run_step(name: str, command: list[str], limit: int, out: Path) -> tuple[str, float]:
    """Run one step with its time limit; its output (saved to out/{name}.log) and its seconds."""
    start = time.time()
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=limit)
        output = result.stdout + result.stderr + f"\n(exit {result.returncode})\n"
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace") + f"\n(stopped after its limit of {limit} s)\n"
    (out / f"{name}.log").write_text(output)
    print(f"{name}: {time.time() - start:.0f} s", flush=True)
    return output, time.time() - start


def rates(output: str) -> dict[str, float]:
    """speed.py's table: mode -> env steps/s."""
    found = re.findall(r"^\| sac_continuous_action (\S+) \| ([\d.]+)", output, re.MULTILINE)
    return {mode: float(rate) for mode, rate in found}


def table(outputs: dict[str, tuple[str, float]]) -> str:
    tests, seconds = outputs["tests"]
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", tests, re.MULTILINE)
    stopped = "stopped after its limit" in tests
    rows = [("CUDA tests: compiled and CUDA-graph updates = eager (3 scripts), short runs with --compile and "
             "--cudagraphs, Atari copies in flight", (summary[-1] if summary else "no summary") +
             (", stopped at its limit" if stopped else "") + f" ({seconds:.0f} s)")]  # fmt: skip
    speed = rates(outputs["speed"][0])
    eager = speed.get("cuda")
    for mode, flag in MODES.items():
        ratio = f" ({speed[mode] / eager:.2f}x eager)" if mode in speed and eager else ""
        rows.append((f"Hopper-v5 {flag} on CUDA: env steps/s", f"{speed.get(mode, '-')}{ratio}"))
    for n in (4, 8):
        one = rates(outputs[f"side-by-side-{n}"][0]).get("cuda+compile+cudagraphs")
        result = f"{one:.1f} per run, {n * one:.0f} together" if one else "-"
        rows.append((f"{n} runs side by side on the GPU, --cudagraphs: env steps/s", result))
    rows.append(("LeanRL: CleanRL's SAC, H100, eager -> compiled + CUDA graphs (for comparison)", "127 -> 725, 5.7x"))
    gpu = torch.cuda.get_device_name()
    triton = importlib.util.find_spec("triton") and __import__("triton").__version__
    head = (f"GPU check: {gpu}, torch {torch.__version__} (CUDA {torch.version.cuda}), Triton {triton}, Python "
            f"{platform.python_version()}, {os.cpu_count()} CPUs")  # fmt: skip
    return "\n".join([head, "", "| check | result |", "|-|-|", *(f"| {a} | {b} |" for a, b in rows)]) + "\n"


def main() -> int:
    if not torch.cuda.is_available():
        print(f"gpu_check.py: error: no CUDA device: torch {torch.__version__} sees none here", file=sys.stderr)
        return 2
    out = Path(os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    outputs = {name: run_step(name, command, limit, out) for name, command, limit in STEPS}
    text = table(outputs)
    (out / "table.md").write_text(text)
    print(f"\n(logs in {out})\n\n{text}", end="")
    return 0 if "failed" not in text and "stopped at its limit" not in text else 1


if __name__ == "__main__":
    sys.exit(main())
