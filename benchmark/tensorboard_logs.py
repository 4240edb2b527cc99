"""A run's TensorBoard file, read in one place for benchmark/report.py, benchmark/speed.py and the tests, and the one
definition of a run's env steps per second."""

import math
from pathlib import Path

import numpy as np


def read_run(path: Path) -> tuple[dict[str, np.ndarray], str | None]:
    """The scalars of the run whose event file is in `path`, tag -> array of (env step, wall time, value) rows, and
    the hyperparameters table the scripts write at the start (Markdown text), or None."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {
        tag: np.array([(e.step, e.wall_time, e.value) for e in acc.Scalars(tag)], dtype=np.float64).reshape(-1, 3)
        for tag in tags["scalars"]
    }
    table = None
    if "hyperparameters/text_summary" in tags["tensors"]:
        table = acc.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
    return scalars, table


def steps_per_second(sps: np.ndarray, after_step: float = 0) -> float:
    """Env steps over the time they took, from a run's charts/SPS rows: each row's value is the script's steps/s since
    the row before, so the steps of each interval over its rate is the time it took. Only the intervals that start at
    or after `after_step` count. A resumed run's time spent stopped is in no interval."""
    starts, steps, rates = sps[:-1, 0], np.diff(sps[:, 0]), sps[1:, 2]
    counted = starts >= after_step
    if not counted.any():
        return math.nan
    return float(steps[counted].sum() / (steps[counted] / rates[counted]).sum())
