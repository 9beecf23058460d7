"""data=pairs: paired clean/ + noisy/ folders, on tiny real trees the tests write; bad pairs
skipped and counted, speaker-held-out splits, aligned crops, whole utterances for evaluation,
and a real Trainer run through the train CLI."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_trees import SR, voice, write_pairs
from conftest import ROOT, assert_constructor_defaults, compose, train_tiny_crn
from hydra.utils import instantiate
from omegaconf import OmegaConf

from crn_lightning.audio import read_audio
from crn_lightning.data.corpora import CorpusError
from crn_lightning.data.pairs_datamodule import PairsDataModule
from crn_lightning.errors import ConfigError
from crn_lightning.evaluate import evaluate
from crn_lightning.stft import STFT

SPEAKERS = ("p1", "p2", "p3", "p4")


def _names(speakers=SPEAKERS, per_speaker=3) -> list[str]:
    return [f"{s}_{u:03d}.wav" for s in speakers for u in range(1, per_speaker + 1)]


def _module(root: Path, **kwargs) -> PairsDataModule:
    options = dict(root=str(root), resample_dir=str(root.parent / "resampled"), num_workers=0)
    module = PairsDataModule(STFT(320, 160), **(options | kwargs))
    module.setup()
    return module


def _names_of(module: PairsDataModule, stage: str) -> set[str]:
    dataset = module.datasets[stage]
    pairs = dataset.pairs if stage == "train" else dataset.utterances
    return {p.name for p in pairs}


def test_bad_pairs_are_skipped_and_counted_and_other_rates_resampled_once(tmp_path):
    root = tmp_path / "pairs"
    written = write_pairs(root, _names())
    sf.write(root / "clean" / "p1_lonely.wav", voice(1.0, 120), SR)  # no noisy twin
    sf.write(root / "noisy" / "p2_orphan.wav", voice(1.0, 120), SR)  # no clean twin
    sf.write(root / "clean" / "p3_long.wav", voice(1.0, 120), SR)
    sf.write(root / "noisy" / "p3_long.wav", voice(1.1, 120), SR)  # lengths differ
    sf.write(root / "clean" / "p4_rate.wav", voice(1.0, 120), SR)
    sf.write(root / "noisy" / "p4_rate.wav", voice(1.0, 120, 8000), 8000)  # rates differ
    (root / "noisy" / "p1_broken.wav").write_bytes(b"RIFF, but not audio")
    sf.write(root / "clean" / "p1_broken.wav", voice(1.0, 120), SR)
    at_48k = write_pairs(root, ["p2_048.wav"], seed=5, rate=48000)["p2_048.wav"]

    module = _module(root, val_speakers=["p2"], test_speakers=["p3"], max_bad_pairs=5)
    reasons = {Path(s["file"]).name: s["reason"] for s in module.corpus_info["skipped_files"]}
    assert set(reasons) == {"p1_lonely.wav", "p2_orphan.wav", "p3_long.wav", "p4_rate.wav",
                            "p1_broken.wav"}  # fmt: skip
    assert reasons["p1_lonely.wav"] == "no noisy/p1_lonely.wav to pair with it"
    assert reasons["p2_orphan.wav"] == "no clean/p2_orphan.wav to pair with it"
    assert "lengths differ (16000 vs 17600 samples at 16000 Hz)" in reasons["p3_long.wav"]
    assert "at 16000 Hz but" in reasons["p4_rate.wav"] and "at 8000 Hz" in reasons["p4_rate.wav"]
    assert "not a readable audio file" in reasons["p1_broken.wav"]
    assert module.corpus_info["stage_speakers"] == {
        "train": ["p1", "p4"], "val": ["p2"], "test": ["p3"]
    }  # fmt: skip
    assert _names_of(module, "val") == {"p2_001.wav", "p2_002.wav", "p2_003.wav", "p2_048.wav"}
    assert module.corpus_info["utterances"] == {"train": 6, "val": 4, "test": 3}

    # The 48 kHz pair, resampled once into data.resample_dir and read from there.
    val = module.datasets["val"]
    index = [p.name for p in val.utterances].index("p2_048.wav")
    pair = val.utterances[index]
    assert pair.clean.parent.parent == tmp_path / "resampled"
    item = val[index]
    expected = read_audio(root / "clean" / "p2_048.wav", SR)
    assert len(item["clean"]) == len(expected) == round(len(at_48k[0]) / 3)
    assert np.abs(item["clean"].numpy() - expected).max() < 1e-6
    made = pair.clean.stat().st_mtime_ns
    again = _module(root, val_speakers=["p2"], test_speakers=["p3"], max_bad_pairs=5)
    assert again.datasets["val"].utterances[index].clean == pair.clean
    assert pair.clean.stat().st_mtime_ns == made  # not resampled again

    # Whole utterances for validation, labelled with their measured SNR (5 dB bins).
    clean, noisy = written["p2_001.wav"]
    whole = val[[p.name for p in val.utterances].index("p2_001.wav")]
    assert len(whole["noisy"]) == len(noisy)
    noise = noisy - clean
    measured = 20 * np.log10(np.sqrt(np.mean(clean**2)) / np.sqrt(np.mean(noise**2)))
    assert float(whole["snr_db"]) == 5.0 * round(measured / 5.0)
    assert module.val_dataloader().batch_size == 1

    with pytest.raises(CorpusError, match=r"5 unusable pairs \(data.max_bad_pairs=4\)"):
        _module(root, val_speakers=["p2"], test_speakers=["p3"], max_bad_pairs=4)


def test_training_crops_are_aligned_spans_of_both_files(tmp_path):
    # Random 'speech' (float files): a crop is found in exactly one place of one file.
    rng = np.random.default_rng(7)
    written = {}
    for name in _names():
        clean = (0.3 * rng.standard_normal(rng.integers(SR, 2 * SR))).astype(np.float32)
        noisy = clean + (0.1 * rng.standard_normal(len(clean))).astype(np.float32)
        for kind, audio in (("clean", clean), ("noisy", noisy)):
            (tmp_path / "pairs" / kind).mkdir(parents=True, exist_ok=True)
            sf.write(tmp_path / "pairs" / kind / name, audio, SR, subtype="FLOAT")
        written[name] = (clean, noisy)
    module = _module(tmp_path / "pairs", train_clip_seconds=0.5, epoch_length=6)
    train = module.datasets["train"]
    assert len(train) == 6 and module.train_dataloader().batch_size == 16
    train_names = _names_of(module, "train")
    for index in (0, 1, 7, 1000):  # any index: fresh crops every epoch
        item = train[index]
        clean, noisy = (item[k].numpy() for k in ("clean", "noisy"))
        assert clean.shape == noisy.shape == (SR // 2,)
        found = [
            (name, start)
            for name in train_names
            for start in np.flatnonzero(written[name][0] == clean[0])
            if np.array_equal(written[name][0][start : start + len(clean)], clean)
        ]
        assert len(found) == 1
        name, start = found[0]
        assert np.array_equal(noisy, written[name][1][start : start + len(noisy)])
    assert np.array_equal(train[3]["noisy"], train[3]["noisy"])  # the index decides


def test_speakers_by_regex_and_a_test_folder_of_its_own(tmp_path, caplog):
    names = [f"session{d}/spk{s}-take{u}.flac" for d in (1, 2) for s in "ABC" for u in (1, 2)]
    write_pairs(tmp_path / "train", names)
    write_pairs(tmp_path / "test", ["spkZ-take1.flac", "spkZ-take2.flac"])
    module = _module(
        tmp_path / "train",
        test_root=str(tmp_path / "test"),
        speaker_pattern=r"spk(\w)-",
        val_speakers=["B"],
    )
    speakers = module.corpus_info["stage_speakers"]
    assert speakers == {"train": ["A", "C"], "val": ["B"], "test": ["Z"]}
    assert "session2/spkB-take1.flac" in _names_of(module, "val")
    assert module.describe("test", 0).startswith("Z spkZ-take1.flac (measured SNR ")
    write_pairs(tmp_path / "test_heard", ["spkA-take9.flac"])
    with caplog.at_level("WARNING", logger="crn_lightning.data.pairs_datamodule"):
        _module(
            tmp_path / "train",
            test_root=str(tmp_path / "test_heard"),
            speaker_pattern=r"spk(\w)-",
        )
    assert "data.test_root holds speakers of data.root too: ['A']" in caplog.text

    with pytest.raises(ConfigError, match=r"pattern='\^take' finds no speaker in 'session1/"):
        _module(tmp_path / "train", speaker_pattern="^take")
    with pytest.raises(ConfigError, match="data.test_speakers is set but so is data.test_root"):
        _module(tmp_path / "train", test_root=str(tmp_path / "test"), test_speakers=["A"])
    with pytest.raises(ConfigError, match=r"data.val_speakers names \['D'\]"):
        _module(tmp_path / "train", speaker_pattern=r"spk(\w)-", val_speakers=["D"])
    with pytest.raises(CorpusError, match=r"data.root=.*nowhere/clean is not a folder"):
        _module(tmp_path / "nowhere")


def test_constructor_defaults_are_the_shipped_config(tmp_path):
    data = compose("data=pairs", f"data.root={tmp_path}").data
    assert_constructor_defaults(data, PairsDataModule, skip={"resample_dir", "seed", "root"})
    built = instantiate(data, stft=STFT(320, 160))  # the schema's keys are the constructor's
    assert isinstance(built, PairsDataModule) and built.root == tmp_path


@pytest.mark.slow
def test_train_on_pairs_then_evaluate_the_test_pairs(tmp_path):
    write_pairs(tmp_path / "train", _names(("p1", "p2", "p3"), 4))
    write_pairs(tmp_path / "test", _names(("p9",), 2), seed=3)
    metrics = train_tiny_crn(
        tmp_path,
        "data=pairs",
        f"data.root={tmp_path / 'train'}",
        f"data.test_root={tmp_path / 'test'}",
        "data.val_speakers=[p2]",
        "data.train_clip_seconds=0.5",
        "data.batch_size=4",
        "trainer.max_epochs=2",
        "trainer.num_sanity_val_steps=0",
        "trainer.log_every_n_steps=1",
    )
    assert metrics["corpus"]["kind"] == "pairs" and metrics["steps"] == 2 * 2  # 8 pairs / 4
    assert metrics["corpus"]["stage_speakers"]["test"] == ["p9"]
    assert metrics["test"]["test/clips"] == 2 and 1.0 <= metrics["test"]["test/pesq"] <= 4.65
    assert set(metrics["test_breakdown"]["by_environment"]) == {"unlabelled noise"}

    # evaluate scores the checkpoint's own test pairs, whole, with the composite measures.
    evaluate_cfg = OmegaConf.merge(
        OmegaConf.load(ROOT / "conf" / "evaluate.yaml"),
        {"ckpt": metrics["best_checkpoint"], "metric_workers": 0},
    )
    summary = evaluate(evaluate_cfg, tmp_path / "evaluation")
    assert summary["utterances"] == 2 and summary["corpus"]["kind"] == "pairs"
    assert summary["all"]["pesq_noisy"] == pytest.approx(metrics["test"]["test/pesq_noisy"])
    assert {"csig", "cbak", "covl", "ssnr"} <= set(summary["all"])
