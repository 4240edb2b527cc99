"""Turn the TensorBoard logs of finished runs into a results table and learning curves.

    python benchmark/report.py RUNS_DIR [RUNS_DIR ...] --out DIR

RUNS_DIR is a sweep directory (benchmark/launch.py's --out), a runs/ directory or one run's directory: every
directory under it that holds a TensorBoard event file is a run. Runs are grouped by environment and by script (the
run's exp_name, which is the script's name unless --exp-name changed it), across seeds. Written:

  DIR/results.md   one row per environment and script: the final training return (each seed: the mean return of
                   its last 10 training episodes), the final eval return (each seed: its last evaluation, a mean over
                   --eval-episodes deterministic episodes), both as mean +- std over seeds; steps per second; the
                   seeds; the steps. Beside them, the published returns at the same step count from
                   benchmark/references.csv (same environment, any version: Hopper-v2 is shown beside Hopper-v5).
  DIR/learning_curves.png   one panel per environment, every script overlaid: the training return (the same
                   10-episode mean, against environment steps) as the mean over seeds with a band of +- one std,
                   and the eval return's mean over seeds as a dashed line.
  DIR/{env}.png    the same panel for each environment on its own.
"""

import argparse
import csv
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tensorboard_logs import read_run, steps_per_second

LAST_EPISODES = 10  # the final training return of a seed: the mean of its last 10 episodes, as CleanRL reports it
REFERENCES = Path(__file__).resolve().parent / "references.csv"
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

    @property
    def steps(self) -> int:
        """The last env step the run logged: its --total-timesteps if it finished."""
        return int(max((a[-1, 0] for a in (self.train, self.evals, self.sps) if len(a)), default=0))


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def find_runs(dirs: list[Path]) -> list[Path]:
    for d in dirs:
        if not d.is_dir():
            fail(f"RUNS_DIR '{d}' is not a directory")
    runs = sorted({event.parent for d in dirs for event in d.rglob("events.out.tfevents.*")})
    if not runs:
        fail(f"no TensorBoard event files under {' '.join(map(str, dirs))}")
    return runs


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
    step_and_value = [scalars.get(tag, none)[:, [0, 2]] for tag in ("charts/episodic_return", "eval/episodic_return")]
    return Run(path, env_id, script, seed, *step_and_value, scalars.get("charts/SPS", none))


def final_train_return(run: Run) -> float:
    return float(run.train[-LAST_EPISODES:, 1].mean()) if len(run.train) else math.nan


def final_eval_return(run: Run) -> float:
    return float(run.evals[-1, 1]) if len(run.evals) else math.nan


def mean_std(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"  # std over seeds, numpy's default (ddof=0)


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


def table(groups: dict[tuple[str, str], list[Run]], refs: list[dict], dirs: list[Path]) -> str:
    sources: dict[str, int] = {}
    lines = [
        "# Results",
        "",
        f"{sum(map(len, groups.values()))} runs from {', '.join(f'`{d}`' for d in dirs)}. Returns are the mean ± std "
        f"over seeds of each seed's final training return (the mean of its last {LAST_EPISODES} training episodes) "
        "and of its final eval return (its last evaluation: the mean over its eval episodes of the deterministic "
        "policy). Steps/s: the mean over seeds of each run's env steps over the time they took. Published: "
        "the returns reported at the same step count, with their sources below.",
        "",
        "| Environment | Script | Seeds | Steps | Final training return | Final eval return | Steps/s | Published |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (env_id, script), runs in groups.items():
        steps = sorted({run.steps for run in runs})
        steps_text = f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,} to {steps[-1]:,} (unfinished runs)"
        seeds = ", ".join(str(run.seed) for run in runs)
        sps = [steps_per_second(run.sps) for run in runs]
        sps_text = f"{np.nanmean(sps):.0f}" if not all(map(math.isnan, sps)) else "n/a"
        lines.append(f"| {env_id} | {script} | {len(runs)} ({seeds}) | {steps_text} | "
                     f"{mean_std([final_train_return(run) for run in runs])} | "
                     f"{mean_std([final_eval_return(run) for run in runs])} | {sps_text} | "
                     f"{published(refs, env_id, steps[-1], sources)} |")  # fmt: skip
    if sources:
        lines += ["", "Sources:", ""] + [f"{number}. {source}" for source, number in sources.items()]
    return "\n".join(lines) + "\n"


def smoothed(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The training return at each episode's end as the mean of the last LAST_EPISODES episodes up to it."""
    returns = np.cumsum(np.concatenate([[0.0], run.train[:, 1]]))
    n = np.arange(1, len(run.train) + 1)
    window = np.minimum(n, LAST_EPISODES)
    return run.train[:, 0], (returns[n] - returns[n - window]) / window


def draw_panel(ax, env_id: str, by_script: dict[str, list[Run]], colors: dict[str, str]) -> None:
    from matplotlib.ticker import EngFormatter

    for script, runs in by_script.items():
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
            ax.plot(grid[counted], mean, color=colors[script], label=f"{script}: training return, mean ± std of seeds")
            ax.fill_between(grid[counted], mean - std, mean + std, color=colors[script], alpha=0.2, linewidth=0)
        evals = {}
        for run in by_script[script]:
            for step, value in run.evals:
                evals.setdefault(step, []).append(value)
        if evals:
            steps = sorted(evals)
            ax.plot(steps, [np.mean(evals[s]) for s in steps], "--o", color=colors[script], markersize=3,
                    label=f"{script}: eval return, mean of seeds")  # fmt: skip
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


def plot(groups: dict[tuple[str, str], list[Run]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    envs: dict[str, dict[str, list[Run]]] = {}
    for (env_id, script), runs in groups.items():
        envs.setdefault(env_id, {})[script] = runs
    scripts = sorted({script for _, script in groups})
    colors = {script: f"C{i % 10}" for i, script in enumerate(scripts)}  # one color per script in every panel
    cols = min(3, len(envs))
    rows = math.ceil(len(envs) / cols)
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dirs", nargs="+", type=Path, metavar="RUNS_DIR")
    parser.add_argument("--out", type=Path, required=True, help="where results.md and the PNGs go")
    parser.add_argument("--references", type=Path, default=REFERENCES, help="published returns (CSV)")
    args = parser.parse_args(argv)
    if not args.references.is_file():
        fail(f"--references '{args.references}' is not a file")
    paths = find_runs(args.runs_dirs)
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in sorted(map(load_run, paths), key=lambda run: (run.env_id, run.script, run.seed)):
        groups.setdefault((run.env_id, run.script), []).append(run)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(table(groups, read_references(args.references), args.runs_dirs))
        pngs = plot(groups, args.out)
    except OSError as e:
        fail(f"--out '{args.out}': cannot write the report: {e.strerror or e}")
    print(f"{len(paths)} runs, {len(groups)} environment x script groups: {args.out / 'results.md'}, "
          f"{len(pngs)} PNGs in {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
