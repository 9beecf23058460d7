"""data=folders: any speech and noise folders (nested, mixed rates and formats) mixed on the fly
as ARCTIC/DEMAND are, on tiny trees the tests write."""

import numpy as np
import pytest
import soundfile as sf
from audio_trees import SR, write_noise, write_speech_tree
from conftest import assert_constructor_defaults, compose, train_tiny_crn
from hydra.utils import instantiate

from crn_lightning.audio import AudioFileError, read_audio
from crn_lightning.data.corpora import CorpusError
from crn_lightning.data.folders_datamodule import FoldersDataModule
from crn_lightning.errors import ConfigError
from crn_lightning.stft import STFT

# Speaker folders at three rates in three formats, in two speech folders.
SPEECH = {
    "studio/anna": (SR, ".wav"),
    "studio/ben": (44100, ".flac"),
    "phone/carl": (8000, ".ogg"),
    "phone/dora": (22050, ".wav"),
}
SMALL = dict(clip_seconds=0.5, snr_db=[0, 10], batch_size=2, num_workers=0)


@pytest.fixture
def trees(tmp_path):
    write_speech_tree(tmp_path / "speech", SPEECH)
    write_noise(tmp_path / "noise" / "street" / "busy.wav", 8.0, 48000, seed=1)
    write_noise(tmp_path / "noise" / "cafe.flac", 8.0, SR, seed=2)
    return tmp_path


def _module(tmp_path, **kwargs) -> FoldersDataModule:
    options = dict(
        speech_dirs=[str(tmp_path / "speech" / "studio"), str(tmp_path / "speech" / "phone")],
        noise_dirs=[str(tmp_path / "noise")],
        resample_dir=str(tmp_path / "resampled"),
    )
    module = FoldersDataModule(STFT(320, 160), **(options | SMALL | kwargs))
    module.setup()
    return module


