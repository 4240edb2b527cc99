"""Turn the TensorBoard logs of finished runs into a results table and learning curves.

    python benchmark/report.py RUNS_DIR [RUNS_DIR ...] --out DIR

RUNS_DIR is a sweep directory (benchmark/launch.py's --out), a runs/ directory or one run's directory: every
directory under it that holds a TensorBoard event file is a run, except under a discarded/ directory (where the
launcher moves a run's directory that it starts anew). It can also be an earlier report's directory or its
eval_curves/ directory: each evaluation CSV there is a run with its evaluations (and its training episodes, where the
report's train_curves/ has them), so that the small files a results page keeps are enough to report again, with runs
added, once the TensorBoard logs are gone; a provenance.csv there (or beside the eval_curves/ given) gives their
provenance, and with it their steps/s. A run's TensorBoard log wins over a CSV of the same environment, script and
seed (a report written inside its sweep's directory sits beside the logs it came from). Runs are grouped by
environment and by script (the run's exp_name, which is the script's name unless --exp-name changed it), across seeds.
Written:

  DIR/results.md   one row per environment and script, with n, its number of seeds: the final training return
                   (each seed: the mean return of its last 10 training episodes), the final eval return (each seed:
                   its last evaluation, a mean over --eval-episodes episodes of the policy as its script evaluates
                   it: deterministic; sac_discrete_atari.py's epsilon-greedy) and the last-5 eval return
                   (each seed: the mean of its last 5 evaluations, to show how much the final one swings), each as
                   mean ± std over seeds (ddof=0); steps per second; the seeds; the steps. Beside them, the published
                   returns at the same step count from benchmark/references.csv (same environment, any version:
                   Hopper-v2 is shown beside Hopper-v5); an eval reference (one evaluation at that step) reads beside
                   the final eval return.
  DIR/learning_curves.png   one panel per environment, every script overlaid: the training return (the same
                   10-episode mean, against environment steps) as the mean over seeds with a band of +- one std,
                   and the eval return's mean over seeds as a dashed line.
  DIR/{env}.png    the same panel for each environment on its own.
  DIR/eval_curves/{env}__{script}__{seed}.csv   each run's evaluations: step, mean return, and the std over the
                   evaluation's episodes (empty where the run did not log it).
  DIR/train_curves/{env}__{script}__{seed}.csv   each run's training episodes: the step at its end and its return.
                   A later report reads them back with the run's evaluation CSV.
  DIR/provenance.csv   one row per start of each run that recorded it (the provenance.json the scripts write in
                   the run's directory): the commit, the versions, the CPU, the threads, the steps and the training and
                   evaluation seconds of that part. results.md lists them, and a later report reads them back.

Beside the mean and std, results.md gives interval estimates (Agarwal et al. 2021, benchmark/rl_statistics.py) where
there are runs enough for one (results.md's "When to trust an interval" says why): for each environment and script
with 5 seeds or more, the interquartile mean (IQM) of the final eval returns with its 95% stratified bootstrap
confidence interval, and with fewer the mean and the [min, max] of the seeds, labelled so; for each script the IQM of
its normalized final eval returns across the environments that have a normalization (benchmark/normalization.csv: 0
is a random policy's return, 1 a reference's; DeepMind Control: 0 and 1,000), with its interval where it has 10 runs
or more in all and 2 or more of each environment; and for each pair of scripts that ran the same environments, the
probability that a run of one beats a run of the other on one of them, with its interval under the same rule. A group
with fewer than 2 seeds that have an evaluation has its row, curves and CSVs, and results.md names it as left out of
the aggregates. With a normalized environment, two more figures:

  DIR/aggregate_curves.png     the IQM of the normalized eval return against environment steps, with its interval.
  DIR/performance_profile.png  the fraction of runs whose normalized final eval return is above each score.
"""

import argparse
import csv
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rl_statistics as stats
from tensorboard_logs import read_run, steps_per_second

LAST_EPISODES = 10  # the final training return of a seed: the mean of its last 10 episodes, as CleanRL reports it
LAST_EVALS = 5  # beside a seed's final evaluation, the mean of its last 5: how much the final number swings
# How many runs an interval needs (see interval_rule_text): a group, to get its IQM's bootstrap interval instead of
# the mean and [min, max] of its seeds; an aggregate across tasks, in all and of each task.
GROUP_RUNS, AGGREGATE_RUNS, AGGREGATE_RUNS_PER_TASK = 5, 10, 2
REFERENCES = Path(__file__).resolve().parent / "references.csv"
NORMALIZATION = Path(__file__).resolve().parent / "normalization.csv"
EVAL_CSV_HEADER = "step,mean_return,std_return"  # write_eval_curves' files, which find_runs reads back
TRAIN_CSV_HEADER = "step,episodic_return"  # write_train_curves' files, read back with the evaluation CSV of the run
# What each start of a run records in its provenance.json (the scripts' Provenance), in provenance.csv's order.
PROVENANCE = ("started", "commit", "python", "torch", "gymnasium", "numpy", "mujoco", "dm_control", "ale_py", "shimmy",
              "cpu", "cores", "device", "threads", "compile", "first_step", "last_step", "train_seconds",
              "eval_seconds")  # fmt: skip
