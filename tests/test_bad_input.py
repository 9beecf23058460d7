"""Bad input files end in a clear decision before any training: skipped and counted (one bad
utterance among many), or stopped with the file named (noise, too many bad files)."""

import logging

import numpy as np
import pytest
import soundfile as sf
from test_datamodule import SR, make

from crn_lightning.audio import AudioFileError, write_audio
from crn_lightning.data.corpora import CorpusError
from crn_lightning.errors import ConfigError, UserError


def _corrupt(path):
    path.write_bytes(path.read_bytes()[:30])  # truncated inside the RIFF header


def _not_audio(path):
    path.write_text("this is not audio, only named .wav\n")


def _empty(path):
    path.write_bytes(b"")


def _no_samples(path):
    write_audio(path, np.zeros(0), SR)


def _all_zero(path):
    write_audio(path, np.zeros(SR), SR)


def _nan(path):
    audio = np.full(SR, 0.1, dtype=np.float32)
    audio[100] = np.nan
    sf.write(path, audio, SR, subtype="FLOAT")


def _stereo(path):
    sf.write(path, np.full((SR, 2), 0.1, dtype=np.float32), SR)


BAD_UTTERANCES = {
    "corrupt": (_corrupt, "not a readable audio file"),
    "not_audio": (_not_audio, "not a readable audio file"),
    "empty_file": (_empty, "not a readable audio file"),
    "no_samples": (_no_samples, "holds no samples"),
    "all_zero": (_all_zero, "silent"),
    "nan": (_nan, "NaN or infinite"),
    "stereo": (_stereo, "expected mono"),
}


@pytest.mark.parametrize("kind", sorted(BAD_UTTERANCES))
def test_a_bad_utterance_is_skipped_logged_and_counted(tiny_corpora, kind, caplog):
    arctic, demand = tiny_corpora
    spoil, reason = BAD_UTTERANCES[kind]
    bad = arctic / "cmu_us_bdl_arctic" / "wav" / "arctic_a0002.wav"
    spoil(bad)
    with caplog.at_level(logging.WARNING):
        data = make(arctic, demand)  # 11 of the 12 files are needed: the 11 good ones
    (skipped,) = data.corpus_info["skipped_files"]
    assert skipped["file"] == str(bad) and reason in skipped["reason"]
    assert f"skipped utterance {bad}" in caplog.text
    assert sum(data.corpus_info["utterances"].values()) == 11
    # The speakers stay balanced: bdl's next utterance takes the bad one's turn.
    assert all(len(d) for d in data.datasets.values())


def test_more_bad_utterances_than_allowed_stop_with_the_files_listed(tiny_corpora):
    arctic, demand = tiny_corpora
    bad = arctic / "cmu_us_slt_arctic" / "wav" / "arctic_a0003.wav"
    _nan(bad)
    with pytest.raises(
        CorpusError, match=r"1 unusable utterance files \(data.max_bad_utterances=0"
    ) as err:
        make(arctic, demand, max_bad_utterances=0)
    assert str(bad) in str(err.value) and isinstance(err.value, UserError)


def test_too_few_usable_utterances_for_the_split_is_a_clear_error(tiny_corpora):
    arctic, demand = tiny_corpora
    _all_zero(arctic / "cmu_us_slt_arctic" / "wav" / "arctic_a0001.wav")
    _all_zero(arctic / "cmu_us_slt_arctic" / "wav" / "arctic_a0004.wav")
    with pytest.raises(CorpusError, match="data.split asks for 11 utterances but only 10 usable"):
        make(arctic, demand)


@pytest.mark.parametrize("kind", ["corrupt", "nan", "stereo", "all_zero"])
def test_a_bad_noise_file_stops_naming_it(tiny_corpora, kind):
    arctic, demand = tiny_corpora
    noise = demand / "NPARK" / "ch01.wav"
    BAD_UTTERANCES[kind][0](noise)
    with pytest.raises((AudioFileError, CorpusError)) as err:
        make(arctic, demand)
    assert str(noise) in str(err.value) and isinstance(err.value, UserError)


def test_noise_shorter_than_a_clip_stops_naming_the_file(tiny_corpora):
    arctic, demand = tiny_corpora
    noise = demand / "PRESTO" / "ch01.wav"
    write_audio(noise, 0.1 * np.random.default_rng(0).standard_normal(SR * 4), SR)
    with pytest.raises(CorpusError, match=r"PRESTO/ch01.wav: its val region \(0.60 s"):
        make(arctic, demand)


def test_wrong_sample_rate_is_resampled_and_logged(tiny_corpora, caplog):
    arctic, demand = tiny_corpora
    path = arctic / "cmu_us_bdl_arctic" / "wav" / "arctic_a0001.wav"
    audio, _ = sf.read(path)
    sf.write(path, audio[::2], SR // 2)  # the same speech written at 8 kHz
    with caplog.at_level(logging.INFO):
        data = make(arctic, demand)
    assert data.corpus_info["skipped_files"] == []
    assert "resampling audio from 8000 Hz to 16000 Hz" in caplog.text


def test_an_utterance_shorter_than_the_clip_is_zero_padded(tiny_corpora):
    # The report cuts or pads speech to the clip; the tiny utterances last 1.2-2.4 s.
    data = make(
        *tiny_corpora, clip_seconds=3.0, train_clip_seconds=1.0, noise_split=[0.2, 0.4, 0.4]
    )
    clean = data.datasets["test"][0]["clean"].numpy()
    assert clean.shape == (3 * SR,) and np.all(clean[-int(0.5 * SR) :] == 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "data.batch_size must be at least 1"),
        ({"snr_db": []}, "data.snr_db is empty"),
        ({"split": {"train": 6, "val": 3}}, "data.split must give train, val and test"),
        ({"corpus": "rael"}, "data.corpus must be auto, real, offline or embedded"),
        ({"noise_split": [0.5, 0.5, 0.5]}, "data.noise_split must be 3 fractions summing to 1"),
    ],
)
def test_invalid_data_values_name_the_key(tiny_corpora, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make(*tiny_corpora, **overrides)


def test_split_larger_than_the_corpus_names_the_key(tiny_corpora):
    with pytest.raises(CorpusError, match="data.split asks for 30 utterances"):
        make(*tiny_corpora, split={"train": 20, "val": 5, "test": 5})
