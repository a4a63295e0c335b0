"""The commands of README.md, INSTALL.md, MODEL_ZOO.md, docs/ and datasets/README.md, and the examples each script's
`--help` prints, work as written after the set-up block (which activates .venv, so `python` is the interpreter running
this test): each script they name exists, its `--help` exits 0, and every documented command line parses with the
script's own argument parser (the parser its entry point builds), so that a flag that no longer exists or an option
that swallows the arguments after it fails here. Words are split by bash, as a user's shell splits them (loop
variables take each of their values). Parsing needs no GPU, data or download, so no command is excluded, but those of
a script without an argparse parser (NO_PARSER: the driver could not stop it before it works). The scripts run in one
child process (runpy), as the interpreter starts only once."""

import ast
import itertools
import json
import re
import subprocess
import sys

import pytest
from conftest import REPO

DOCS = [
    REPO / "README.md",
    REPO / "INSTALL.md",
    REPO / "MODEL_ZOO.md",
    REPO / "datasets" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]
SCRIPTS = sorted([*REPO.glob("tools/*.py"), *REPO.glob("datasets/*.py")])
PYTHON = r"(?:\.venv/bin/)?python3?"
SCRIPT = r"((?:tools|datasets)/[\w/.-]+\.py)"
# In a code block or a script's help: `python SCRIPT ARGS` at a line's start, after a prompt, `;`, `&&` or `do`.
BLOCK_COMMAND = re.compile(rf"(?:^|[;&|]\s*|\$\s+|\bdo\s+)\s*{PYTHON} {SCRIPT}([^;&|]*)")
# In prose: a code span `python SCRIPT ...`, or `SCRIPT ARGS` with arguments (a part of a command: its flags must
# exist, but the arguments it leaves out may be required).
INLINE_COMMAND = re.compile(rf"`(?:{PYTHON} {SCRIPT}([^`]*)|{SCRIPT}( [^`]+))`")
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")
REMARK = re.compile(r"\s{2,}\(.*\)\s*$")  # a usage line's remark after the command: `CMD ARGS   (= ...)`
NESTED_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")  # not a placeholder such as NAME

# Runs each script as `python SCRIPT ARGS...` would, in one interpreter, up to its argument parsing: argparse's
# parse_args (or parse_known_args, parse_intermixed_args) parses, then stops the script. Prints one JSON line per
# command: the parsed arguments or the parser's error.
DRIVER = """
import argparse, contextlib, io, json, os, runpy, sys

class Parsed(BaseException):
    pass

depth = 0

def stopping(parse):
    def parse_and_stop(self, *args, **kwargs):  # the outermost parse call stops the script
        global depth
        depth += 1
        try:
            parsed = parse(self, *args, **kwargs)
        finally:
            depth -= 1
        if depth == 0:
            raise Parsed(parsed)
        return parsed
    return parse_and_stop

for name in ("parse_args", "parse_known_args", "parse_intermixed_args", "parse_known_intermixed_args"):
    setattr(argparse.ArgumentParser, name, stopping(getattr(argparse.ArgumentParser, name)))
for script, argv in json.load(sys.stdin):
    sys.argv = [script, *argv]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT` sets it
    stderr = io.StringIO()
    result = {"error": "the script ended without parsing its arguments"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        try:
            runpy.run_path(script, run_name="__main__")
        except Parsed as parsed:
            namespace, extra = parsed.args[0] if isinstance(parsed.args[0], tuple) else (parsed.args[0], [])
            result = {"arguments": {k: v for k, v in vars(namespace).items()
                                    if isinstance(v, (str, int, float, bool, list, type(None)))}}
            if extra:  # parse_known_args: what the parser did not take
                result = {"error": [f"unrecognized arguments: {' '.join(extra)}"]}
        except SystemExit as e:
            if e.code not in (0, None):  # 0: a documented --help
                result = {"error": stderr.getvalue().strip().splitlines()[-1:] or [f"exit status {e.code}"]}
            else:
                result = {"arguments": {}}
        except BaseException as e:
            result = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)
"""


