"""The README's fresh-machine commands and what CI runs stay the same thing."""

import os
import re
import sys

import pytest
import torch
from conftest import ROOT, run


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    install_and_train, install_and_test = re.findall(r"```bash\n(.+?)\n```", readme)[:2]
    assert "python sac_continuous_action.py" in install_and_train and "pytest" in install_and_test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines


def test_speed_benchmark_times_a_real_run_and_prints_its_table(tmp_path):
    # The eager mode only (the peer, Stable-Baselines3, is not in requirements-dev.txt): short Pendulum runs, two of
    # each at once (as runs sharing a machine).
    result = run("benchmark/speed.py", "--env-id", "Pendulum-v1", "--threads", "1", "--learning-starts", "300",
                 "--updates", "400", "--repeats", "1", "--modes", "eager", "--side-by-side", "2", cwd=tmp_path,
                 timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for script in ["sac_continuous_action", "sac_v1_value"]:  # every script there is, timed
        (row,) = [line for line in result.stdout.splitlines() if line.startswith(f"| {script} eager |")]
        rate = float(row.split("|")[2])
        assert 1 < rate < 100_000 and row.endswith("| - | 1.00x |"), row
    assert (
        "Pendulum-v1, 1 threads, 400 env steps after 300 random steps (the last 300 timed), 1 runs each, 2 side by side"
        in result.stdout
    )
    unknown = run("benchmark/speed.py", "--modes", "turbo", timeout=60)
    assert unknown.returncode != 0 and "unknown or unavailable --modes ['turbo']" in unknown.stderr


def test_buffer_memory_benchmark_fills_a_buffer_and_reports_its_size(tmp_path):
    result = run("benchmark/buffer_memory.py", "--buffer-size", "20000", "--real-steps", "300", "--checkpoint-dir",
                 str(tmp_path / "checkpoint"), cwd=tmp_path, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "buffer of 20,000 transitions: 7,067 bytes per transition, 0.14 GB" in result.stdout
    full = float(re.search(r"with the buffer full: resident ([\d.]+) GB", result.stdout).group(1))
    before = float(re.search(r"before the buffer is written: resident ([\d.]+) GB", result.stdout).group(1))
    assert full >= before + 0.13  # every byte of the buffer was touched
    # The checkpoint holds the whole buffer (0.14 GB), the networks (0.03 GB) and Adam's two moments of the actor's and
    # the critics' weights (0.04 GB); neither writing it nor reading it back into the buffer took a second buffer's
    # worth of memory.
    size, peak_saved = map(float, re.search(r"buffer: ([\d.]+) GB written .* now ([\d.]+) GB", result.stdout).groups())
    peak_full = float(re.search(r"peak resident memory of the process ([\d.]+) GB", result.stdout).group(1))
    own = re.search(r"resume: .* memory ([\d.]+) GB before, ([\d.]+) GB after", result.stdout).groups()
    assert 0.19 < size < 0.24 and peak_saved - peak_full < 0.07, result.stdout
    assert float(own[1]) - float(own[0]) < 0.11, result.stdout  # the networks and moments, 0.07 GB, not a 2nd buffer


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the check would run")
def test_the_gpu_check_stops_at_once_in_one_line_where_torch_sees_no_cuda():
    path = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"  # this Python (and its torch) first
    result = run("benchmark/gpu_check.sh", env={"PATH": path}, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"gpu_check.sh: error: no CUDA device: torch {torch.__version__} sees none here; run the "
                             "check on a machine with an NVIDIA GPU\n")  # fmt: skip


def requirement_names(path) -> list[str]:
    """The packages a requirements file names, those of the files it includes (-r) too."""
    names = []
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names += requirement_names(line[3:].strip())
        elif line:
            names.append(re.split(r"[\[=<>~! ;]", line)[0].lower())
    return names


def test_the_install_paths_name_files_that_exist_and_the_gpu_one_leaves_torch_alone():
    """The README's install notes: the files they name exist; requirements.txt pins torch and includes the rest; the
    GPU path's file names no torch (a GPU machine keeps its own CUDA build); the CPU-only path takes the CPU wheel."""
    section = (ROOT / "README.md").read_text().split("## On a fresh machine")[1].split("\n## ")[0]
    named = set(re.findall(r"requirements[\w-]*\.txt", section))
    assert {"requirements.txt", "requirements-dev.txt", "requirements-without-torch.txt"} <= named
    assert all((ROOT / name).is_file() for name in named), named
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text().splitlines()
    with_torch, without = requirement_names("requirements.txt"), requirement_names("requirements-without-torch.txt")
    assert "torch" in with_torch and "torch" not in without and set(with_torch) - {"torch"} == set(without)
    assert "pip install -r requirements-without-torch.txt" in section
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in section