def test_nested_folders_mixed_rates_and_formats_split_by_speaker(trees):
    (trees / "speech" / "phone" / "carl" / "carl_bad.wav").write_bytes(b"RIFF, not audio")
    module = _module(trees, val_speakers=["ben"], test_speakers=["carl"])
    info = module.corpus_info
    assert info["kind"] == "folders" and info["speakers"] == ["anna", "ben", "carl", "dora"]
    assert info["stage_speakers"] == {"train": ["anna", "dora"], "val": ["ben"], "test": ["carl"]}
    assert info["utterances"] == {"train": 6, "val": 3, "test": 3}  # every usable one
    assert [s["file"].endswith("carl_bad.wav") for s in info["skipped_files"]] == [True]
    assert module.environments == ["noise/cafe", "noise/street/busy"]
    assert len(module.datasets["val"]) == 3 * 2 * 2  # utterances × noises × SNRs

    # Other rates were resampled once into data.resample_dir; the utterances hold those copies.
    cached = sorted(p.name.split("-")[0] for p in (trees / "resampled" / "16000").iterdir())
    assert cached == ["ben_0", "ben_1", "ben_2", "busy", "carl_0", "carl_1", "carl_2",
                      "dora_0", "dora_1", "dora_2"]  # fmt: skip
    ben = module.datasets["val"].utterances[0]
    original = trees / "speech" / "studio" / "ben" / "ben_0.flac"
    assert ben.name == "ben_0" and np.abs(ben.audio - read_audio(original, SR)).max() < 1e-6
    times = {p: p.stat().st_mtime_ns for p in (trees / "resampled").rglob("*.wav")}
    _module(trees, val_speakers=["ben"], test_speakers=["carl"])
    assert {p: p.stat().st_mtime_ns for p in (trees / "resampled").rglob("*.wav")} == times

    # Each noise split by time: validation hears only its 70-85 % region of each file.
    cafe = read_audio(trees / "noise" / "cafe.flac", SR)
    region = module.datasets["val"].noise[0].audio
    start = round(0.7 * len(cafe))
    assert np.array_equal(region, cafe[start : start + len(region)])
    item = module.datasets["train"][5]
    assert item["noisy"].shape == item["clean"].shape == (SR // 2,)


def test_speakers_from_a_regex_on_nested_sessions_and_bad_settings(tmp_path):
    write_speech_tree(
        tmp_path / "speech",
        {
            f"{speaker}/session{s}": (SR, ".wav")
            for speaker in ("s01", "s02", "s03")
            for s in (1, 2)
        },
        utterances=2,
    )
    write_noise(tmp_path / "noise" / "hum.wav", 8.0)
    options = dict(speech_dirs=[str(tmp_path / "speech")], noise_dirs=[str(tmp_path / "noise")])
    by_parent = _module(tmp_path, **options, split_by="utterance",
                        split={"train": 4, "val": 4, "test": 4})  # fmt: skip
    assert by_parent.corpus_info["speakers"] == ["session1", "session2"]  # the parent folders
    module = _module(tmp_path, **options, speaker_pattern=r"^(s\d+)/")
    assert module.corpus_info["speakers"] == ["s01", "s02", "s03"]
    assert all(len(s) == 1 for s in module.corpus_info["stage_speakers"].values())
    assert module.corpus_info["utterances"] == {"train": 4, "val": 4, "test": 4}

    with pytest.raises(ConfigError, match=r"data.split.train=null takes every utterance"):
        _module(tmp_path, **options, split_by="utterance")
    with pytest.raises(ConfigError, match=r"data.speaker_pattern='\^x/' finds no speaker"):
        _module(tmp_path, **options, speaker_pattern="^x/")
    with pytest.raises(CorpusError, match=r"data.speech_dirs: .*nowhere is not a folder"):
        _module(tmp_path, **(options | {"speech_dirs": [str(tmp_path / "nowhere")]}))
    sf.write(tmp_path / "noise" / "stereo.wav", np.zeros((SR * 8, 2), np.float32) + 0.1, SR)
    # Policy: a bad noise file stops the run, naming it (each noise is a whole test condition).
    with pytest.raises(AudioFileError, match=r"stereo.wav: expected mono audio, found 2"):
        _module(tmp_path, **options, speaker_pattern=r"^(s\d+)/")


def test_silent_stretches_of_user_noise_are_redrawn_and_counted(tmp_path):
    write_speech_tree(tmp_path / "speech", {s: (SR, ".wav") for s in ("a", "b", "c")})
    noise = write_noise(tmp_path / "noise" / "engine.wav", 12.0)
    noise[: len(noise) // 4] = 0  # the engine is off for its first 3 s
    sf.write(tmp_path / "noise" / "engine.wav", noise, SR, subtype="FLOAT")
    module = _module(tmp_path, speech_dirs=[str(tmp_path / "speech")],
                     noise_dirs=[str(tmp_path / "noise")], resample_dir=None)  # fmt: skip
    silent = module.corpus_info["silent_noise_windows"]
    assert list(silent) == [str(tmp_path / "noise" / "engine.wav")]
    assert 0.3 < silent[str(tmp_path / "noise" / "engine.wav")]["train"] < 0.4
    for index in range(20):  # training draws never land on the silence
        item = module.datasets["train"][index]
        assert float((item["noisy"] - item["clean"]).abs().max()) > 0


def test_constructor_defaults_are_the_shipped_config(tmp_path):
    data = compose(
        "data=folders", f"data.speech_dirs=[{tmp_path}]", f"data.noise_dirs=[{tmp_path}]"
    ).data
    skip = {"speech_dirs", "noise_dirs", "resample_dir", "seed"}
    assert_constructor_defaults(data, FoldersDataModule, skip)
    assert isinstance(instantiate(data, stft=STFT(320, 160)), FoldersDataModule)


@pytest.mark.slow
def test_train_cli_on_folders(trees, tmp_path):
    metrics = train_tiny_crn(
        tmp_path,
        "data=folders",
        f"data.speech_dirs=[{trees / 'speech' / 'studio'},{trees / 'speech' / 'phone'}]",
        f"data.noise_dirs=[{trees / 'noise'}]",
        "data.clip_seconds=0.5",
        "data.snr_db=[0,10]",
        "data.epoch_length=4",
        "data.batch_size=2",
        "trainer.fast_dev_run=true",
    )
    corpus = metrics["corpus"]
    assert corpus["kind"] == "folders" and len(corpus["stage_speakers"]["test"]) == 1
    assert (tmp_path / "cache" / "resampled" / "16000").is_dir()