PROVENANCE_CSV_HEADER = ",".join(("env_id", "script", "seed", "part", *PROVENANCE))  # write_provenance's file
SETUP = PROVENANCE[1:15]  # what a part ran with and where: the same in two parts, the same setup
NAMESPACES = ("ALE", "dm_control")  # env ids with a '/', which a CSV's name writes as '-': ALE-Pong-v5 is ALE/Pong-v5
PANEL = (5.0, 3.6)  # inches; at DPI dots per inch each panel is 500 x 360 pixels
DPI = 100


@dataclass
class Run:
    path: Path
    env_id: str
    script: str
    seed: int
    train: np.ndarray  # (episodes, 2): env step, episodic return
    evals: np.ndarray  # (evaluations, 2): env step, mean return over the eval episodes
    sps: np.ndarray  # (logs, 3): env step, wall time, steps/s since the previous log
    eval_std: np.ndarray  # (evaluations, 2): env step, std of the returns over the eval episodes (if logged)
    provenance: list[dict] = field(default_factory=list)  # one dict per start of the run (PROVENANCE), if recorded

    @property
    def from_csv(self) -> bool:
        """Read from an evaluation CSV: its evaluations (and its training episodes, if kept), no charts/SPS."""
        return self.path.suffix == ".csv"

    @property
    def steps(self) -> int:
        """The last env step the run logged: its --total-timesteps if it finished."""
        return int(max((a[-1, 0] for a in (self.train, self.evals, self.sps) if len(a)), default=0))


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def is_eval_curve(path: Path) -> bool:
    """A CSV that write_eval_curves wrote: named {env}__{script}__{seed}.csv, with its header."""
    if not re.fullmatch(r".+__.+__-?\d+\.csv", path.name):
        return False
    with open(path, newline="") as f:
        return f.readline().strip() == EVAL_CSV_HEADER


def find_runs(dirs: list[Path]) -> list[Path]:
    """The directories that hold a TensorBoard event file, then the evaluation CSVs."""
    for d in dirs:
        if not d.is_dir():
            fail(f"RUNS_DIR '{d}' is not a directory")
    found = [path for d in dirs for pattern in ("events.out.tfevents.*", "*.csv") for path in sorted(d.rglob(pattern))
             if "discarded" not in path.relative_to(d).parts]  # fmt: skip
    logs = sorted({path.parent for path in found if path.suffix != ".csv"})
    # The CSVs in the order of the directories given, each once: a contradiction names the first given first.
    curves = list(dict.fromkeys(path for path in found if path.suffix == ".csv" and is_eval_curve(path)))
    if not logs and not curves:
        fail(f"no TensorBoard event files or evaluation CSVs under {' '.join(map(str, dirs))}")
    return logs + curves


def load_eval_curve(path: Path) -> Run:
    """A run from its evaluation CSV, named {env}__{script}__{seed}.csv: its evaluations and their std, and its training
    episodes where a train_curves/ beside the CSV's directory has them."""
    env_id, script, seed = path.stem.rsplit("__", 2)
    for namespace in NAMESPACES:
        if env_id.startswith(f"{namespace}-"):
            env_id = f"{namespace}/{env_id.removeprefix(namespace + '-')}"
    evals, eval_std = [], []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            try:
                if line > 1:
                    evals.append((int(row[0]), float(row[1])))
                    if row[2]:
                        eval_std.append((int(row[0]), float(row[2])))
            except (IndexError, ValueError):
                fail(f"'{path}', line {line}: not step,mean_return,std_return numbers: {','.join(row)}")
    evals, eval_std = (np.array(rows, dtype=float).reshape(-1, 2) for rows in (evals, eval_std))
    train = load_train_curve(path.parent.parent / "train_curves" / path.name)
    return Run(path, env_id, script, int(seed), train, evals, np.empty((0, 3)), eval_std)


def load_train_curve(path: Path) -> np.ndarray:
    """(episodes, 2): the env step at each training episode's end and its return, from write_train_curves' CSV; no
    rows if there is none."""
    if not path.is_file():
        return np.empty((0, 2))
    rows = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if line == 1 and ",".join(row) != TRAIN_CSV_HEADER:
                fail(f"'{path}', line 1: not the header {TRAIN_CSV_HEADER}")
            try:
                if line > 1:
                    rows.append((int(row[0]), float(row[1])))
            except (IndexError, ValueError):
                fail(f"'{path}', line {line}: not step,episodic_return numbers: {','.join(row)}")
    return np.array(rows, dtype=float).reshape(-1, 2)


def load_run(path: Path) -> Run:
    """One run's scalars and, from its hyperparameters table (or else from its directory name
    {env}__{exp_name}__{seed}__{time}), which env, script and seed it was."""
    scalars, table = read_run(path)
    params = dict(re.findall(r"^\|([^|]+)\|([^|]*)\|$", table, re.MULTILINE)) if table else {}
    name = path.name.split("__")
    env_id = params.get("env_id", name[0])
    script = params.get("exp_name", name[1] if len(name) > 1 else "?")
    seed = int(params.get("seed", name[2] if len(name) > 2 and name[2].isdigit() else -1))
    none = np.empty((0, 3))
    tags = ("charts/episodic_return", "eval/episodic_return", "eval/episodic_return_std")
    train, evals, eval_std = (scalars.get(tag, none)[:, [0, 2]] for tag in tags)
    return Run(path, env_id, script, seed, train, evals, scalars.get("charts/SPS", none), eval_std, read_json(path))


