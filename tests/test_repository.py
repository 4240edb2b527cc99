"""The README's fresh-machine commands and what CI runs stay the same thing."""

import re

from conftest import ROOT


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    install_and_train, install_and_test = re.findall(r"```bash\n(.+?)\n```", readme)[:2]
    assert "python sac_continuous_action.py" in install_and_train and "pytest" in install_and_test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines
