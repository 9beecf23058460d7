"""Using a trained model: evaluate, enhance and export, on a tiny checkpoint from a real
Trainer run, with real files, real PESQ and real subprocess runs of the entry points."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT, SR, TINY
from hydra.utils import instantiate
from omegaconf import OmegaConf

from crn_lightning.audio import resample
from crn_lightning.compose import compose_config
from crn_lightning.enhance import enhance
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.evaluate import evaluate
from crn_lightning.metrics import perceptual_scores, si_sdr
from crn_lightning.mixing import snr_db
from crn_lightning.models.crn import CRN, OUTPUTS
from crn_lightning.module import EnhancementModule
from crn_lightning.stft import STFT


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny CRN (the suite's TINY config) trained for a few steps by a real Trainer, saved as
    train.py saves it. Its own embedded corpus (eSpeak speech, about 10 s to generate): noise
    long enough that each test region (15 %) holds a whole utterance (at most 4.9 s)."""
    root = tmp_path_factory.mktemp("use_model")
    overrides = [o for o in TINY if not o.startswith("data.embedded.noise_seconds=")]
    cfg = compose_config(
        [
            *overrides,
            "data.corpus=embedded",
            "data.embedded.noise_seconds=40",
            f"paths.cache_dir={root / 'cache'}",
        ]
    )
    module = EnhancementModule.from_config(OmegaConf.to_container(cfg, resolve=True))
    trainer = L.Trainer(
        max_steps=3,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule=instantiate(cfg.data, stft=module.enhancer.stft))
    path = root / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


def _cli(module: str, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", f"crn_lightning.{module}", *overrides]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _config(name: str, **values) -> OmegaConf:
    return OmegaConf.merge(OmegaConf.load(ROOT / "conf" / f"{name}.yaml"), values)


def _tone(seconds: float, seed: int) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * (150 + 40 * seed) * k * t) / k for k in range(1, 8))
    return (0.2 * voice * np.clip(np.sin(np.pi * t / seconds) * 3, 0, 1)).astype(np.float32)


# -- evaluate ------------------------------------------------------------------------------
def test_full_length_grid_item_is_the_whole_utterance_at_the_grid_snr(checkpoint):
    enhancer = Enhancer.from_checkpoint(checkpoint)
    data = instantiate(enhancer.config["data"], stft=enhancer.stft)
    data.setup("test")
    grid = data.datasets["test"]
    for index, item in enumerate(grid.items):
        full = grid.mixture(index, full_length=True)
        clean, noise = full["clean"].numpy(), (full["noisy"] - full["clean"]).numpy()
        assert len(clean) == len(grid.utterances[item.utterance].audio) > data.clip_samples
        assert abs(snr_db(clean, noise) - item.snr_db) < 1e-3
        assert len(grid[index]["noisy"]) == data.clip_samples  # training's clips unchanged