def read_json(path: Path) -> list[dict]:
    """A run directory's provenance.json (the scripts write one since they record it); [] if it has none."""
    record = path / "provenance.json"
    if not record.is_file():
        return []
    try:
        parts = json.loads(record.read_text())
    except (OSError, ValueError) as e:
        fail(f"'{record}': not a provenance record ({e})")
    if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
        fail(f"'{record}': not a provenance record (a list of one object per start of the run)")
    return [as_strings(part) for part in parts]


def as_strings(part: dict) -> dict[str, str]:
    """A part's PROVENANCE fields as provenance.csv holds them: text, "" where not recorded."""
    return {name: "" if part.get(name) is None else str(part[name]) for name in PROVENANCE}


def read_provenance_csvs(dirs: list[Path]) -> dict[tuple[str, str, int], list[dict]]:
    """The runs' parts in the provenance.csv files under `dirs` (an earlier report's; for its eval_curves/, the one
    beside it), by (env, script, seed). A run's parts in two files must be the same."""
    found: dict[tuple[str, str, int], tuple[Path, list[dict]]] = {}
    files = [path for d in dirs for path in sorted(d.rglob("provenance.csv"))
             if "discarded" not in path.relative_to(d).parts]  # fmt: skip
    files += [d.parent / "provenance.csv" for d in dirs if d.name == "eval_curves"]
    for path in (path for path in dict.fromkeys(files) if path.is_file()):
        with open(path, newline="") as f:
            if f.readline().strip() != PROVENANCE_CSV_HEADER:
                continue
            f.seek(0)
            runs: dict[tuple[str, str, int], list[dict]] = {}
            for row in csv.DictReader(f):
                try:
                    key = (row["env_id"], row["script"], int(row["seed"]))
                except (TypeError, ValueError):
                    fail(f"'{path}': not a provenance row: {','.join(map(str, row.values()))}")
                runs.setdefault(key, []).append({name: row[name] for name in PROVENANCE})
        for key, parts in runs.items():
            first = found.setdefault(key, (path, parts))
            if first[1] != parts:
                fail(f"two different provenance records of {key[0]} {key[1]} seed {key[2]}: '{first[0]}' and '{path}'")
    return {key: parts for key, (_, parts) in found.items()}


def load_runs(paths: list[Path]) -> list[Run]:
    """The runs of the TensorBoard logs, then those of the CSVs that no log has: env, script and seed."""
    runs = [load_run(path) for path in paths if path.suffix != ".csv"]
    logged = {(run.env_id, run.script, run.seed) for run in runs}
    curves: dict[tuple[str, str, int], Run] = {}
    for path in (path for path in paths if path.suffix == ".csv"):
        run = load_eval_curve(path)
        key = (run.env_id, run.script, run.seed)
        if key in logged:
            continue  # its TensorBoard log holds these evaluations and more
        first = curves.setdefault(key, run)
        if not (np.array_equal(first.evals, run.evals) and np.array_equal(first.eval_std, run.eval_std)):
            fail(f"two different evaluation CSVs of {run.env_id} {run.script} seed {run.seed}: "
                 f"'{first.path}' and '{run.path}'")  # fmt: skip
    return runs + list(curves.values())


def final_train_return(run: Run) -> float:
    return float(run.train[-LAST_EPISODES:, 1].mean()) if len(run.train) else math.nan


def final_eval_return(run: Run) -> float:
    return float(run.evals[-1, 1]) if len(run.evals) else math.nan


def of_seeds(kept: int, seeds: int) -> str:
    """How many seeds a statistic is over, where some have no value (a run read from an evaluation CSV has no training
    return, or steps/s where its provenance has no time; a run stopped before its first evaluation has no eval
    return)."""
    return f" ({kept} of {seeds} seeds)" if kept < seeds else ""


def mean_std(values: list[float]) -> str:
    """The mean ± std over seeds; the std is numpy's default, ddof=0 (as benchmark/references.csv's are). One seed's
    value stands alone: a std of one number (0) would read as a measured spread."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return "n/a"
    if len(kept) == 1:
        return f"{kept[0]:.1f}{of_seeds(1, len(values)) or ' (1 seed)'}"
    return f"{np.mean(kept):.1f} ± {np.std(kept):.1f}{of_seeds(len(kept), len(values))}"


def last_evals_return(run: Run) -> float:
    """The mean of the run's last LAST_EVALS evaluations (of as many as it has, if fewer)."""
    return float(run.evals[-LAST_EVALS:, 1].mean()) if len(run.evals) else math.nan


def spread(evals: np.ndarray) -> str:
    """The final eval returns of a group's seeds: with GROUP_RUNS or more, their IQM and its bootstrap interval;
    with fewer, their mean and [min, max], which is all that so few seeds show (see interval_rule_text)."""
    if len(evals) >= GROUP_RUNS:
        value, low, high = stats.interval(stats.iqm, evals[:, None])
        return f"IQM {value:.1f} [95% CI {low:.1f}, {high:.1f}]"
    if len(evals) >= 2:
        return f"mean {evals.mean():.1f} [min {evals.min():.1f}, max {evals.max():.1f}]"
    return f"{evals[0]:.1f} (1 seed)" if len(evals) else "n/a"


def final_evals(runs: list[Run]) -> np.ndarray:
    """The final eval return of each run that has one."""
    values = np.array([final_eval_return(run) for run in runs])
    return values[~np.isnan(values)]


def aggregated(groups: dict[tuple[str, str], list[Run]]) -> dict[tuple[str, str], list[Run]]:
    """The groups with AGGREGATE_RUNS_PER_TASK seeds that have an evaluation: a stratified resample of one run is
    that run, whatever the draw."""
    return {key: runs for key, runs in groups.items() if len(final_evals(runs)) >= AGGREGATE_RUNS_PER_TASK}


