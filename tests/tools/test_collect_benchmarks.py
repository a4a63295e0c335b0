"""tools/collect_benchmarks.py and tools/gpu_check.sh on the CPU: a batch without memory ends the batch list (and a
training batch without memory is recorded), and the runs of a folder become one JSON and one table."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, load_tool

TINY = str(REPO / "configs" / "tiny_cpu.yaml")


def out_of_memory(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder with a real tiny inference run whose batch 2 runs out of memory, and a training run at batch 2 that
    does too, plus a file that is not a result."""
    from sed.benchmark import speed as speed_benchmark
    from sed.benchmark import train_memory as train_benchmark

    folder = tmp_path_factory.mktemp("runs")
    benchmark = load_tool("benchmark")
    time_model = speed_benchmark.time_model

    def batch_1_only(model, inputs, *args):
        return time_model(model, inputs, *args) if len(inputs) == 1 else out_of_memory()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(speed_benchmark, "time_model", batch_1_only)
        patch.setattr(train_benchmark, "_measure", out_of_memory)
        assert (
            benchmark.main(
                [
                    "--config-file",
                    TINY,
                    "--vocabulary",
                    "5",
                    "--iters",
                    "1",
                    "--warmup",
                    "0",
                    "--threads",
                    "1",
                    "--skip-startup",
                    "--skip-flops",
                    "--random-text-embeddings",
                    "--batch-sizes",
                    "1",
                    "2",
                    "4",
                    "--output",
                    str(folder / "infer.json"),
                ]
            )
            == 0
        )
        assert (
            benchmark.main(
                [
                    "--train",
                    "--config-file",
                    TINY,
                    "--batch-sizes",
                    "2",
                    "--iters",
                    "1",
                    "--output",
                    str(folder / "train.json"),
                ]
            )
            == 0
        )
    (folder / "notes.json").write_text("[1, 2]")
    return folder


def test_a_batch_without_memory_ends_the_list(runs):
    throughput = json.loads((runs / "infer.json").read_text())["throughput"]
    assert [t["batch_size"] for t in throughput] == [1, 2] and throughput[1] == {"batch_size": 2, "out_of_memory": True}
    train = json.loads((runs / "train.json").read_text())["train"]
    assert [(r["batch_size"], r["out_of_memory"]) for r in train] == [(2, True), (2, True)]


def test_runs_become_one_json_and_one_table(runs, tmp_path, capsys):
    xml = tmp_path / "tests.xml"
    xml.write_text(
        '<testsuites><testsuite><testcase classname="a" name="ok"/><testcase classname="a" name="bad">'
        '<failure message="x"/></testcase><testcase classname="b" name="gpu"><skipped message="needs CUDA"/>'
        "</testcase></testsuite></testsuites>"
    )
    out = tmp_path / "all.json"
    assert load_tool("collect_benchmarks").main([str(runs), "--tests", str(xml), "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["tests"] == {
        "passed": 1,
        "failed": 1,
        "skipped": 1,
        "failures": ["a::bad"],
        "skip_reasons": ["needs CUDA"],
    }
    (row,) = report["inference"]
    assert row["classes"] == 5 and row["largest_batch"] == 1 and row["out_of_memory_at"] == 2
    assert row["latency_ms"]["total"] > 0
    assert len(report["train"]) == 2 and all(r["out_of_memory"] for r in report["train"])
    assert len(report["not_results"]) == 1 and report["not_results"][0].startswith("notes:")
    table = capsys.readouterr().out
    assert "tests marked gpu: 1 passed, 1 failed, 1 skipped; failed: a::bad" in table
    assert "tiny_cpu.yaml" in table and "out of memory" in table


def test_gpu_check_script_parses():
    subprocess.run(["bash", "-n", str(REPO / "tools" / "gpu_check.sh")], check=True)


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu_with_a_small_matrix(tmp_path):
    """The whole script with the tiny config on the CPU: benchmark runs, then one JSON and one table."""
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DEVICE": "cpu",
        "MODELS": f"tiny={TINY}",
        "VOCABULARIES": "5",
        "MODES": "full fast",
        "PRECISIONS": "fp32",
        "BATCH_SIZES": "1 2",
        "ITERS": "1",
        "WARMUP": "0",
        "KEEP": "2",
        "TRAIN_PRECISIONS": "",
        "SKIP_TESTS": "1",
        "BUDGET_S": "3000",
        "RUN_TIMEOUT_S": "900",
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        ["bash", str(REPO / "tools" / "gpu_check.sh"), str(tmp_path / "check")],
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "check" / "gpu_check.json").read_text())
    assert sorted(r["inference"] for r in report["inference"]) == ["fast", "full"]
    assert all(r["largest_batch"] == 2 for r in report["inference"])
    assert (tmp_path / "check" / "gpu_check.txt").read_text().startswith("device: ")
