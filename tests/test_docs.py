"""The docs stay true (the README, CHANGELOG, docs/ and the results pages): every relative link and image resolves,
every --flag they name for a program is one of that program's flags, every command in a bash block names files that
exist, each script's page has its parts in order and its Flags table lists exactly the script's flags."""

import ast
import dataclasses
import importlib
import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT, SCRIPTS, run

DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "docs" / "results").glob("*/README.md"))]  # fmt: skip
PARTS = ["Overview and papers", "Usage", "Logged metrics", "Implementation details", "Flags", "Results"]
# benchmark/{tool}.py, whose flags argparse lists
TOOLS = ["launch", "report", "speed", "buffer_memory", "publish_model", "atari_policy"]
EXTERNAL = {"pip", "tensorboard", "sbatch", "squeue", "#SBATCH", "git"}  # their flags are not ours to check
FLAG = re.compile(r"^--[a-z][a-z0-9-]*")
TOOL_FILES = {f"{tool}.py" for tool in TOOLS} | {sweep.name for sweep in ROOT.glob("benchmark/*.sh")}


def script_flags(script: str) -> set[str]:
    """--name for every Args field of the script, and --no-name for the booleans (tyro's flags)."""
    flags = {"--help"}
    for field in dataclasses.fields(importlib.import_module(script).Args):
        flags.add(f"--{field.name.replace('_', '-')}")
        if field.type in (bool, "bool"):
            flags.add(f"--no-{field.name.replace('_', '-')}")
    return flags


@pytest.fixture(scope="module")
def flags() -> dict[str, set[str]]:
    """program -> its flags: the scripts (by name), benchmark's tools (by file name), and the sweeps (launch.py's)."""
    known = {f"{script}.py": script_flags(script) for script in SCRIPTS}
    for tool in TOOLS:
        help_text = run(f"benchmark/{tool}.py", "--help", timeout=120).stdout
        known[f"{tool}.py"] = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", help_text, re.MULTILINE))
        assert len(known[f"{tool}.py"]) >= 4, tool
    for sweep in ROOT.glob("benchmark/sac_*.sh"):
        known[sweep.name] = known["launch.py"]
    known["gpu_check.sh"] = {"--wheels"}
    return known


def sweep_script(sweep: str) -> str:
    """The script a benchmark/*.sh sweep runs, as its launch.py line names it."""
    return re.search(r"launch\.py\"? (sac_\w+\.py)", (ROOT / "benchmark" / sweep).read_text()).group(1)


