"""The embedded stand-in corpus: eSpeak wrapper, sentences, noises, layout, cache behaviour."""

from __future__ import annotations

import itertools
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from crn_lightning.data.embedded import (
    ENVIRONMENTS,
    SPEAKERS,
    EmbeddedCorpus,
    EmbeddedCorpusSpec,
    ensure_embedded_corpus,
)
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.data.sentences import generate_sentences

TINY = EmbeddedCorpusSpec(utterances_per_speaker=3, noise_seconds=6.0)
LOGGER_NAME = "crn_lightning.data.embedded"


def median_f0(signal: np.ndarray, sample_rate: int) -> float:
    """Median autocorrelation pitch (60-400 Hz) over the loud, periodic 40 ms frames."""
    frame, estimates = int(0.04 * sample_rate), []
    low, high = int(sample_rate / 400), int(sample_rate / 60)
    for start in range(0, len(signal) - frame, frame // 2):
        chunk = signal[start : start + frame] - np.mean(signal[start : start + frame])
        if np.sqrt(np.mean(chunk**2)) < 0.05 * np.max(np.abs(signal)):
            continue
        correlation = np.correlate(chunk, chunk, "full")[frame - 1 :]
        lag = low + int(np.argmax(correlation[low:high]))
        if correlation[lag] > 0.3 * correlation[0]:
            estimates.append(sample_rate / lag)
    return float(np.median(estimates))


def checksums(root: Path) -> dict[str, str]:
    manifest = json.loads((root / "manifest.json").read_text())
    return {entry["path"]: entry["sha256"] for entry in manifest["files"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedCorpus:
    return ensure_embedded_corpus(tmp_path_factory.mktemp("embedded"), TINY)


# --- eSpeak NG --------------------------------------------------------------------------------


def test_espeak_synthesizes_distinct_voices() -> None:
    synth = EspeakSynthesizer()
    assert synth.sample_rate == 22050
    text = "The quick brown fox jumps over the lazy dog."
    male = synth.synthesize(text, "en-us+m3")
    female = synth.synthesize(text, "en-us+f3")
    for audio in (male, female):
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert 1.0 < len(audio) / synth.sample_rate < 6.0
        assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
        assert np.sqrt(np.mean(audio**2)) > 0.01
    assert median_f0(male, synth.sample_rate) < 140 < median_f0(female, synth.sample_rate)
    fast = synth.synthesize(text, "en-us+m3", rate_wpm=260)
    assert len(fast) < 0.8 * len(male)
    high = synth.synthesize(text, "en-us+m3", pitch=90)
    assert median_f0(high, synth.sample_rate) > 1.15 * median_f0(male, synth.sample_rate)


@pytest.mark.parametrize("voice", ["en-us+nosuchvariant", "xx-nosuchlanguage"])
def test_espeak_unknown_voice_is_a_clear_error(voice: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(voice.partition("+")[2] or voice))):
        EspeakSynthesizer().synthesize("Hello there.", voice)


def test_espeak_rejects_empty_text() -> None:
    with pytest.raises(ValueError, match="empty"):
        EspeakSynthesizer().synthesize("  ", "en-us")


# --- sentences --------------------------------------------------------------------------------


def test_sentences_are_deterministic_unique_and_varied() -> None:
    sentences = generate_sentences(500, seed=3)
    assert sentences == generate_sentences(500, seed=3)
    assert generate_sentences(50, seed=3) == sentences[:50]  # prefix-stable
    assert len(set(sentences)) == 500
    assert generate_sentences(500, seed=4) != sentences
    words = [len(s.split()) for s in sentences]
    assert min(words) >= 4 and max(words) <= 14
    assert sum(s.endswith("?") for s in sentences) > 25  # questions, not only statements
    assert len({s.split()[0] for s in sentences}) > 30


# --- the generated corpus ---------------------------------------------------------------------


def test_layout_and_format(corpus: EmbeddedCorpus) -> None:
    root = corpus.manifest_path.parent
    assert corpus.arctic_root == root / "cmu_arctic" and corpus.demand_root == root / "DEMAND"
    assert corpus.speakers == ("bdl", "slt") and corpus.environments == ENVIRONMENTS
    ids = [f"arctic_a000{i}" for i in (1, 2, 3)]
    expected = {"manifest.json"}
    for speaker in SPEAKERS:
        base = f"cmu_arctic/cmu_us_{speaker}_arctic"
        expected |= {f"{base}/wav/{i}.wav" for i in ids} | {f"{base}/etc/txt.done.data"}
    expected |= {f"DEMAND/{env}/ch01.wav" for env in ENVIRONMENTS}
    found = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    assert found == expected
    for path in root.rglob("*.wav"):
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")

    manifest = json.loads(corpus.manifest_path.read_text())
    assert manifest["spec"] == {
        "seed": 0,
        "utterances_per_speaker": 3,
        "min_seconds": 1.5,
        "max_seconds": 4.9,
        "noise_seconds": 6.0,
        "sample_rate": 16000,
    }
    assert {e["path"] for e in manifest["files"]} == expected - {"manifest.json"}
    for speaker, voices in SPEAKERS.items():
        records = [u for u in manifest["utterances"] if u["speaker"] == speaker]
        assert [u["id"] for u in records] == ids
        assert all(u["voice"] in voices for u in records)
        transcript = (corpus.arctic_root / f"cmu_us_{speaker}_arctic/etc/txt.done.data").read_text()
        assert transcript == "".join(f'( {u["id"]} "{u["text"]}" )\n' for u in records)


def test_speech_durations_and_speakers(corpus: EmbeddedCorpus) -> None:
    pitches: dict[str, list[float]] = {}
    for speaker in SPEAKERS:
        for path in sorted((corpus.arctic_root / f"cmu_us_{speaker}_arctic" / "wav").glob("*.wav")):
            audio, rate = soundfile.read(path)
            assert TINY.min_seconds <= len(audio) / rate <= TINY.max_seconds
            # ARCTIC-like silences: quiet (but not digital zero) 0.1-0.3 s at both ends.
            loud = np.flatnonzero(np.abs(audio) > 0.02 * np.max(np.abs(audio)))
            assert 0.08 <= loud[0] / rate <= 0.35 and 0.08 <= (len(audio) - loud[-1]) / rate <= 0.35
            assert 0 < np.std(audio[: int(0.05 * rate)]) < 1e-3
            pitches.setdefault(speaker, []).append(median_f0(audio, rate))
    assert max(pitches["bdl"]) < 140 < min(pitches["slt"])  # bdl male, slt female


def test_noises(corpus: EmbeddedCorpus) -> None:
    spectra = {}
    for env in ENVIRONMENTS:
        audio, rate = soundfile.read(corpus.demand_root / env / "ch01.wav")
        assert rate == 16000 and len(audio) == int(TINY.noise_seconds * rate)
        assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) < 0.99
        assert 0.02 < np.sqrt(np.mean(audio**2)) < 0.1
        frames = audio[: len(audio) // 512 * 512].reshape(-1, 512)
        spectra[env] = 10 * np.log10(np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, 0) + 1e-12)
    for a, b in itertools.combinations(ENVIRONMENTS, 2):
        assert np.mean(np.abs(spectra[a] - spectra[b])) > 2.0, (a, b)  # long-term spectra, dB


def test_reuse_without_regenerating(
    corpus: EmbeddedCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    root = corpus.manifest_path.parent
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")}
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert ensure_embedded_corpus(root, TINY) == corpus
    assert "verified" in caplog.text and not [
        r for r in caplog.records if r.levelno >= logging.WARNING
    ]
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")} == before


def test_deterministic_from_the_seed(corpus: EmbeddedCorpus, tmp_path: Path) -> None:
    expected = checksums(corpus.manifest_path.parent)
    ensure_embedded_corpus(tmp_path / "again", TINY)
    assert checksums(tmp_path / "again") == expected
    # A different seed, asked of an existing corpus: a different spec, so it is rebuilt.
    copy = tmp_path / "other-seed"
    shutil.copytree(corpus.manifest_path.parent, copy)
    ensure_embedded_corpus(
        copy, EmbeddedCorpusSpec(seed=1, utterances_per_speaker=3, noise_seconds=6.0)
    )
    other = checksums(copy)
    assert other.keys() == expected.keys()
    assert all(other[p] != expected[p] for p in expected if p.endswith(".wav"))


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_damage_triggers_a_rebuild(
    corpus: EmbeddedCorpus, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(corpus.manifest_path.parent, root)
    victim = root / "cmu_arctic/cmu_us_slt_arctic/wav/arctic_a0002.wav"
    if damage == "corrupt":
        with open(victim, "r+b") as handle:  # same size, different bytes
            handle.seek(1000)
            handle.write(b"\x7f" * 64)
    else:
        victim.unlink()
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        ensure_embedded_corpus(root, TINY)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "arctic_a0002.wav" in warnings[0]
    assert checksums(root) == checksums(corpus.manifest_path.parent)
    assert not list(root.glob(".embedded-build-*"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        ensure_embedded_corpus(root, TINY)
    assert "verified" in caplog.text and "generat" not in caplog.text


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "cmu_arctic" / "cmu_us_bdl_arctic").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="refusing to replace"):
        ensure_embedded_corpus(tmp_path, TINY)
    assert (tmp_path / "cmu_arctic" / "cmu_us_bdl_arctic").is_dir()