def interval_rule_text() -> str:
    """Why the report gives an interval where it does: said once in results.md."""
    return (
        f"A group's interval needs {GROUP_RUNS} seeds. With n seeds, the percentile bootstrap draws a resample made "
        "of one seed n times with probability (1/n)^n per seed: 3.7% for each of the lowest and the highest seed at "
        "n = 3, more than the 2.5% in each tail of a 95% interval, so the interval is exactly [min, max] and says "
        "nothing more than the seeds do (0.4% at n = 4, 0.03% at n = 5). The IQM cuts a quarter of the runs at each "
        f"end, nothing below 4 runs. So a group with fewer than {GROUP_RUNS} seeds shows the mean and the [min, max] "
        "of its seeds as what they are. An aggregate across tasks resamples the seeds of each task on their own (the "
        "stratified bootstrap of Agarwal et al. 2021, Section 4.1, which they designed for the few-runs-per-task "
        f"regime, with the IQM over all the runs, Section 4.3): it keeps its interval where it has {AGGREGATE_RUNS} "
        f"runs or more in all and at least {AGGREGATE_RUNS_PER_TASK} of each task, so that the IQM cuts at least 2 "
        "runs at each end and no one seed's resample can fill a tail of the interval; with fewer it gives the IQM "
        "alone."
    )