def code_lines(text: str) -> list[str]:
    """Every line of a ```bash block, and every inline `code` span outside blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    outside = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return lines + re.findall(r"`([^`\n]+)`", outside)


def flags_named(line: str, default: str | None) -> list[tuple[str, str | None]]:
    """(flag, the program it is given to) for each --flag of a command line: the last program named before it (a
    sweep's script after `--` and in EXTRA_ARGS); `default` where none is named; None for another program's flags."""
    tokens = line.replace('"', " ").replace("=", " = ").split()
    program, script, found = default, None, []
    for token in tokens:
        name = token.rsplit("/", 1)[-1]
        if token in EXTERNAL or name in EXTERNAL:
            program = None
        elif name.startswith("$") and name.endswith(".sh"):  # benchmark/$script.sh: a sweep, which one varies
            program, script = "launch.py", "(any script)"
        elif name.endswith((".py", ".sh")):
            if program in TOOL_FILES and name.startswith("sac_") and name.endswith(".py"):
                script = name  # an argument of launch.py or speed.py, not the program run
            else:
                program = name
                script = sweep_script(name) if name.startswith("sac_") and name.endswith(".sh") else None
        elif token == "--" and script:
            program = script
        elif token == "EXTRA_ARGS" and script is None and program is None:
            program = "(extra args)"
        elif FLAG.match(token):
            found.append((token, program))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https://, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name}: {target} does not exist"
        if file.suffix == ".py":  # a line range, which test_every_link_to_a_function_gives_its_lines checks
            assert re.fullmatch(r"(L\d+-L\d+)?", anchor), f"{doc.name}: {target}: not a line range"
        elif anchor:
            headings = re.findall(r"^#+ (.+)$", file.read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}
            assert anchor in slugs, f"{doc.name}: {target}: no such heading in {file.name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_flag_the_docs_name_is_a_flag_of_its_program(doc, flags):
    page_script = f"{doc.stem}.py" if doc.stem in SCRIPTS else None
    every = set().union(*flags.values())
    extra = {sweep: flags[sweep_script(sweep)] for sweep in flags if sweep.endswith(".sh") and sweep.startswith("sac_")}
    any_script = set.intersection(*(flags[f"{script}.py"] for script in SCRIPTS))
    for line in code_lines(doc.read_text()):
        sweep = next((s for s in extra if s in line), None)  # None: benchmark/$script.sh, one of several
        for flag, program in flags_named(line, page_script):
            if program in ("(extra args)", "(any script)"):
                assert flag in (extra[sweep] if sweep else any_script), f"{doc.name}: {flag} in EXTRA_ARGS of: {line}"
            elif program is not None:
                assert flag in flags.get(program, every), f"{doc.name}: {flag} is no flag of {program}: {line}"
            elif not any(line.lstrip().startswith(tool) for tool in EXTERNAL):
                assert flag in every, f"{doc.name}: {flag} is no flag of any program here: {line}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_command_in_a_bash_block_names_files_that_exist(doc):
    for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            for i, token in enumerate(tokens):
                if any(c in token for c in "$*{}<>:") or token.startswith(("runs/", "sweeps/", "~", "report")):
                    continue  # a variable, a pattern, a git revision's file (rev:path), or what a run writes
                named = token.endswith((".py", ".sh")) or token.startswith(("benchmark/", "docs/", "tests/"))
                if named or (i > 0 and tokens[i - 1] == "-r"):
                    assert (ROOT / token).exists(), f"{doc.name}: {token} does not exist: {line}"


def definitions(path: Path) -> dict[str, tuple[int, int]]:
    """The first and last line of each module-level function and class of a file, and of each method as Class.name."""
    lines = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            lines[node.name] = (node.lineno, node.end_lineno)
            for method in node.body if isinstance(node, ast.ClassDef) else []:
                if isinstance(method, ast.FunctionDef):
                    lines[f"{node.name}.{method.name}"] = (method.lineno, method.end_lineno)
    return lines


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_to_a_function_gives_its_lines(doc):
    """[`name`](../script.py#La-Lb): lines a to b of the script are the definition of `name`, from its def to its last
    line, so that a reader who follows an equation to its code lands on it."""
    for name, target in re.findall(r"\[`([\w.]+)`\]\(([^)\s]+\.py#L\d+-L\d+)\)", doc.read_text()):
        path, _, anchor = target.partition("#")
        first, last = map(int, re.findall(r"\d+", anchor))
        found = definitions((doc.parent / path).resolve()).get(name)
        assert found, f"{doc.name}: {name} is not defined in {path}"
        assert found == (first, last), f"{doc.name}: {name} is at #L{found[0]}-L{found[1]} of {path}, not {anchor}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_scripts_page_has_its_parts_in_order_and_lists_exactly_its_flags(script):
    text = (ROOT / "docs" / f"{script}.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert [h for h in headings if h in PARTS] == PARTS, headings
    section = text.split("\n## Flags\n")[1].split("\n## ")[0]
    listed = set(re.findall(r"^\| `(--[a-z0-9-]+)`(?: / `(--no-[a-z0-9-]+)`)?", section, re.MULTILINE))
    listed = {flag for pair in listed for flag in pair if flag}
    assert listed == script_flags(script) - {"--help"}


def test_the_readme_is_a_short_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 160
    order = ["## On a fresh machine", "## How to read a script", "## How well it learns", "## How fast it is"]
    assert [readme.index(heading) for heading in order] == sorted(readme.index(heading) for heading in order)


def help_entries(help_text: str) -> tuple[list[list[str]], int]:
    """The help of each flag in --help's boxes, as its lines of text, and the width those lines may take. Each box line
    is '│ content │'; a flag's entry starts at a line that begins with '-'; its help starts at the column where the
    help of a short flag begins (on the flag's own line if the flag ends before it, else on the next line)."""
    lines = [line[2:-2] for line in help_text.splitlines() if line.startswith("│ ") and line.endswith(" │")]
    starts = [len(line) - len(rest.lstrip()) for line in lines if line.startswith("-")
              for rest in [line[line.index("  ") :]] if "  " in line.rstrip()]  # fmt: skip
    column = max(set(starts), key=starts.count)
    entries: list[list[str]] = []
    for line in lines:
        if line.startswith("-"):
            on_its_line = line[column - 2 : column] == "  " and line[column:].strip()
            entries.append([line[column:].strip()] if on_its_line else [])
        elif entries and line[:column].strip() == "" and line.strip():
            entries[-1].append(line[column:].strip())
        elif line.strip():  # a group's title or description, or its rule: no flag's help
            entries.append([])
    return [entry for entry in entries if entry], max(map(len, lines)) - column


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_at_80_columns_wraps_each_flags_help_as_one_paragraph(script):
    """A line of a flag's help ends only where the next word would not fit: the terminal's wrap, never a line break of
    the docstring (which left orphan words: "than", "from", "Where"). The algorithm's flags come first, in a group of
    their own, and the top names the docs page."""
    result = run(script, "--help", env={"COLUMNS": "80"}, timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    entries, width = help_entries(text)
    assert len(entries) >= len(dataclasses.fields(importlib.import_module(script).Args))
    for entry in entries:
        for line, following in zip(entry, entry[1:], strict=False):
            assert len(line) + 1 + len(following.split()[0]) > width, (script, line, following)
    assert text.index("algorithm options") < text.index("--env-id") < text.index("run options") < text.index("--seed")
    assert f"docs/{script}.md" in text.split("╭")[0]


def test_the_update_figures_are_drawn_by_their_script(tmp_path):
    """docs/figures/update_figure.py draws the figure of one update that each script's page shows: the committed PNGs
    are what it draws (the same size; a figure edited by hand, or left behind by the script, would differ)."""
    import matplotlib.image

    result = run("docs/figures/update_figure.py", "--out", str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    for script in SCRIPTS:
        drawn = matplotlib.image.imread(tmp_path / f"update_{script}.png")
        committed = matplotlib.image.imread(ROOT / "docs" / "figures" / f"update_{script}.png")
        assert drawn.shape == committed.shape and abs(drawn.mean() - committed.mean()) < 0.01, script
        assert f"](figures/update_{script}.png)" in (ROOT / "docs" / f"{script}.md").read_text()