def bash_words(text, variables=()):
    """The words bash makes of `text` (quotes, comments; no globbing), with `variables` set. A usage synopsis'
    optional groups count as given (`[--root DIR]` -> --root DIR) and `...` (more of the same) as absent."""
    text = REMARK.sub("", text)
    assignments = "".join(f"{name}={value!r}; " for name, value in variables)
    out = subprocess.run(
        ["bash", "-c", f'set -f; {assignments}set -- {text}\nfor w in "$@"; do printf "%s\\0" "$w"; done'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    words = []
    for word in out.split("\0")[:-1]:
        if word.count("[") != word.count("]"):
            word = word.strip("[]")
        if word != "...":
            words.append(word)
    return words


def _loop_values(block_lines):
    """[(name, value), ...] for every combination of values of the `for NAME in VALUES; do` loops open at the end
    of the lines (a `done` closes the innermost)."""
    loops = []
    for line in block_lines:
        for m in re.finditer(r"\bfor (\w+) in ([^;]*); do|\bdone\b", line):
            if m.group(1):
                loops.append((m.group(1), bash_words(m.group(2))))
            else:
                loops.pop()
    return [list(zip([n for n, _ in loops], values)) for values in itertools.product(*[v for _, v in loops])]


def _block_commands(where, lines, first_line=None):
    """Commands of code-block lines (with their `\\` continuations) as (where, script, args, loop variables);
    with first_line (the block's first line in its file) `where` gets the command's line number."""
    found, i = [], 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i].strip()
        for m in BLOCK_COMMAND.finditer(line):
            at = where if first_line is None else f"{where}:{first_line + start}"
            found.append((at, m.group(1), m.group(2), _loop_values(lines[: start + 1]), True))
        i += 1
    return found


def documented_commands():
    """[(where, script, argv, whole command?)] of the docs' command lines and of each script's --help text (its
    docstring)."""
    found = []
    for doc in DOCS:
        name, block, block_start = doc.relative_to(REPO), None, 0
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                if block is not None:
                    found += _block_commands(name, block, block_start)
                block, block_start = ([], number + 1) if block is None else (None, 0)
            elif block is not None:
                block.append(line)
            else:
                for m in INLINE_COMMAND.finditer(line):
                    script, args = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
                    found.append((f"{name}:{number}", script, args, [[]], bool(m.group(1))))
    for path in SCRIPTS:
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""
        found += _block_commands(f"{path.relative_to(REPO)} --help", doc.splitlines())
    return [
        (
            f"{where} ({' '.join(f'{n}={v!r}' for n, v in variables)})" if variables else str(where),
            script,
            bash_words(args, variables),
            whole,
        )
        for where, script, args, loops, whole in found
        for variables in loops
    ]


COMMANDS = documented_commands()
# Scripts without an argparse parser: the driver cannot stop them after parsing, so their commands are not run.
NO_PARSER = {
    "tools/eval_suite.py": "reads CONFIG NUM_GPUS OUTPUT_DIR [KEY VALUE ...] by hand (no options to go "
    "stale); running it would start evaluations"
}
PARSED = [i for i, (_, script, _, _) in enumerate(COMMANDS) if script not in NO_PARSER]


def parse_in_child(commands):
    """The driver's result for each [script, argv] of `commands`, all parsed in one child process."""
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        input=json.dumps(commands),
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(commands), proc.stderr[-3000:]
    return results


@pytest.fixture(scope="module")
def parsed():
    """{index in COMMANDS: the driver's result} of the commands of scripts with a parser."""
    return dict(zip(PARSED, parse_in_child([COMMANDS[i][1:3] for i in PARSED])))


def test_set_up_activates_the_environment():
    setup_block = REPO.joinpath("README.md").read_text().split("## Set up and test", 1)[1].split("```", 2)[1]
    lines = [line.split("#")[0].strip() for line in setup_block.splitlines()]
    activates = next(i for i, line in enumerate(lines) if "source .venv/bin/activate" in line.split("&&")[-1])
    assert activates < next(i for i, line in enumerate(lines) if line.startswith("python"))


def test_the_commands_are_found():
    """The extraction itself: each kind of command line the docs use is among the commands."""
    where = {(w.split(" (")[0], s) for w, s, _, _ in COMMANDS}
    scripts = {s for _, s, _, _ in COMMANDS}
    assert {
        "tools/train_net.py",
        "tools/demo.py",
        "tools/eval_plan.py",
        "tools/collect_results.py",
        "tools/web_demo.py",
        "tools/convert_ecenet_mindspore.py",
        "tools/slurm_train.py",
        "tools/benchmark.py",
        "tools/export_model.py",
        "datasets/prepare_synthetic.py",
        "datasets/prepare_voc.py",
    } <= scripts
    assert any(w.startswith("tools/benchmark.py --help") for w, _ in where)  # the examples --help prints
    assert all("#" not in word for _, _, argv, _ in COMMANDS for word in argv)  # shell comments dropped


def test_shell_loops_are_expanded():
    """A documented `for NAME in VALUES; do ... done` gives one command per value, with $NAME replaced."""
    block = [
        "for precision in fp32 bf16; do",
        "  python tools/benchmark.py --precision $precision \\",
        "      --opts SEED 1",
        "done",
    ]
    [(_, script, args, loops, _)] = _block_commands("doc.md", block)
    assert script == "tools/benchmark.py"
    assert [bash_words(args, variables) for variables in loops] == [
        ["--precision", value, "--opts", "SEED", "1"] for value in ("fp32", "bf16")
    ]


def test_every_documented_script_exists_and_runs_its_help():
    scripts = sorted({s for _, s, _, _ in COMMANDS})
    missing = [s for s in scripts if not (REPO / s).is_file()]
    assert not missing, f"the docs name scripts that do not exist: {missing}"
    results = parse_in_child([[s, ["--help"]] for s in scripts])
    failed = {s: r for s, r in zip(scripts, results) if "error" in r}
    assert not failed, f"`python SCRIPT --help` failed: {failed}"


def test_the_parsing_sees_unknown_flags_and_swallowed_overrides():
    """What the check below must catch: a flag that does not exist, and an option that takes the config overrides
    after it (`--batch-sizes 1 2 4 KEY VALUE` before tools/benchmark.py took its overrides after --opts)."""
    unknown, swallowed, fine = parse_in_child(
        [
            ["tools/train_net.py", ["--config-file", "configs/quickstart.yaml", "--resum-from", "x"]],
            [
                "tools/benchmark.py",
                ["--config-file", "configs/tiny_cpu.yaml", "--batch-sizes", "1", "2", "MODEL.WEIGHTS", "w.pth"],
            ],
            [
                "tools/benchmark.py",
                [
                    "--config-file",
                    "configs/tiny_cpu.yaml",
                    "--batch-sizes",
                    "1",
                    "2",
                    "--opts",
                    "MODEL.WEIGHTS",
                    "w.pth",
                ],
            ],
        ]
    )
    assert "unrecognized arguments: --resum-from" in unknown["error"][0]
    assert "--batch-sizes: invalid int value: 'MODEL.WEIGHTS'" in swallowed["error"][0]
    assert fine["arguments"]["batch_sizes"] == [1, 2] and fine["arguments"]["opts"] == ["MODEL.WEIGHTS", "w.pth"]


def test_the_scripts_left_unparsed_have_no_parser():
    for script in NO_PARSER:
        assert "argparse" not in (REPO / script).read_text(), f"{script} has a parser now: parse its commands"


@pytest.mark.parametrize("index", PARSED, ids=[f"{COMMANDS[i][0]} {COMMANDS[i][1]}" for i in PARSED])
def test_documented_command_parses(index, parsed):
    """The script's own parser accepts the command; config overrides (`opts`) are KEY VALUE pairs of config
    keys, so that nothing an option should have taken ends up there, nor an override in an option."""
    where, script, argv, whole = COMMANDS[index]
    result = parsed[index]
    if not whole and "error" in result and "the following arguments are required" in result["error"][0]:
        return  # a part of a command (`tools/demo.py --opts`): its flags exist, the others are left out
    assert "error" not in result, f"{where}: `python {script} {' '.join(argv)}`: {result['error']}"
    opts = result["arguments"].get("opts") or []
    keys = opts[::2]
    assert len(opts) % 2 == 0 and all(CONFIG_KEY.match(k) or k == "KEY" for k in keys), (
        f"{where}: config overrides that are not KEY VALUE pairs: {opts}"
    )
    swallowed = [
        (name, value)
        for name, value in result["arguments"].items()
        if name != "opts"
        and isinstance(value, list)
        and any(isinstance(v, str) and NESTED_CONFIG_KEY.match(v) for v in value)
    ]
    assert not swallowed, f"{where}: options took config overrides: {swallowed}"
