"""The `python tools/...` and `python datasets/...` commands of README.md, INSTALL.md, MODEL_ZOO.md, docs/ and
datasets/README.md work as written after the set-up block (which activates .venv, so `python` is the interpreter
running this test): each script they name exists and its `--help` exits 0. `--help` needs no GPU, data or download, so no command is
excluded. All scripts run in one child process (runpy), as the interpreter starts only once."""
import re
import subprocess
import sys

from conftest import REPO
DOCS = [REPO / "README.md", REPO / "INSTALL.md", REPO / "MODEL_ZOO.md", REPO / "datasets" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `python` at a command's start (line start, after a prompt, backtick or `;`), then a script of the repository.
COMMAND = re.compile(r"(?:^|[`;]\s*|\$\s+)python3? ((?:tools|datasets)/[\w/.-]+\.py)", re.MULTILINE)

# Runs each script as `python SCRIPT --help` would, in one interpreter; prints "SCRIPT EXIT_CODE" per script.
DRIVER = """
import contextlib, io, os, runpy, sys
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT` sets it
    code = 0
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:
            code = f"{type(e).__name__}: {e}"
    print(f"{script}\t{code}", file=sys.stderr)
"""


def documented_scripts():
    return sorted({m.group(1) for doc in DOCS for m in COMMAND.finditer(doc.read_text())})


def test_set_up_activates_the_environment():
    setup_block = REPO.joinpath("README.md").read_text().split("## Set up and test", 1)[1].split("```", 2)[1]
    lines = [line.split("#")[0].strip() for line in setup_block.splitlines()]
    activates = next(i for i, line in enumerate(lines) if "source .venv/bin/activate" in line.split("&&")[-1])
    assert activates < next(i for i, line in enumerate(lines) if line.startswith("python"))


def test_every_documented_script_runs_its_help():
    scripts = documented_scripts()
    assert {"tools/train_net.py", "tools/demo.py", "tools/eval_plan.py", "tools/collect_results.py",
            "datasets/prepare_synthetic.py"} <= set(scripts)
    missing = [s for s in scripts if not (REPO / s).is_file()]
    assert not missing, f"the docs name scripts that do not exist: {missing}"
    proc = subprocess.run([sys.executable, "-c", DRIVER, *scripts], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    results = dict(line.split("\t", 1) for line in proc.stderr.splitlines() if line.split("\t")[0] in scripts)
    failed = {s: results.get(s, "no result") for s in scripts if results.get(s) != "0"}
    assert not failed, f"`python SCRIPT --help` failed: {failed}\n{proc.stderr[-2000:]}"