def estimate(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if abs(value) < 10 else f"{value:.1f} [{low:.1f}, {high:.1f}]"


def task_name(env_id: str) -> str:
    """The environment without its version and Atari's naming: Hopper-v5 -> hopper, ALE/Breakout-v5 -> breakout."""
    return base_name(env_id).removeprefix("ALE/").replace("NoFrameskip", "").lower()


def read_normalization(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["env"].lower(): row for row in csv.DictReader(line for line in f if not line.startswith("#"))}


def normalizer(env_id: str, norms: dict[str, dict]) -> tuple[float, float, str] | None:
    """The returns that map to 0 and 1 for env_id, and where they come from; None where there are none."""
    if env_id.startswith("dm_control/"):
        return 0.0, 1000.0, "0 and 1,000: the range of a DeepMind Control episode's return"
    row = norms.get(task_name(env_id))
    if row is None:
        return None
    source = f"a random policy and {row['reference_kind']}: {row['source']} <{row['url']}>"
    return float(row["random"]), float(row["reference"]), source


def score_matrix(groups: dict, script: str, envs: list[str], norms: dict | None = None) -> np.ndarray:
    """(seeds, envs): the script's final eval returns, normalized when `norms` is given. A stratified bootstrap needs
    as many seeds of each env: the first n by seed number, n the fewest that any env has."""
    columns = [final_evals(groups[(env_id, script)]) for env_id in envs]
    n = min(map(len, columns))
    scores = np.stack([column[:n] for column in columns], axis=1)
    if norms is not None:
        for j, env_id in enumerate(envs):
            low, high, _ = normalizer(env_id, norms)
            scores[:, j] = (scores[:, j] - low) / (high - low)
    return scores


def interval_sections(groups: dict[tuple[str, str], list[Run]], norms: dict[str, dict]) -> list[str]:
    """results.md's sections on the aggregate across environments and on the probability of improvement, over the
    groups with at least two seeds."""
    kept = aggregated(groups)
    too_few = [f"{env_id} {script} ({len(final_evals(runs))})" for (env_id, script), runs in groups.items()
               if (env_id, script) not in kept]  # fmt: skip
    groups = kept
    scripts = sorted({script for _, script in groups})
    envs_of = {script: sorted(env_id for env_id, s in groups if s == script) for script in scripts}
    lines = ["", "## Across environments", ""]
    if too_few:
        lines += [f"Fewer than {AGGREGATE_RUNS_PER_TASK} seeds with an evaluation, so in no aggregate: "
                  f"{', '.join(too_few)}.", ""]  # fmt: skip
    normalized = sorted({env_id for env_id, _ in groups if normalizer(env_id, norms)})
    if normalized:
        lines += [f"The IQM of each script's final eval returns, normalized, over the seeds of all the environments "
                  f"it ran among {', '.join(normalized)}; their returns are mapped to 0 and 1 by:", ""]  # fmt: skip
        for env_id in normalized:
            low, high, source = normalizer(env_id, norms)
            lines.append(f"- {env_id}: {low:g} and {high:g}, {source}")
        lines += ["", f"| Script | Environments | Seeds of each | Runs | Normalized IQM [95% CI] (with "
                  f"{AGGREGATE_RUNS} runs or more) |", "|---|---|---|---|---|"]  # fmt: skip
        for script in scripts:
            envs = [env_id for env_id in envs_of[script] if env_id in normalized]
            if envs:
                scores = score_matrix(groups, script, envs, norms)
                lines.append(f"| {script} | {len(envs)} | {len(scores)} | {scores.size} | "
                             f"{aggregate(stats.iqm, scores)} |")  # fmt: skip
    left_out = sorted({env_id for env_id, _ in groups} - set(normalized))
    if left_out:
        lines += [
            "",
            f"Not normalized (no row in benchmark/normalization.csv), so in no aggregate: {', '.join(left_out)}.",
        ]
    pairs = [(a, b, sorted(set(envs_of[a]) & set(envs_of[b]))) for a, b in itertools.combinations(scripts, 2)]
    pairs = [(a, b, envs) for a, b, envs in pairs if envs]
    if pairs:
        lines += ["", "## Probability of improvement", "",
                  "P(X > Y): the chance that a run of X ends with a higher final eval return than a run of Y on one of "
                  "the environments both ran, drawn at random (ties count a half); 0.5 is no difference. It compares "
                  "returns within each environment, so it needs no normalization.", "",
                  f"| X | Y | Environments | P(X > Y) [95% CI] (with {AGGREGATE_RUNS} runs or more of each) |",
                  "|---|---|---|---|"]  # fmt: skip
        for a, b, envs in pairs:
            scores_a, scores_b = score_matrix(groups, a, envs), score_matrix(groups, b, envs)
            lines.append(f"| {a} | {b} | {', '.join(envs)} | "
                         f"{aggregate(stats.probability_of_improvement, scores_a, scores_b)} |")  # fmt: skip
    return lines


def aggregate(statistic, *score_matrices: np.ndarray) -> str:
    """The statistic across tasks, with its interval where every matrix has AGGREGATE_RUNS runs (interval_rule_text)."""
    fewest = min(scores.size for scores in score_matrices)
    if fewest >= AGGREGATE_RUNS:
        return estimate(*stats.interval(statistic, *score_matrices))
    return f"{statistic(*score_matrices):.3f} ({fewest} runs: too few for an interval)"  # normalized, or a probability


def base_name(env_id: str) -> str:
    return re.sub(r"-v\d+$", "", env_id)


def read_references(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def published(refs: list[dict], env_id: str, steps: int, sources: dict[str, int]) -> str:
    """The references for this env (any version) at this step count, each with its source's number."""
    cells = []
    for ref in refs:
        if base_name(ref["env_id"]) == base_name(env_id) and int(ref["steps"]) == steps:
            number = sources.setdefault(f"{ref['source']} <{ref['url']}>", len(sources) + 1)
            value = f"{float(ref['mean']):.1f}" + (f" ± {float(ref['std']):.1f}" if ref["std"] else "")
            approximate = "~" if ref["approximate"] == "yes" else ""
            cells.append(f"{approximate}{value} ({ref['kind']}, {ref['env_id']}) [{number}]")
    return "<br>".join(cells) or "–"


def run_steps_per_second(run: Run) -> float:
    """A run's env steps over the time they took: from its TensorBoard log's charts/SPS, or, for a run read from CSVs,
    from its provenance: the steps of its parts over their training and evaluation seconds, the same measure (the
    published pages' runs: within 1% of their logs' number). nan where a part did not record its time."""
    if not run.from_csv:
        return steps_per_second(run.sps)
    timed = ("first_step", "last_step", "train_seconds", "eval_seconds")
    if not run.provenance or any(part[name] == "" for part in run.provenance for name in timed):
        return math.nan
    steps = sum(int(part["last_step"]) - int(part["first_step"]) for part in run.provenance)
    seconds = sum(float(part["train_seconds"]) + float(part["eval_seconds"]) for part in run.provenance)
    return steps / seconds if seconds > 0 else math.nan


def from_csvs(groups: dict[tuple[str, str], list[Run]]) -> str:
    """results.md's word on the runs read from evaluation CSVs, if any."""
    runs = [run for runs in groups.values() for run in runs]
    read = sum(run.from_csv for run in runs)
    source = ("evaluation CSVs (an earlier report's eval_curves/, and its train_curves/ where it has them), whose "
              "steps/s comes from their provenance")  # fmt: skip
    if read == len(runs):
        return (f" All the runs are read from {source}: a training return or steps/s is over the runs that kept "
                "one.")  # fmt: skip
    if read:
        return f" {read} of the runs are read from {source}: a training return or steps/s is over those that have one."
    return ""


def table(groups: dict[tuple[str, str], list[Run]], refs: list[dict], norms: dict[str, dict], dirs: list[Path]) -> str:
    sources: dict[str, int] = {}
    lines = [
        "# Results",
        "",
        f"{sum(map(len, groups.values()))} runs from {', '.join(f'`{d}`' for d in dirs)}. n: the seeds of each group. "
        "Each seed's final training return is the mean of its last "
        f"{LAST_EPISODES} training episodes; its final eval return is its last evaluation (the mean over its eval "
        "episodes of the policy as its script evaluates it: deterministic, or for sac_discrete_atari.py "
        f"epsilon-greedy, its --eval-epsilon); its last-{LAST_EVALS} eval return is the mean of its last "
        f"{LAST_EVALS} evaluations, which shows how much the final one swings. ±: the standard deviation over the "
        "seeds (ddof=0, numpy's default, as in benchmark/references.csv). The interval column: with "
        f"{GROUP_RUNS} seeds or more, the interquartile mean (IQM, the mean of the middle half) of the seeds' final "
        f"eval returns and its {stats.CONFIDENCE:.0%} confidence interval, the percentile interval over "
        f"{stats.BOOTSTRAP_SAMPLES:,} bootstrap samples of the seeds (numpy generator seed {stats.SEED}), as rliable "
        f"computes it (Agarwal et al. 2021); with fewer, no interval: the mean and the [min, max] of the seeds. "
        "Steps/s: the mean over seeds of each run's env steps over the time they took. Published: the returns "
        "reported at the same step count, with their sources below; an eval reference is one evaluation at that "
        "step, to be read beside the final eval return." + from_csvs(groups),
        "",
        f"| Environment | Script | n (seeds) | Steps | Final training return | Final eval return | Final eval: IQM "
        f"[95% CI] (n ≥ {GROUP_RUNS}), else mean [min, max] | Last-{LAST_EVALS} eval return | Steps/s | Published |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (env_id, script), runs in groups.items():
        steps = sorted({run.steps for run in runs})
        steps_text = f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,} to {steps[-1]:,} (unfinished runs)"
        seeds = ", ".join(str(run.seed) for run in runs)
        sps = [run_steps_per_second(run) for run in runs]
        timed = [value for value in sps if not math.isnan(value)]
        sps_text = f"{np.mean(timed):.0f}{of_seeds(len(timed), len(sps))}" if timed else "n/a"
        lines.append(f"| {env_id} | {script} | {len(runs)} ({seeds}) | {steps_text} | "
                     f"{mean_std([final_train_return(run) for run in runs])} | "
                     f"{mean_std([final_eval_return(run) for run in runs])} | {spread(final_evals(runs))} | "
                     f"{mean_std([last_evals_return(run) for run in runs])} | {sps_text} | "
                     f"{published(refs, env_id, steps[-1], sources)} |")  # fmt: skip
    lines += interval_sections(groups, norms)
    lines += ["", "## When to trust an interval", "", interval_rule_text()]
    lines += provenance_section(groups)
    if sources:
        lines += ["", "Sources:", ""] + [f"{number}. {source}" for source, number in sources.items()]
    return "\n".join(lines) + "\n"


def provenance_section(groups: dict[tuple[str, str], list[Run]]) -> list[str]:
    """results.md's record of where and with what each run ran: the setups (commit, versions, CPU, threads), then
    each run's parts (one per start of the run: a run resumed elsewhere lists each) with their steps and times."""
    runs = [run for runs in groups.values() for run in runs]
    setups: dict[tuple, str] = {}
    for run in runs:
        for part in run.provenance:
            setups.setdefault(tuple(part[name] for name in SETUP), f"S{len(setups) + 1}")
    lines = ["", "## Provenance", ""]
    if not setups:
        return lines + ["No run recorded its provenance (the scripts record it in provenance.json since issue 34)."]
    lines += ["Where and with what each run ran, from the provenance.json each start of a run writes. A setup is "
              "the commit of the code, the versions, the CPU and the settings a part ran with; a seeded run repeats "
              "only with the same setup (another CPU model rounds its matrix products differently).", "",
              "| Setup | Commit | Python | torch | gymnasium | numpy | mujoco | dm_control | ale-py | shimmy | CPU "
              "| Cores | Device | Threads | Compiled |", "|---|" + "---|" * 14]  # fmt: skip
    for values, label in setups.items():
        part = dict(zip(SETUP, values, strict=True))
        part["commit"] = part["commit"][:12] + (" (modified)" if part["commit"].endswith("+modified") else "")
        lines.append(f"| {label} | " + " | ".join(part[name] or "–" for name in SETUP) + " |")
    lines += ["", "| Run | Part | Started | Steps | Setup | Training time | Evaluation time |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in runs:
        name = f"{run.env_id} seed {run.seed}" + (f" ({run.script})" if len(groups) > len(
            {env_id for env_id, _ in groups}) else "")  # fmt: skip
        if not run.provenance:
            lines.append(f"| {name} | – | – | – | not recorded | – | – |")
        for i, part in enumerate(run.provenance, start=1):
            setup = setups[tuple(part[field] for field in SETUP)]
            lines.append(f"| {name} | {i} | {part['started'] or '–'} | {steps_range(part)} | {setup} | "
                         f"{duration(part['train_seconds'])} | {duration(part['eval_seconds'])} |")  # fmt: skip
    missing = sum(not run.provenance for run in runs)
    if missing:
        lines += ["", f"{missing} of the runs recorded no provenance (they ran before the scripts recorded it)."]
    return lines


def steps_range(part: dict[str, str]) -> str:
    first, last = (f"{int(part[name]):,}" if part[name] else "?" for name in ("first_step", "last_step"))
    return f"{first} to {last}"


def duration(seconds: str) -> str:
    """Seconds as h:mm:ss."""
    if not seconds:
        return "–"
    minutes, secs = divmod(round(float(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def write_train_curves(groups: dict[tuple[str, str], list[Run]], out: Path) -> list[Path]:
    """Each run's training episodes as a small CSV, train_curves/{env}__{script}__{seed}.csv: the env step at each
    episode's end and its return (for a results page, whose final training return must outlive the logs)."""
    (out / "train_curves").mkdir(exist_ok=True)
    written = []
    for runs in groups.values():
        for run in (run for run in runs if len(run.train)):
            path = out / "train_curves" / f"{run.env_id.replace('/', '-')}__{run.script}__{run.seed}.csv"
            rows = "".join(f"{int(step)},{value:.6g}\n" for step, value in run.train)
            path.write_text(f"{TRAIN_CSV_HEADER}\n{rows}")
            written.append(path)
    return written


def write_provenance(groups: dict[tuple[str, str], list[Run]], out: Path) -> Path:
    """provenance.csv: one row per part of each run that recorded one, which a later report reads back."""
    path = out / "provenance.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(PROVENANCE_CSV_HEADER.split(","))
        for runs in groups.values():
            for run in runs:
                for i, part in enumerate(run.provenance, start=1):
                    writer.writerow([run.env_id, run.script, run.seed, i, *(part[name] for name in PROVENANCE)])
    return path


def smoothed(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The training return at each episode's end as the mean of the last LAST_EPISODES episodes up to it."""
    returns = np.cumsum(np.concatenate([[0.0], run.train[:, 1]]))
    n = np.arange(1, len(run.train) + 1)
    window = np.minimum(n, LAST_EPISODES)
    return run.train[:, 0], (returns[n] - returns[n - window]) / window


def draw_panel(ax, env_id: str, by_script: dict[str, list[Run]], colors: dict[str, str]) -> None:
    from matplotlib.ticker import EngFormatter

    for script, runs in by_script.items():
        every = len(runs)
        runs = [run for run in runs if len(run.train)]
        if runs:
            grid = np.linspace(min(run.train[0, 0] for run in runs), max(run.steps for run in runs), 200)
            curves = []
            for run in runs:
                steps, values = smoothed(run)
                # A seed's curve runs from its first episode's end to its run's last step (its last 10 episodes'
                # mean holds until another episode ends); a shorter run does not count past its end.
                inside = (grid >= steps[0]) & (grid <= run.steps)
                curves.append(np.where(inside, np.interp(grid, steps, values), np.nan))
            curves = np.array(curves)
            counted = ~np.isnan(curves).all(axis=0)
            mean, std = np.nanmean(curves[:, counted], axis=0), np.nanstd(curves[:, counted], axis=0)
            label = f"{script}: training return, mean ± std of seeds{of_seeds(len(runs), every)}"
            ax.plot(grid[counted], mean, color=colors[script], label=label)
            ax.fill_between(grid[counted], mean - std, mean + std, color=colors[script], alpha=0.2, linewidth=0)
        evals = {}
        for run in by_script[script]:
            for step, value in run.evals:
                evals.setdefault(step, []).append(value)
        if not evals:
            continue
        steps = sorted(evals)
        mean, std = (np.array([f(evals[step]) for step in steps]) for f in (np.mean, np.std))
        if runs:
            label = f"{script}: eval return, mean of seeds"
            ax.plot(steps, mean, "--o", color=colors[script], markersize=3, label=label)
        else:  # evaluations only (runs read from CSVs): the eval return takes the band
            label = f"{script}: eval return, mean ± std of seeds"
            ax.plot(steps, mean, "-o", color=colors[script], markersize=3, label=label)
            ax.fill_between(steps, mean - std, mean + std, color=colors[script], alpha=0.2, linewidth=0)
    seeds = {script: len(runs) for script, runs in by_script.items()}
    counts = (
        f"{next(iter(seeds.values()))}"
        if len(set(seeds.values())) == 1
        else ", ".join(f"{script} {n}" for script, n in seeds.items())
    )
    ax.set_title(f"{env_id} (seeds: {counts})")
    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 20k, 1M: long step counts do not run into each other
    ax.set_ylabel("episodic return")
    ax.grid(alpha=0.3)


def panel_grid(panels: int) -> tuple[int, int]:
    """(rows, columns) for learning_curves.png: as few rows as 3 columns need, filled evenly (4 panels: 2 x 2, not a
    row of 3 and one of 1)."""
    rows = math.ceil(panels / 3)
    return rows, math.ceil(panels / rows)


def plot(groups: dict[tuple[str, str], list[Run]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    envs: dict[str, dict[str, list[Run]]] = {}
    for (env_id, script), runs in groups.items():
        envs.setdefault(env_id, {})[script] = runs
    scripts = sorted({script for _, script in groups})
    colors = {script: f"C{i % 10}" for i, script in enumerate(scripts)}  # one color per script in every panel
    rows, cols = panel_grid(len(envs))
    figures = [("learning_curves.png", list(envs), cols, rows)] + [
        (f"{env_id.replace('/', '-')}.png", [env_id], 1, 1) for env_id in envs
    ]
    written = []
    for name, env_ids, cols, rows in figures:
        fig, axes = plt.subplots(rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), dpi=DPI, squeeze=False)
        for ax, env_id in zip(axes.flat, env_ids, strict=False):
            draw_panel(ax, env_id, envs[env_id], colors)
        for ax in axes.flat[len(env_ids) :]:
            ax.set_visible(False)
        # One legend for all the panels, below them, where it covers no curve: each script's color is the same in
        # every panel. Its rows take their share of the figure's height, which stays that of the panels.
        legend = {}
        for ax in axes.flat:
            handles, labels = ax.get_legend_handles_labels()
            legend.update(zip(labels, handles, strict=True))
        columns = 2 if cols > 1 else 1
        legend_rows = math.ceil(len(legend) / columns)
        fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=columns, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, (0.1 + 0.18 * legend_rows) / fig.get_figheight(), 1, 1))
        fig.savefig(out / name, dpi=DPI)  # no bbox_inches="tight": the image keeps the size of its panels
        plt.close(fig)
        written.append(out / name)
    return written


def plot_intervals(groups: dict[tuple[str, str], list[Run]], norms: dict[str, dict], out: Path) -> list[Path]:
    """aggregate_curves.png and performance_profile.png, over the environments that have a normalization (and two
    seeds); the IQM's band where the script has AGGREGATE_RUNS runs in all."""
    groups = aggregated(groups)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scripts = sorted({script for _, script in groups})
    colors = {script: f"C{i % 10}" for i, script in enumerate(scripts)}  # as in learning_curves.png
    envs_of = {script: sorted(e for e, s in groups if s == script and normalizer(e, norms)) for script in scripts}
    if not any(envs_of.values()):
        return []
    fig, (curves, profile) = plt.subplots(1, 2, figsize=(2 * PANEL[0], PANEL[1] + 0.6), dpi=DPI)
    finals = {script: score_matrix(groups, script, envs, norms) for script, envs in envs_of.items() if envs}
    lowest, highest = min(0.0, *(f.min() for f in finals.values())), max(f.max() for f in finals.values())
    taus = np.linspace(lowest, highest + 0.1 * (highest - lowest), 200)  # the scores' range, from 0 on
    for script, envs in envs_of.items():
        if not envs:
            continue
        runs = [groups[(env_id, script)][: len(finals[script])] for env_id in envs]
        evals = [[dict(map(tuple, run.evals)) for run in env_runs] for env_runs in runs]
        steps = sorted(set.intersection(*(set(e) for env_evals in evals for e in env_evals)))
        points = []
        for step in steps:  # (seeds, envs) of normalized eval returns at this step
            scores = np.array([[e[step] for e in env_evals] for env_evals in evals]).T
            low, high, _ = zip(*(normalizer(env_id, norms) for env_id in envs), strict=True)
            points.append(stats.interval(stats.iqm, (scores - np.array(low)) / (np.array(high) - np.array(low))))
        if points:
            value, low, high = map(np.array, zip(*points, strict=True))
            band = finals[script].size >= AGGREGATE_RUNS
            label = f"{script} ({len(envs)} envs, {finals[script].size} runs{'' if band else ': no interval'})"
            curves.plot(steps, value, "-o", color=colors[script], markersize=3, label=label)
            if band:
                curves.fill_between(steps, low, high, color=colors[script], alpha=0.2, linewidth=0)
        profile.plot(taus, stats.performance_profile(finals[script], taus), color=colors[script], label=script)
    curves.set(title="IQM of the normalized eval return, 95% CI", xlabel="environment steps", ylabel="normalized IQM")
    profile.set(title="Performance profile (final eval returns)", xlabel="normalized score tau",
                ylabel="fraction of runs with score > tau")  # fmt: skip
    from matplotlib.ticker import EngFormatter

    curves.xaxis.set_major_formatter(EngFormatter(sep=""))  # 10k, 1M, as in learning_curves.png
    for ax in (curves, profile):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    written = [out / "aggregate_curves.png", out / "performance_profile.png"]
    for path, ax in zip(written, (curves, profile), strict=True):  # each panel in a file of its own
        fig.savefig(path, dpi=DPI, bbox_inches=ax.get_tightbbox(fig.canvas.get_renderer()).transformed(
            fig.dpi_scale_trans.inverted()).padded(0.1))  # fmt: skip
    plt.close(fig)
    return written


def write_eval_curves(groups: dict[tuple[str, str], list[Run]], out: Path) -> list[Path]:
    """Each run's evaluation curve as a small CSV: step, mean return, std over the episodes (empty if not logged)."""
    (out / "eval_curves").mkdir(exist_ok=True)
    written = []
    for runs in groups.values():
        for run in runs:
            std = {int(step): value for step, value in run.eval_std}
            rows = [f"{int(step)},{mean:.6g}," + (f"{std[int(step)]:.6g}" if int(step) in std else "")
                    for step, mean in run.evals]  # fmt: skip
            path = out / "eval_curves" / f"{run.env_id.replace('/', '-')}__{run.script}__{run.seed}.csv"
            path.write_text("step,mean_return,std_return\n" + "".join(f"{row}\n" for row in rows))
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dirs", nargs="+", type=Path, metavar="RUNS_DIR")
    parser.add_argument("--out", type=Path, required=True, help="where results.md and the PNGs go")
    parser.add_argument("--references", type=Path, default=REFERENCES, help="published returns (CSV)")
    parser.add_argument("--normalization", type=Path, default=NORMALIZATION, help="random and reference returns (CSV)")
    args = parser.parse_args(argv)
    for flag in ("references", "normalization"):
        if not getattr(args, flag).is_file():
            fail(f"--{flag} '{getattr(args, flag)}' is not a file")
    groups: dict[tuple[str, str], list[Run]] = {}
    runs = load_runs(find_runs(args.runs_dirs))
    recorded = read_provenance_csvs(args.runs_dirs)  # for the runs whose own provenance.json is not here
    for run in runs:
        run.provenance = run.provenance or recorded.get((run.env_id, run.script, run.seed), [])
    for run in sorted(runs, key=lambda run: (run.env_id, run.script, run.seed)):
        groups.setdefault((run.env_id, run.script), []).append(run)
    norms = read_normalization(args.normalization)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(table(groups, read_references(args.references), norms, args.runs_dirs))
        pngs = plot(groups, args.out) + plot_intervals(groups, norms, args.out)
        curves = write_eval_curves(groups, args.out)
        write_train_curves(groups, args.out)
        write_provenance(groups, args.out)
    except OSError as e:
        fail(f"--out '{args.out}': cannot write the report: {e.strerror or e}")
    read = sum(run.from_csv for run in runs)
    from_csv = f" ({read} from evaluation CSVs)" if read else ""
    print(f"{len(runs)} runs{from_csv}, {len(groups)} environment x script groups: {args.out / 'results.md'}, "
          f"{len(pngs)} PNGs in {args.out}, {len(curves)} evaluation curves in {args.out / 'eval_curves'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
