"""tools/benchmark.py runs end to end on the tiny config (CI checks that it works; it asserts nothing about speed)."""

import json

import pytest
from conftest import REPO, load_tool


def test_benchmark_tiny_config_writes_json(tmp_path, capsys):
    out = tmp_path / "tmp.json"
    # One thread keeps the run steady on shared CI machines.
    assert (
        load_tool("benchmark").main(
            [
                "--config-file",
                str(REPO / "configs/tiny_cpu.yaml"),
                "--vocabulary",
                "20",
                "--iters",
                "2",
                "--warmup",
                "1",
                "--threads",
                "1",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["config"]["num_classes"] == 20 and result["config"]["fast_inference"] is False
    assert result["environment"]["device"] == "cpu" and result["environment"]["threads"] == 1
    for when in ("cold", "cached"):
        assert set(result["startup"][when]) == {"build_s", "text_embeddings_s", "total_s"}
    assert set(result["latency_ms"]) == {"encoder", "decoder", "pre_post_processing", "total"}
    assert all(len(v["all"]) == 2 and v["median"] >= 0 for v in result["latency_ms"].values())
    assert result["peak_memory"]["inference_mib"] >= 0 and result["peak_memory"]["method"]
    assert [t["batch_size"] for t in result["throughput"]] == [1] and result["throughput"][0]["images_per_s"] > 0
    assert result["flops"]["encoder_gflops"] > 0 and result["flops"]["decoder_gflops"] > 0
    assert "decoder" in capsys.readouterr().out


def test_benchmark_records_the_classes_the_decoder_kept(tmp_path, monkeypatch):
    """kept_per_stage is the last image's count of classes out of each of the 3 rejections (top-1 here), and
    kept_per_stage_mean their mean over the images, as the decoder's rejection returned them (recorded here)."""
    from sed.modeling.sed import decoder

    returned = []
    rejection = decoder.category_rejection

    def recording(logits, topk):
        kept = rejection(logits, topk)
        returned.append(int(kept.numel()))
        return kept

    monkeypatch.setattr(decoder, "category_rejection", recording)
    out = tmp_path / "fast.json"
    assert (
        load_tool("benchmark").main(
            [
                "--config-file",
                str(REPO / "configs/tiny_cpu.yaml"),
                "--vocabulary",
                "voc20",
                "--topk",
                "1",
                "--iters",
                "2",
                "--warmup",
                "0",
                "--threads",
                "1",
                "--skip-startup",
                "--skip-flops",
                "--random-text-embeddings",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())["rejection"]
    assert returned and len(returned) % 3 == 0 and all(1 <= k <= 20 for k in returned)
    per_image = [returned[i : i + 3] for i in range(0, len(returned), 3)]
    assert result["kept_per_stage"] == per_image[-1] and not result["forced_by_keep"]
    assert result["kept_per_stage_mean"] == pytest.approx(
        [sum(k[s] for k in per_image) / len(per_image) for s in range(3)]
    )


def test_benchmark_keep_forces_the_kept_set(tmp_path, monkeypatch):
    """--keep replaces the rejection (untrained weights reject meaninglessly): at every stage the decoder gets the
    K classes of highest maximum score (checked here against the scores it rejected from), and reports K."""
    import contextlib

    import torch

    from sed.benchmark import speed as speed_benchmark
    from sed.modeling.sed import decoder

    calls, override = [], speed_benchmark.rejection_override

    @contextlib.contextmanager
    def recorded_override(*args, **kwargs):
        with override(*args, **kwargs):
            forced = decoder.category_rejection

            def recording(logits, topk):
                kept = forced(logits, topk)
                calls.append((logits.flatten(1).amax(1), kept))
                return kept

            decoder.category_rejection = recording
            try:
                yield
            finally:
                decoder.category_rejection = forced  # the override then puts the decoder's own back

    monkeypatch.setattr(speed_benchmark, "rejection_override", recorded_override)
    out = tmp_path / "keep.json"
    assert (
        load_tool("benchmark").main(
            [
                "--config-file",
                str(REPO / "configs/tiny_cpu.yaml"),
                "--vocabulary",
                "voc20",
                "--keep",
                "3",
                "--iters",
                "1",
                "--warmup",
                "0",
                "--threads",
                "1",
                "--skip-startup",
                "--skip-flops",
                "--random-text-embeddings",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert calls and len(calls) % 3 == 0
    for scores, kept in calls:
        assert sorted(kept.tolist()) == sorted(torch.argsort(scores, descending=True)[:3].tolist())
    result = json.loads(out.read_text())
    assert result["config"]["fast_inference"] and result["rejection"]["forced_by_keep"]
    assert result["rejection"]["kept_per_stage"] == [len(kept) for _, kept in calls[-3:]] == [3, 3, 3]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--vocabulary", "ade9999"], "unknown"),
        (["--device", "cuda"], "CUDA is not available"),
    ],
)
def test_benchmark_errors_are_clear(argv, message, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert load_tool("benchmark").main(["--config-file", str(REPO / "configs/tiny_cpu.yaml"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_train_benchmark_reports_memory_per_batch_size_and_checkpointing(tmp_path, capsys):
    out = tmp_path / "train.json"
    assert (
        load_tool("benchmark").main(
            [
                "--train",
                "--config-file",
                str(REPO / "configs/quickstart.yaml"),
                "--iters",
                "1",
                "--warmup",
                "0",
                "--threads",
                "1",
                "--output",
                str(out),
                "--batch-sizes",
                "1",
                "2",
                "--opts",
                "INPUT.CROP.SIZE",
                "(64,64)",
                "MODEL.CLIP_RESOLUTION",
                "(64,64)",
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())["train"]
    assert [(r["batch_size"], r["clip_gradient_checkpointing"]) for r in rows] == [
        (1, False),
        (2, False),
        (1, True),
        (2, True),
    ]
    assert all(r["peak_mib"] >= 0 and r["total_mib"] > r["peak_mib"] and r["s_per_iter"] > 0 for r in rows)
    assert "images/GPU" in capsys.readouterr().out


def test_benchmark_measures_ecenet_by_part(tmp_path):
    out = tmp_path / "ecenet.json"
    assert (
        load_tool("benchmark").main(
            [
                "--config-file",
                str(REPO / "configs/ecenet/ecenet_tiny_cpu.yaml"),
                "--iters",
                "1",
                "--warmup",
                "0",
                "--threads",
                "1",
                "--skip-startup",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["config"]["model"] == "ECENet" and result["config"]["num_classes"] == 8
    assert set(result["latency_ms"]) == {"backbone", "head", "pre_post_processing", "total"}
    assert result["latency_ms"]["backbone"]["median"] > 0 and result["latency_ms"]["head"]["median"] > 0
    assert result["flops"]["model_gflops"] > 0 and result["throughput"][0]["images_per_s"] > 0


def test_benchmark_refuses_sed_options_for_ecenet(capsys):
    assert (
        load_tool("benchmark").main(
            [
                "--config-file",
                str(REPO / "configs/ecenet/ecenet_tiny_cpu.yaml"),
                "--fast",
                "--skip-startup",
                "--skip-flops",
                "--iters",
                "1",
            ]
        )
        == 2
    )
    assert "--fast: only for SED" in capsys.readouterr().err


def test_overrides_after_a_list_option_stay_overrides():
    args = load_tool("benchmark").parse_args(
        ["--config-file", "c.yaml", "--batch-sizes", "1", "2", "4", "--opts", "MODEL.DEVICE", "cpu"]
    )
    assert args.batch_sizes == [1, 2, 4] and args.opts == ["MODEL.DEVICE", "cpu"]


def test_help_keeps_the_examples_line_continuations():
    text = load_tool("benchmark").build_parser().format_help()
    assert "--batch-sizes 1 2 4 \\\n" in text and "--opts MODEL.ENC.CLIP_PRETRAINED_WEIGHTS" in text


def test_encoder_profile_reports_parts_and_differences(tmp_path, capsys):
    out = tmp_path / "encoder.json"
    argv = ["--encoder-profile", "--config-file", str(REPO / "configs/tiny_cpu.yaml"), "--iters", "1"]
    assert load_tool("benchmark").main(argv + ["--threads", "1", "--layer-scale", "0.5", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    for label in ("timm", "fused"):
        assert result[label]["median_s"] > 0 and result[label]["mlp_gmac"] > 0
        assert set(result[label]["parts_s"]) >= {"mlp matmul", "gelu", "depthwise conv", "layer norm", "rest"}
    assert result["fused"]["parts_s"]["gelu"] == 0 < result["timm"]["parts_s"]["gelu"]  # fused into the linear
    assert set(result["differences_fused_vs_timm"]) == {"dense", "res2", "res3", "res4", "res5"}
    assert 0 < result["differences_fused_vs_timm"]["dense"]["max_abs"] < 1e-5
    assert result["whole_model"]["probability_max_abs_difference"] <= 1e-6
    assert result["whole_model"]["timm_s"]["median"] > 0 and result["whole_model"]["fused_s"]["median"] > 0
    assert "mlp matmul + gelu" in capsys.readouterr().out


def test_encoder_profile_refuses_models_without_clip(capsys):
    argv = ["--encoder-profile", "--config-file", str(REPO / "configs/ecenet/ecenet_tiny_cpu.yaml"), "--iters", "1"]
    assert load_tool("benchmark").main(argv) == 2
    assert "--encoder-profile: only for SED's CLIP encoder" in capsys.readouterr().err


def test_encoder_profile_compile_falls_back_when_compiling_fails(monkeypatch):
    import torch

    from sed.benchmark import encoder_profile

    def failing_compile(fn):
        def compiled(*args):
            raise RuntimeError("no C++ compiler")

        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    compiled, described = encoder_profile.compiled_encoder(None, torch.zeros(1, 3, 32, 32), "cpu", "fp32")
    assert compiled is None and described == "failed: RuntimeError"
