"""The trained agents the results pages publish: each model file loads through its script's --eval-model, plays an
episode on its environment, and returns at least half of the final evaluation its page states (an actor loaded
wrongly plays like a random policy, far below that)."""

import csv
import re

import pytest
from conftest import ROOT, run


def published_models() -> list[dict]:
    """Every row of every results page's models/models.csv, with the page's directory."""
    rows = []
    for index in sorted(ROOT.glob("docs/results/*/models/models.csv")):
        with open(index, newline="") as f:
            rows += [{**row, "page": index.parent.parent} for row in csv.DictReader(f)]
    return rows


def test_the_results_pages_publish_models():
    assert published_models(), "no docs/results/*/models/models.csv lists a model"


@pytest.mark.parametrize("model", published_models(), ids=lambda row: row["file"])
def test_a_published_model_plays_an_episode_worth_half_its_pages_return(model, tmp_path):
    path = model["page"] / "models" / model["file"]
    assert path.stat().st_size < 1_000_000
    readme = (model["page"] / "README.md").read_text()
    assert f"models/{model['file']}" in readme and model["final_eval_return"] in readme  # the page states it
    # The run's own seed: the episode starts where the first episode of the run's own evaluations did.
    result = run(model["script"], "--eval-model", str(path), "--eval-episodes", "1", "--seed", model["seed"],
                 cwd=tmp_path, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr
    played = float(re.search(rf"{re.escape(model['env_id'])}: (?:return|score) (-?[\d.]+)", result.stdout).group(1))
    assert played >= 0.5 * float(model["final_eval_return"]), (played, model)