@pytest.mark.slow
def test_evaluate_cli_scores_the_full_length_test_grid(checkpoint, tmp_path):
    result = _cli(
        "evaluate", f"ckpt={checkpoint}", f"paths.output_dir={tmp_path}", "metric_workers=2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "evaluate").iterdir()
    with (run_dir / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # test utterances × environments × SNRs
    assert {r["environment"] for r in rows} == {"PRESTO", "NPARK"}
    assert all(1.5 <= float(r["seconds"]) <= 4.9 for r in rows)  # whole utterances, not 1 s
    for r in rows:
        for name in ("pesq", "pesq_noisy"):
            assert 1.0 <= float(r[name]) <= 4.65
        assert -1 <= float(r["estoi"]) <= 1 and -1 <= float(r["estoi_noisy"]) <= 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["by_snr_db"]) == {"0", "10"}
    assert set(summary["by_environment"]) == {"PRESTO", "NPARK"}
    assert summary["all"]["clips"] == 8 and summary["failures"] == []
    gain = summary["all"]["pesq"] - summary["all"]["pesq_noisy"]
    assert math.isclose(summary["all"]["pesq_gain"], gain)
    for name in ("pesq_noisy", "estoi_noisy"):
        assert summary["by_snr_db"]["10"][name] > summary["by_snr_db"]["0"][name]
    table = (run_dir / "summary.md").read_text()
    assert "| SNR 0 dB | 4 |" in table and "| NPARK | 4 |" in table
    assert "ESTOI noisy → enhanced (gain)" in result.stdout


def test_evaluate_folder_pairs_uses_the_one_scoring_path(checkpoint, tmp_path):
    pairs = tmp_path / "pairs"
    for kind in ("clean", "noisy"):
        (pairs / kind).mkdir(parents=True)
    rng = np.random.default_rng(0)
    signals = {}
    for i, seconds in enumerate((1.5, 2.2)):
        clean = _tone(seconds, i)
        noisy = clean + 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
        sf.write(pairs / "clean" / f"u{i}.wav", clean, SR, subtype="FLOAT")
        sf.write(pairs / "noisy" / f"u{i}.wav", noisy, SR, subtype="FLOAT")
        signals[f"u{i}.wav"] = (clean, noisy)
    sf.write(pairs / "noisy" / "lonely.wav", _tone(1.0, 3), SR)
    sf.write(pairs / "clean" / "broken.wav", _tone(1.0, 4), SR)
    (pairs / "noisy" / "broken.wav").write_bytes(b"RIFF, but not audio")

    cfg = _config("evaluate", ckpt=str(checkpoint), pairs=str(pairs), metric_workers=0)
    summary = evaluate(cfg, tmp_path / "run")
    enhancer = Enhancer.from_checkpoint(checkpoint)
    with (tmp_path / "run" / "scores.csv").open() as f:
        rows = {r["utterance"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(signals)
    for name, (clean, noisy) in signals.items():
        with torch.no_grad():
            enhanced = enhancer(torch.from_numpy(noisy)[None])[0].numpy()
        noisy_scores = perceptual_scores(clean, noisy, extended=True)
        enhanced_scores = perceptual_scores(clean, enhanced, extended=True)
        labels = ("utterance", "environment", "snr_db", "pesq_error")
        row = {k: float(v) for k, v in rows[name].items() if k not in labels}
        for metric in ("pesq", "stoi", "estoi"):
            # Equal up to the last bits that threaded numpy / torch leave free.
            assert math.isclose(row[f"{metric}_noisy"], getattr(noisy_scores, metric), rel_tol=1e-9)
            assert math.isclose(row[metric], getattr(enhanced_scores, metric), rel_tol=1e-4)
        expected = si_sdr(torch.from_numpy(enhanced), torch.from_numpy(clean))
        assert math.isclose(row["si_sdr"], float(expected), rel_tol=1e-4)
    failures = {f["utterance"]: f["error"] for f in summary["failures"]}
    assert set(failures) == {"lonely.wav", "broken.wav"}
    assert "clean/lonely.wav" in failures["lonely.wav"]
    assert "not a readable audio file" in failures["broken.wav"]
    assert "by_snr_db" not in summary  # folder pairs have no SNR or environment labels
    with pytest.raises(ConfigError, match="already holds results"):
        evaluate(cfg, tmp_path / "run")  # never overwritten


# -- enhance -------------------------------------------------------------------------------
def test_enhance_keeps_format_rate_channels_and_never_overwrites(checkpoint, tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    mono = _tone(1.3, 0)
    stereo = np.stack([_tone(2.0, 1), _tone(2.0, 2)], axis=1)[::2] * 0.8  # 8 kHz
    sf.write(source / "a.wav", mono, SR, subtype="FLOAT")
    sf.write(source / "sub" / "b.flac", stereo, 8000, subtype="PCM_24")
    (source / "bad.wav").write_bytes(b"not audio at all")
    (source / "notes.txt").write_text("not an audio file: skipped")
    enhancer = Enhancer.from_checkpoint(checkpoint)

    report = enhance(_config("enhance", ckpt=str(checkpoint), input=str(source), output=str(out)))
    assert sorted(p.relative_to(out).as_posix() for p in report.written) == ["a.wav", "sub/b.flac"]
    assert len(report.failures) == 1 and "bad.wav" in report.failures[0]
    a, rate = sf.read(out / "a.wav", dtype="float32")
    assert rate == SR and sf.info(out / "a.wav").subtype == "FLOAT"
    with torch.no_grad():
        expected = enhancer(torch.from_numpy(mono)[None])[0].numpy()
    assert np.abs(a - expected).max() < 1e-6
    b, rate = sf.read(out / "sub" / "b.flac", dtype="float32")
    info = sf.info(out / "sub" / "b.flac")
    assert (rate, info.channels, info.format, info.subtype) == (8000, 2, "FLAC", "PCM_24")
    assert b.shape == stereo.shape
    with torch.no_grad():  # each channel on its own: resampled, enhanced, resampled back
        up = torch.from_numpy(resample(stereo[:, 1], 8000, SR))[None]
        second = resample(enhancer(up)[0].numpy(), SR, 8000)[: len(stereo)]
    assert np.abs(b[:, 1] - second).max() < 1e-5

    before = (out / "a.wav").read_bytes()
    again = enhance(_config("enhance", ckpt=str(checkpoint), input=str(source), output=str(out)))
    assert again.written == [] and len(again.failures) == 3
    assert any("overwrite=true" in f for f in again.failures)
    assert (out / "a.wav").read_bytes() == before

    mixed = enhance(
        _config(
            "enhance",
            ckpt=str(checkpoint),
            input=str(source / "sub" / "b.flac"),
            output=str(out / "mixed"),
            channels="mix",
            streaming=True,
            threads=1,
        )
    )
    assert sf.info(out / "mixed" / "b.flac").channels == 1 and mixed.chunk_seconds


def test_enhance_never_reads_its_own_outputs(checkpoint, tmp_path, caplog):
    # The output folder inside the input folder: a second run must not enhance the first
    # run's outputs (into out/out/x.wav), and says that it skipped the folder.
    source = tmp_path / "in"
    source.mkdir()
    sf.write(source / "x.wav", _tone(1.2, 7), SR, subtype="FLOAT")
    out = source / "out"
    cfg = _config("enhance", ckpt=str(checkpoint), input=str(source), output=str(out))
    assert enhance(cfg).written == [out / "x.wav"]
    cfg.overwrite = True
    with caplog.at_level("INFO", logger="crn_lightning.file_enhancement"):
        again = enhance(cfg)
    assert again.written == [out / "x.wav"] and again.failures == []
    assert not (out / "out").exists()
    assert f"skipping the output folder {out} inside it" in caplog.text


def test_checkpoint_holds_the_enhancer_and_bad_files_are_named(checkpoint, tmp_path):
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    weights = saved["state_dict"]
    assert weights and all(key.startswith("enhancer.") for key in weights)
    enhancer = Enhancer.from_checkpoint(checkpoint)
    assert not enhancer.training
    for key, value in enhancer.state_dict().items():
        assert torch.equal(value, weights[f"enhancer.{key}"])
    assert enhancer.num_parameters() == sum(p.numel() for p in enhancer.parameters()) > 0

    with pytest.raises(FileNotFoundError, match=f"checkpoint not found: {tmp_path / 'none'}"):
        Enhancer.from_checkpoint(tmp_path / "none")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"{garbage}: not a readable PyTorch checkpoint"):
        Enhancer.from_checkpoint(garbage)
    no_config = tmp_path / "no_config.ckpt"
    torch.save({"state_dict": weights}, no_config)
    with pytest.raises(ValueError, match=f"{no_config}: no 'crn_lightning_config' in it"):
        Enhancer.from_checkpoint(no_config)
    older = tmp_path / "older.ckpt"  # weights under the LightningModule's former names
    renamed = {
        k.replace("enhancer.network.", "model.").replace("enhancer.", ""): v
        for k, v in weights.items()
    }
    torch.save({**saved, "state_dict": renamed}, older)
    with pytest.raises(ValueError, match=rf"{older}: its state_dict holds no 'enhancer\.\*'"):
        Enhancer.from_checkpoint(older)


def test_enhance_streaming_writes_what_offline_writes(checkpoint, tmp_path):
    sf.write(tmp_path / "x.wav", _tone(1.7, 5), SR, subtype="FLOAT")
    outputs = {}
    for streaming in (False, True):
        folder = tmp_path / f"streaming={streaming}"
        cfg = _config(
            "enhance",
            ckpt=str(checkpoint),
            input=str(tmp_path / "x.wav"),
            output=str(folder),
            streaming=streaming,
            threads=1,
        )
        enhance(cfg)
        outputs[streaming] = sf.read(folder / "x.wav", dtype="float32")[0]
    assert np.abs(outputs[True] - outputs[False]).max() <= 1e-4


def test_enhance_overrides_the_checkpoints_attenuation_limit(checkpoint, tmp_path):
    noisy = _tone(1.3, 7) + 0.05 * np.random.default_rng(7).standard_normal(round(1.3 * SR))
    sf.write(tmp_path / "x.wav", noisy.astype(np.float32), SR, subtype="FLOAT")
    outputs = {}
    for limit in ("checkpoint", None, 6.0):
        folder = tmp_path / f"limit={limit}"
        cfg = _config("enhance", ckpt=str(checkpoint), input=str(tmp_path / "x.wav"))
        enhance(OmegaConf.merge(cfg, {"output": str(folder), "attenuation_limit_db": limit}))
        outputs[limit] = sf.read(folder / "x.wav", dtype="float32")[0]
    # The tiny checkpoint has no limit; 6 dB mixes half the noisy signal back in.
    assert np.array_equal(outputs["checkpoint"], outputs[None])
    share = 10 ** (-6 / 20)
    expected = (1 - share) * outputs[None] + share * sf.read(tmp_path / "x.wav")[0]
    assert np.abs(outputs[6.0] - expected).max() <= 1e-4
    bad = _config("enhance", ckpt=str(checkpoint), input=str(tmp_path), output=str(tmp_path / "b"))
    with pytest.raises(ConfigError, match="attenuation_limit_db must be a positive"):
        enhance(OmegaConf.merge(bad, {"attenuation_limit_db": -3}))


@pytest.mark.slow
def test_enhance_cli_lists_failures_and_names_missing_keys(checkpoint, tmp_path):
    sf.write(tmp_path / "good.wav", _tone(1.0, 6), SR)
    (tmp_path / "bad.wav").write_bytes(b"RIFF????")
    result = _cli(
        "enhance",
        f"ckpt={checkpoint}",
        f"input={tmp_path}",
        f"output={tmp_path / 'out'}",
        f"paths.output_dir={tmp_path / 'logs'}",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "enhanced 1 file(s)" in result.stdout and "FAILED 1 file(s)" in result.stdout
    assert f"{tmp_path / 'bad.wav'}: not a readable audio file" in result.stdout
    assert (tmp_path / "out" / "good.wav").is_file()

    missing = _cli("enhance", f"input={tmp_path}", f"output={tmp_path / 'o2'}")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "ckpt=<a checkpoint written by crn_lightning.train> is required" in missing.stderr


# -- export --------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_cli_writes_graphs_that_onnxruntime_runs_like_pytorch(checkpoint, tmp_path):
    # The onnx extra is part of dev (and CI installs it): missing, this test fails, not skips.
    import onnx
    import onnxruntime  # noqa: F401

    from crn_lightning.export import run
    from crn_lightning.onnx_runtime import OnnxEnhancer

    path = tmp_path / "model.onnx"
    result = _cli(
        "export", f"ckpt={checkpoint}", f"output={path}", f"paths.output_dir={tmp_path / 'logs'}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ONNX Runtime vs PyTorch, max abs difference" in result.stdout
    assert path.is_file() and (tmp_path / "model.step.onnx").is_file()
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["n_fft"] == "320" and props["hop_length"] == "160"

    enhancer = Enhancer.from_checkpoint(checkpoint)
    noisy = 0.1 * torch.randn(3, 12345)  # another batch size and length than the export's
    onnx_enhancer = OnnxEnhancer(enhancer, path)
    with torch.no_grad():
        reference = enhancer(noisy)
    assert (onnx_enhancer(noisy) - reference).abs().max() <= 1e-4
    streamed = onnx_enhancer.streaming(batch=3).enhance(noisy)
    assert (streamed - reference).abs().max() <= 1e-4

    with pytest.raises(ConfigError, match="overwrite=true"):
        run(_config("export", ckpt=str(checkpoint), output=str(path)))


@pytest.mark.parametrize("output", OUTPUTS)
def test_every_output_exports_graphs_that_onnxruntime_runs_like_pytorch(output, tmp_path):
    import onnx

    from crn_lightning.onnx_export import export
    from crn_lightning.onnx_runtime import OnnxEnhancer, check

    torch.manual_seed(0)
    stft = STFT(320, 160)
    network = CRN(stft.n_freqs, channels=(4, 8, 8, 16, 16), lstm_hidden=32, output=output)
    enhancer = Enhancer(network, stft, compression=0.5)
    enhancer.train()  # non-trivial batch-norm statistics
    with torch.no_grad():
        enhancer(0.1 * torch.randn(4, SR))
    enhancer.eval()
    path = tmp_path / "model.onnx"
    assert export(enhancer, path, step=True) == [path, tmp_path / "model.step.onnx"]
    differences = check(enhancer, path, step=True, seconds=1.0)
    graph_output = "spectrum" if enhancer.complex else "magnitude"
    assert set(differences) == {graph_output, "waveform", "streamed_waveform"}
    assert max(differences.values()) <= 1e-4, differences

    graph = onnx.load(str(path))
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["model_output"] == output
    names = ([i.name for i in graph.graph.input], [o.name for o in graph.graph.output])
    if enhancer.complex:  # real and imaginary parts as channels; the output's own phase
        assert names == (["noisy_spectrum"], ["enhanced_spectrum"])
        assert props["input"].startswith("noisy_spectrum (batch, 2 = real/imaginary")
        assert props["phase"] == "the output's own"
    else:
        assert names == (["noisy_magnitude"], ["enhanced_magnitude"])
        assert props["phase"] == "resynthesise with the noisy phase"

    noisy = 0.1 * torch.randn(3, 12345)  # another batch size and length than the export's
    onnx_enhancer = OnnxEnhancer(enhancer, path)
    with torch.no_grad():
        reference = enhancer(noisy)
    assert (onnx_enhancer(noisy) - reference).abs().max() <= 1e-4
    assert (onnx_enhancer.streaming(batch=3).enhance(noisy) - reference).abs().max() <= 1e-4
