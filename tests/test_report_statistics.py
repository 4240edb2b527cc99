"""benchmark/rl_statistics.py and the report's interval estimates, against values computed by hand: the IQM, a
stratified bootstrap interval against the exact distribution of the resamples, the probability of improvement, a
performance profile; and benchmark/report.py on hand-made runs (TensorBoard files written here, with known final
evaluations)."""

import itertools
import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import rl_statistics as stats
from conftest import ROOT, run
from torch.utils.tensorboard import SummaryWriter

ALPHA = [100.0, 200.0, 300.0, 400.0, 1000.0]  # the hand-made runs' final eval returns, one per seed
BETA = [150.0, 150.0, 250.0, 400.0, 500.0]


def test_iqm_is_the_mean_of_the_middle_half_of_all_runs_and_tasks():
    assert stats.iqm(np.array([[1.0, 100.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])) == 4.5  # (3 + 4 + 5 + 6) / 4
    assert stats.iqm(np.array(ALPHA)) == 300.0  # 5 runs: one cut at each end, (200 + 300 + 400) / 3
    assert stats.iqm(np.array([3.0, 1.0, 2.0])) == 2.0  # under 4 runs nothing is cut


def test_probability_of_improvement_counts_the_pairs_that_one_wins_and_half_the_ties():
    x, y = np.array(ALPHA)[:, None], np.array(BETA)[:, None]
    # 100 beats none of BETA, 200 two, 300 three, 400 three and a tie, 1000 all five: 13.5 of 25 pairs.
    assert stats.probability_of_improvement(x, y) == 13.5 / 25
    assert stats.probability_of_improvement(y, x) == 11.5 / 25
    # Two tasks: the mean of each task's probability (1 on the first, 0.5 on the second, a tie).
    assert stats.probability_of_improvement(np.array([[2.0, 1.0]]), np.array([[1.0, 1.0]])) == 0.75


def test_a_performance_profile_is_the_fraction_of_runs_above_each_score():
    scores = np.array([[0.1, 0.5], [0.9, 0.5]])
    np.testing.assert_array_equal(stats.performance_profile(scores, np.array([0.0, 0.5, 0.8, 1.0])), [1, 0.25, 0.25, 0])


def test_the_bootstrap_interval_of_the_iqm_matches_the_exact_distribution_of_the_resamples():
    """Five runs of one task: all 5^5 equally likely resamples give the exact distribution of the resampled IQM. The
    bootstrap's bounds (2,000 samples) lie between the exact 1.5% and 3.5% quantiles, and the 96.5% and 98.5% ones:
    within about three standard errors of an estimated 2.5% quantile."""
    exact = [stats.iqm(np.array(sample)) for sample in itertools.product(ALPHA, repeat=len(ALPHA))]
    value, low, high = stats.interval(stats.iqm, np.array(ALPHA)[:, None])
    assert value == 300.0
    assert np.percentile(exact, 1.5) <= low <= np.percentile(exact, 3.5)
    assert np.percentile(exact, 96.5) <= high <= np.percentile(exact, 98.5)
    assert low < value < high
    assert stats.interval(stats.iqm, np.array(ALPHA)[:, None]) == (value, low, high)  # the same input, the same output
    with pytest.raises(ValueError, match="at least two runs"):
        stats.interval(stats.iqm, np.array([[1.0, 2.0]]))


def write_run(root, env_id: str, script: str, seed: int, final_eval: float, evals: list[float] = ()) -> Path:
    """A run's TensorBoard file as the scripts write it (the run directory's name says env, script and seed): an
    evaluation at step 1,000 and the final one at 2,000 (or `evals` at steps 1,000, 2,000, ... and then the final),
    training episodes and steps per second. Returns the run's directory."""
    path = root / f"{env_id}__{script}__{seed}__0"
    writer = SummaryWriter(path)
    for step, value in enumerate([*(evals or [final_eval / 2]), final_eval], start=1):
        writer.add_scalar("eval/episodic_return", value, 1000 * step)
    last = 1000 * (len(evals or [0]) + 1)
    for step in np.linspace(last / 4, last, 4):
        writer.add_scalar("charts/episodic_return", final_eval * step / last, int(step))
        writer.add_scalar("charts/SPS", 100.0, int(step))
    writer.close()
    return path


def run_report(*dirs, out):
    """benchmark/report.py on these directories, as a user runs it."""
    return run("benchmark/report.py", *map(str, dirs), "--out", str(out), timeout=300)


def report_of(*dirs, out) -> str:
    result = run_report(*dirs, out=out)
    assert result.returncode == 0, result.stderr
    return result.stdout


def cell(text: str, row_start: str, column: int) -> str:
    (row,) = [line for line in text.splitlines() if line.startswith(row_start)]
    return row.split("|")[column].strip()


def interval_in(text: str) -> tuple[float, float, float]:
    """(value, low, high) of "IQM v [95% CI l, h]" (a group's) or "v [l, h]" (an aggregate's)."""
    value, low, high = re.fullmatch(r"(?:IQM )?(\S+) \[(?:95% CI )?(\S+), (\S+)\]", text).groups()
    return float(value), float(low), float(high)


WALKER = {"alpha": [1100.0, 1200.0, 1300.0, 1400.0, 1500.0], "beta": [100.0, 200.0, 300.0, 400.0, 500.0]}


def test_the_report_gives_each_groups_iqm_the_normalized_aggregate_and_the_probability_of_improvement(tmp_path):
    """Two scripts, 5 seeds of each on two environments: each group its IQM and bootstrap interval, and 10 runs of
    each script, enough for the aggregate's and P(X > Y)'s intervals."""
    for script, finals in [("alpha", ALPHA), ("beta", BETA)]:
        for seed, (hopper, walker) in enumerate(zip(finals, WALKER[script], strict=True), start=1):
            write_run(tmp_path / "runs", "Hopper-v5", script, seed, hopper)
            write_run(tmp_path / "runs", "Walker2d-v5", script, seed, walker)
    outs = [tmp_path / "report", tmp_path / "again"]
    for out in outs:
        report_of(tmp_path / "runs", out=out)
    results = (outs[0] / "results.md").read_text()
    assert results == (outs[1] / "results.md").read_text()  # the bootstrap is seeded: the same report twice
    assert "2,000 bootstrap samples of the seeds (numpy generator seed 0)" in results
    assert "IQM [95% CI] (n ≥ 5), else mean [min, max]" in results
    exact = [stats.iqm(np.array(sample)) for sample in itertools.product(ALPHA, repeat=len(ALPHA))]
    value, low, high = interval_in(cell(results, "| Hopper-v5 | alpha |", 7))  # printed to 0.1
    assert value == 300.0 and np.percentile(exact, 1.5) - 0.05 <= low <= np.percentile(exact, 3.5) + 0.05
    assert np.percentile(exact, 96.5) - 0.05 <= high <= np.percentile(exact, 98.5) + 0.05
    assert interval_in(cell(results, "| Hopper-v5 | beta |", 7))[0] == pytest.approx(800 / 3, abs=0.05)
    # Across environments: Hopper mapped by D4RL's random (-20.272305) and expert SAC (3234.3) returns, Walker2d by
    # 1.629008 and 4592.3; the IQM of alpha's 10 runs is the mean of the middle 6 (2 cut at each end).
    hopper = (np.array(ALPHA) + 20.272305) / (3234.3 + 20.272305)
    walker = (np.array(WALKER["alpha"]) - 1.629008) / (4592.3 - 1.629008)
    middle = np.sort(np.concatenate([hopper, walker]))[2:8]
    value, low, high = interval_in(cell(results, "| alpha | 2 | 5 | 10 |", 5))
    assert value == pytest.approx(middle.mean(), abs=0.0005) and low < value < high
    assert "- Hopper-v5: -20.2723 and 3234.3, a random policy and expert SAC: D4RL" in results
    # P(alpha > beta): 13.5 of Hopper's 25 pairs, all of Walker2d's 25: the mean of 0.54 and 1.
    p, low, high = interval_in(cell(results, "| alpha | beta | Hopper-v5, Walker2d-v5 |", 4))
    assert p == pytest.approx((13.5 / 25 + 1) / 2, abs=0.0005) and 0 <= low < p < high <= 1
    for name in ["aggregate_curves.png", "performance_profile.png"]:
        image = matplotlib.image.imread(outs[0] / name)  # decodes the whole file
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50  # drawn on: curves, band, text


def test_a_group_of_three_seeds_shows_its_mean_and_range_and_the_last_five_evaluations(tmp_path):
    """Three seeds are too few for an interval: the row says mean [min, max], and the aggregate over them (3 runs)
    gives its IQM without an interval. Beside the final evaluation, each seed's mean of its last 5."""
    evals = {1: [50.0, 60.0, 70.0, 80.0, 90.0, 100.0], 2: [10.0, 300.0, 100.0, 200.0, 300.0, 100.0], 3: [0.0]}
    finals = {1: 110.0, 2: 400.0, 3: 250.0}
    for seed in evals:
        write_run(tmp_path / "runs", "Hopper-v5", "alpha", seed, finals[seed], evals[seed])
    report_of(tmp_path / "runs", out=tmp_path / "report")
    results = (tmp_path / "report" / "results.md").read_text()
    assert cell(results, "| Hopper-v5 | alpha |", 7) == "mean 253.3 [min 110.0, max 400.0]"
    assert "95% CI" not in cell(results, "| Hopper-v5 | alpha |", 7)
    # Seed 1: (70 + 80 + 90 + 100 + 110) / 5 = 90; seed 2: (100 + 200 + 300 + 100 + 400) / 5 = 220; seed 3, with two
    # evaluations only: (0 + 250) / 2 = 125. Mean 145, std (ddof=0) 55.08.
    last5 = np.array([90.0, 220.0, 125.0])
    assert cell(results, "| Hopper-v5 | alpha |", 8) == f"{last5.mean():.1f} ± {last5.std():.1f}"
    normalized = (np.array([110.0, 400.0, 250.0]) + 20.272305) / (3234.3 + 20.272305)
    assert cell(results, "| alpha | 1 | 3 | 3 |", 5) == f"{normalized.mean():.3f} (3 runs: too few for an interval)"


def test_a_group_with_one_seed_has_its_row_and_curves_and_stays_out_of_the_aggregates(tmp_path):
    """A one-seed group (a first look, or a sweep whose other seeds still run) is reported without an interval; the
    groups with two seeds are in the aggregate, computed from them alone."""
    write_run(tmp_path / "runs", "Walker2d-v5", "alpha", 1, 700.0)
    for seed, final in enumerate(ALPHA[:2], start=1):
        write_run(tmp_path / "runs", "Hopper-v5", "alpha", seed, final)
    report_of(tmp_path / "runs", out=tmp_path / "report")
    results = (tmp_path / "report" / "results.md").read_text()
    assert cell(results, "| Walker2d-v5 | alpha |", 6) == "700.0 (1 seed)"  # no "± 0.0": one seed has no spread
    assert cell(results, "| Walker2d-v5 | alpha |", 7) == "700.0 (1 seed)"
    assert "Fewer than 2 seeds with an evaluation, so in no aggregate: Walker2d-v5 alpha (1)." in results
    # Hopper's two seeds: their mean and range, and the aggregate over Hopper alone, without an interval.
    assert cell(results, "| Hopper-v5 | alpha |", 7) == "mean 150.0 [min 100.0, max 200.0]"
    assert cell(results, "| alpha | 1 | 2 | 2 |", 5).endswith("(2 runs: too few for an interval)")
    written = {path.name for path in (tmp_path / "report").rglob("*") if path.is_file()}
    assert {"Walker2d-v5.png", "Walker2d-v5__alpha__1.csv", "aggregate_curves.png"} <= written
    # Two environments: their panels side by side, each 500 x 360.
    assert matplotlib.image.imread(tmp_path / "report" / "learning_curves.png").shape == (360, 1000, 4)


def test_the_report_lists_each_runs_provenance_and_reads_it_back_from_its_csv(tmp_path):
    """Each part of a run (one per start) with the setup it ran with: two parts on two CPUs make two setups; a run
    without a provenance.json is said to have none; the report of the report's CSVs says the same."""
    setup = {"commit": "a" * 40, "python": "3.11.7", "torch": "2.13.0", "gymnasium": "1.4.0", "numpy": "2.4.6",
             "mujoco": "3.17.0", "dm_control": None, "ale_py": "0.12.1", "shimmy": None, "cpu": "CPU A", "cores": 2,
             "device": "cpu", "threads": 1, "compile": True}  # fmt: skip
    parts = [{**setup, "started": "2026-01-01 00:00:00 UTC", "first_step": 0, "last_step": 1000,
              "train_seconds": 3725.5, "eval_seconds": 60.0},
             {**setup, "cpu": "CPU B", "started": "2026-01-02 00:00:00 UTC", "first_step": 1000, "last_step": 2000,
              "train_seconds": 100.0, "eval_seconds": 0.4}]  # fmt: skip
    path = write_run(tmp_path / "runs", "Hopper-v5", "alpha", 1, 100.0)
    (path / "provenance.json").write_text(json.dumps(parts))
    write_run(tmp_path / "runs", "Hopper-v5", "alpha", 2, 200.0)
    report_of(tmp_path / "runs", out=tmp_path / "report")
    report_of(tmp_path / "report" / "eval_curves", out=tmp_path / "again")  # the CSV beside eval_curves/ is read
    sections = [(tmp_path / out / "results.md").read_text().split("## Provenance")[1] for out in ("report", "again")]
    assert sections[0] == sections[1]
    assert (tmp_path / "report" / "provenance.csv").read_text() == (tmp_path / "again" / "provenance.csv").read_text()
    lines = sections[0].splitlines()
    assert (
        "| S1 | aaaaaaaaaaaa | 3.11.7 | 2.13.0 | 1.4.0 | 2.4.6 | 3.17.0 | – | 0.12.1 | – | CPU A | 2 | cpu | 1 | True |"
        in lines
    )
    assert (
        "| S2 | aaaaaaaaaaaa | 3.11.7 | 2.13.0 | 1.4.0 | 2.4.6 | 3.17.0 | – | 0.12.1 | – | CPU B | 2 | cpu | 1 | True |"
        in lines
    )
    assert "| Hopper-v5 seed 1 | 1 | 2026-01-01 00:00:00 UTC | 0 to 1,000 | S1 | 1:02:06 | 0:01:00 |" in lines
    assert "| Hopper-v5 seed 1 | 2 | 2026-01-02 00:00:00 UTC | 1,000 to 2,000 | S2 | 0:01:40 | 0:00:00 |" in lines
    assert "| Hopper-v5 seed 2 | – | – | – | not recorded | – | – |" in lines
    (tmp_path / "runs" / path.name / "provenance.json").write_text("{not json")
    refused = run_report(tmp_path / "runs", out=tmp_path / "refused")
    assert refused.returncode == 2 and refused.stderr.startswith(
        f"error: '{path / 'provenance.json'}': not a provenance"
    )


def test_the_learning_curves_fill_their_rows_evenly_three_panels_at_most_to_a_row():
    import report

    grids = {panels: report.panel_grid(panels) for panels in range(1, 8)}
    assert grids == {1: (1, 1), 2: (1, 2), 3: (1, 3), 4: (2, 2), 5: (2, 3), 6: (2, 3), 7: (3, 3)}


def test_every_normalization_row_has_its_two_returns_and_its_source():
    import report

    rows = report.read_normalization(report.NORMALIZATION)
    assert {"pong", "breakout", "beamrider", "hopper", "halfcheetah", "walker2d", "ant"} <= set(rows)
    for row in rows.values():
        assert float(row["random"]) < float(row["reference"]) and row["source"] and row["url"].startswith("https://")
    # Every name the sweeps use finds its row; DeepMind Control needs none.
    for env_id, name in [
        ("BreakoutNoFrameskip-v4", "breakout"),
        ("ALE/Breakout-v5", "breakout"),
        ("Hopper-v5", "hopper"),
    ]:
        assert report.task_name(env_id) == name and report.normalizer(env_id, rows)[:2] == (
            float(rows[name]["random"]),
            float(rows[name]["reference"]),
        )
    assert report.normalizer("dm_control/cartpole-swingup-v0", rows)[:2] == (0.0, 1000.0)
    assert report.normalizer("Pendulum-v1", rows) is None


def rows_of(results: str) -> dict[str, list[str]]:
    """results.md's table rows and the aggregate's, by their first cells: each row's cells."""
    return {"|".join(cells[:3]): cells for line in results.splitlines() if line.startswith("| ")
            for cells in [[cell.strip() for cell in line.split("|")[1:-1]]]}  # fmt: skip


def test_a_report_read_back_from_its_evaluation_csvs_keeps_every_evaluation_statistic(tmp_path):
    """The CSVs a results page keeps are enough to report again once the TensorBoard logs are gone: the same eval
    returns, IQMs, normalized aggregate and probability of improvement, and the same training return (train_curves/);
    no steps/s (these hand-made runs recorded no provenance). A run's log wins over its CSV, and a CSV adds the seed
    that no log has (with its training episodes only where its train_curves/ is beside it)."""
    for script, finals in [("alpha", ALPHA), ("beta", BETA)]:
        for seed, final in enumerate(finals, start=1):
            write_run(tmp_path / "runs", "Hopper-v5", script, seed, final)
    first = tmp_path / "first"
    assert report_of(tmp_path / "runs", out=first).startswith("10 runs, 2 environment x script groups")
    stdout = report_of(first, out=tmp_path / "again")  # a report's directory: its eval_curves/
    assert stdout.startswith("10 runs (10 from evaluation CSVs), 2 environment x script groups")
    before, after = (rows_of((out / "results.md").read_text()) for out in (first, tmp_path / "again"))
    groups = ["Hopper-v5|alpha|5 (1, 2, 3, 4, 5)", "Hopper-v5|beta|5 (1, 2, 3, 4, 5)"]
    assert before.keys() == after.keys() >= {*groups, "alpha|1|5", "alpha|beta|Hopper-v5"}  # the aggregate, P(X > Y)
    assert after["alpha|1|5"] == before["alpha|1|5"] and after["alpha|beta|Hopper-v5"] == before["alpha|beta|Hopper-v5"]
    for key in groups:
        assert before[key][8] != "n/a" and after[key][8] == "n/a"  # no steps/s: no provenance to take it from
        assert after[key][:8] + after[key][9:] == before[key][:8] + before[key][9:]  # the training return kept
    assert "All the runs are read from evaluation CSVs" in (tmp_path / "again" / "results.md").read_text()
    for kind in ("eval_curves", "train_curves"):
        for curve in (first / kind).iterdir():
            assert (tmp_path / "again" / kind / curve.name).read_text() == curve.read_text()
    assert (first / "train_curves" / "Hopper-v5__alpha__5.csv").read_text() == (
        "step,episodic_return\n500,250\n1000,500\n1500,750\n2000,1000\n"  # ALPHA's 1000 * step / 2000
    )
    # Logs and their report together: every run once, from its log.
    stdout = report_of(tmp_path / "runs", first, out=tmp_path / "both")
    assert stdout.startswith("10 runs, 2 environment x script groups")
    assert rows_of((tmp_path / "both" / "results.md").read_text()) == before
    # Alpha's seed 5 with its log gone: its CSV stands in, and the training return and steps/s are over 4 seeds.
    for path in (tmp_path / "runs").glob("Hopper-v5__alpha__5__*"):
        path.rename(tmp_path / "gone")
    (tmp_path / "kept").mkdir()
    (first / "eval_curves" / "Hopper-v5__alpha__5.csv").rename(tmp_path / "kept" / "Hopper-v5__alpha__5.csv")
    assert report_of(tmp_path / "runs", tmp_path / "kept", out=tmp_path / "mixed").startswith(
        "10 runs (1 from evaluation CSVs)"
    )
    mixed = rows_of((tmp_path / "mixed" / "results.md").read_text())["Hopper-v5|alpha|5 (1, 2, 3, 4, 5)"]
    train = [final * step / 2000 for final in ALPHA[:4] for step in (500, 1000, 1500, 2000)]
    per_seed = np.array(train).reshape(4, 4).mean(axis=1)
    assert mixed[4] == f"{per_seed.mean():.1f} ± {per_seed.std():.1f} (4 of 5 seeds)"
    assert mixed[8] == "100 (4 of 5 seeds)"
    assert mixed[5:8] == before["Hopper-v5|alpha|5 (1, 2, 3, 4, 5)"][5:8]


def test_a_results_page_made_again_from_its_kept_files_has_its_final_returns_and_steps_per_second(tmp_path):
    """A results page (docs/results/*/) keeps its runs' CSVs and provenance, not their logs. Its report made again
    from them alone has the committed results.md's final eval returns and steps/s: a run read from CSVs takes its
    steps/s from its provenance (its steps over its training and evaluation seconds), which is the measure its log
    gave, to within 1%. Where some runs recorded no provenance, the steps/s is over the other seeds, as before."""
    pages = sorted(path.parent for path in (ROOT / "docs" / "results").glob("*/results.md"))
    assert len(pages) >= 2
    for page in pages:
        report_of(page, out=tmp_path / page.name)
        committed, again = (rows_of((d / "results.md").read_text()) for d in (page, tmp_path / page.name))
        groups = [key for key in committed if key.count("|") == 2 and re.search(r"\|\d+ \(", key)]
        assert groups and set(groups) <= set(again), page.name
        for key in groups:
            assert again[key][5] == committed[key][5], (page.name, key)  # the final eval return, mean ± std
            # steps/s: "80", or "98 (2 of 5 seeds)"
            (ours, *of), (theirs, *of_before) = (re.split(r" (?=\()", row[8]) for row in (again[key], committed[key]))
            assert of == of_before and abs(float(ours) - float(theirs)) <= max(1, 0.01 * float(theirs)), key


def test_an_evaluation_csv_names_its_run_and_a_bad_or_contradicting_one_is_refused(tmp_path):
    """A CSV's name gives env, script and seed, with the namespace of ALE/ and dm_control/ ids written as '-'."""
    curves = tmp_path / "report" / "eval_curves"
    curves.mkdir(parents=True)
    for name in ["ALE-Pong-v5__alpha__1", "dm_control-cheetah-run-v0__alpha__2", "Hopper-v5__alpha__3"]:
        (curves / f"{name}.csv").write_text("step,mean_return,std_return\n1000,10,1.5\n2000,20,\n")
    (curves / "notes.csv").write_text("step,mean_return,std_return\n1,2,3\n")  # not a run's name: not read
    (curves / "Walker2d-v5__alpha__1.csv").write_text("a,b\n1,2\n")  # not a report's header: not read
    report_of(curves, out=tmp_path / "out")
    rows = rows_of((tmp_path / "out" / "results.md").read_text())
    assert {key.split("|")[0] for key in rows if key.endswith(")") and not key.startswith("Environment|")} == {
        "ALE/Pong-v5",
        "dm_control/cheetah-run-v0",
        "Hopper-v5",
    }
    assert rows["ALE/Pong-v5|alpha|1 (1)"][3:6] == ["2,000", "n/a", "20.0 (1 seed)"]
    assert (tmp_path / "out" / "eval_curves" / "ALE-Pong-v5__alpha__1.csv").read_text() == (
        "step,mean_return,std_return\n1000,10,1.5\n2000,20,\n"
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "Hopper-v5__alpha__3.csv").write_text("step,mean_return,std_return\n1000,10,1.5\n2000,25,\n")
    refused = run_report(curves, other, out=tmp_path / "refused")
    contradicting = f"'{curves / 'Hopper-v5__alpha__3.csv'}' and '{other / 'Hopper-v5__alpha__3.csv'}'"
    assert (refused.returncode, refused.stderr) == (
        2,
        f"error: two different evaluation CSVs of Hopper-v5 alpha seed 3: {contradicting}\n",
    )
    (curves / "Pong-v5__alpha__4.csv").write_text("step,mean_return,std_return\n1000,ten,\n")
    refused = run_report(curves, out=tmp_path / "refused")
    bad = f"'{curves / 'Pong-v5__alpha__4.csv'}', line 2: not step,mean_return,std_return numbers: 1000,ten,"
    assert (refused.returncode, refused.stderr) == (2, f"error: {bad}\n")
    assert not (tmp_path / "refused").exists()
