"""The offline corpus builder against tiny .deb packages served by a fake apt-get (no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from fake_debs import (
    COPYRIGHT,
    FESTVOX_LABELS,
    RATE,
    make_deb,
    noise_package,
    speech_like,
    speech_package,
    tiny_spec,
    write_festvox_voice,
)

from crn_lightning.data.builds import seeded_rng, sha256_file
from crn_lightning.data.corpora import find_arctic, find_demand
from crn_lightning.data.noise_synth import ENVIRONMENT_GENERATORS
from crn_lightning.data.offline import ensure_offline_corpus
from crn_lightning.data.offline_spec import (
    DEFAULT_NOISE,
    DEFAULT_SPEECH,
    NoiseEnvironment,
    NoiseLayer,
    NoisePart,
    OfflineCorpusSpec,
    SpeechSource,
)
from crn_lightning.data.offline_speech import festvox_pauses, pieces_between_pauses
from crn_lightning.data.packages import (
    PackageError,
    PackageManagerUnavailable,
    extract_deb,
    fetch_package,
)
from crn_lightning.data.speech_quality import assess_speech
from crn_lightning.errors import ConfigError


def test_builds_a_verified_corpus_in_the_real_layout_and_reuses_it(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speech_package(fake_apt, tmp_path)
    noise_package(fake_apt, tmp_path)
    root = tmp_path / "corpus"
    corpus = ensure_offline_corpus(root, tiny_spec())

    assert corpus.speakers == ("talk_a", "talk_b")
    assert corpus.environments == ("HUM", "KEYS", "BABBLE")
    files = find_arctic(corpus.arctic_root, corpus.speakers)  # the data module's own discovery
    assert [len(files[s]) for s in corpus.speakers] == [4, 4]
    for path in files["talk_a"]:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.8 <= info.duration <= 3.0
    for env, path in find_demand(corpus.demand_root, corpus.environments, 1).items():
        audio, rate = soundfile.read(path)
        assert rate == 16000 and len(audio) == 48000, env
        assert np.sqrt(np.mean(audio**2)) > 0.01, env
        if env != "BABBLE":  # two test talkers may both pause at once: only with beds
            # Silent stretches are cut out (and the typing has a bed): no 0.25 s of silence.
            frames = audio[: len(audio) // 4000 * 4000].reshape(-1, 4000)
            assert np.sqrt(np.mean(frames**2, axis=1)).min() > 1e-3, env

    manifest = json.loads(corpus.manifest_path.read_text())
    talk = next(s for s in corpus.sources if s["package"] == "talk-data")
    assert talk["version"] == "1:2.0-3"
    assert talk["deb_sha256"] == sha256_file(fake_apt / "talk-data_1%3a2.0-3_all.deb")
    assert talk["licenses"] == ["GPL-2+"]
    filters = talk["speech"]["talk"]["filters"]
    assert filters == {"clipped": 1, "noisy": 1, "duplicate": 1, "too short": 1, "kept": 8}
    assert talk["speech"]["talk"]["files_kept"] == 8
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    on_disk = [p for p in root.rglob("*") if p.is_file() and p.parent != root]
    on_disk = [p for p in on_disk if p.name != ".offline-corpus"]
    assert sorted(listed) == sorted(p.relative_to(root).as_posix() for p in on_disk)
    assert all(listed[p.relative_to(root).as_posix()] == sha256_file(p) for p in on_disk)
    assert (root / "licenses" / "talk-data.copyright").read_text() == COPYRIGHT
    assert not list(root.glob(".offline-build-*"))

    # A valid corpus is reused without apt-get (offline after the first build).
    monkeypatch.setenv("PATH", "/nonexistent")
    before = corpus.manifest_path.stat().st_mtime_ns
    assert ensure_offline_corpus(root, tiny_spec()) == corpus
    assert corpus.manifest_path.stat().st_mtime_ns == before

    # A damaged file is noticed; the rebuild needs apt-get, whose absence is the fallback cue.
    damaged = files["talk_b"][0]
    damaged.write_bytes(damaged.read_bytes()[:-2] + b"\0\1")
    with pytest.raises(PackageManagerUnavailable, match="apt-get is not on PATH"):
        ensure_offline_corpus(root, tiny_spec())


def test_quality_filter_rejects_clipped_noisy_silent_and_short_clips() -> None:
    spec = tiny_spec()
    clean = speech_like(7)[None]
    clip, verdict = assess_speech(clean, RATE, spec)
    assert verdict == "kept" and clip is not None
    # Trimmed to the speech plus the margin: the 0.2 s pauses at each end shrink to ~0.1 s.
    assert 1.1 * 16000 <= len(clip) <= 1.4 * 16000
    assert assess_speech(np.clip(4.0 * clean, -1, 1), RATE, spec) == (None, "clipped")
    noisy = clean + np.random.default_rng(0).normal(0, 0.05, clean.shape).astype(np.float32)
    assert assess_speech(noisy, RATE, spec) == (None, "noisy")
    assert assess_speech(1e-3 * clean, RATE, spec) == (None, "silent")
    assert assess_speech(speech_like(8, seconds=0.6)[None], RATE, spec) == (None, "too short")
    long = np.concatenate([speech_like(9), speech_like(10), speech_like(11)])[None]
    assert assess_speech(long, RATE, spec) == (None, "too long")


@pytest.mark.parametrize("use_dpkg", [False, True])
def test_fetch_unpacks_with_and_without_dpkg_deb(
    fake_apt: Path, tmp_path: Path, use_dpkg: bool
) -> None:
    if use_dpkg and shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed here")
    noise_package(fake_apt, tmp_path)
    package = fetch_package("sfx-data", tmp_path / "work", use_dpkg=use_dpkg)
    assert (package.name, package.version) == ("sfx-data", "0.9")
    assert soundfile.info(str(package.root / "usr/share/sfx/hum0.wav")).duration == 2.0
    assert len(list((package.root / "usr/share/sfx/keys").glob("*.wav"))) == 4


def test_unknown_package_or_no_apt_get_raise_the_fallback_error(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "corpus"
    with pytest.raises(PackageManagerUnavailable, match="Unable to locate package talk-data"):
        ensure_offline_corpus(root, tiny_spec())
    assert sorted(p.name for p in root.iterdir()) == [".offline.lock"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PackageManagerUnavailable, match="apt-get is not on PATH"):
        ensure_offline_corpus(root, tiny_spec())


def test_corrupt_or_incomplete_package_stops_naming_it_and_leaves_nothing(
    fake_apt: Path, tmp_path: Path
) -> None:
    speech_package(fake_apt, tmp_path)
    noise_package(fake_apt, tmp_path)
    deb = next(fake_apt.glob("sfx-data_*.deb"))
    deb.write_bytes(deb.read_bytes()[: len(deb.read_bytes()) // 2])  # a truncated download
    root = tmp_path / "corpus"
    with pytest.raises(PackageError, match="package sfx-data") as caught:
        ensure_offline_corpus(root, tiny_spec())
    assert not isinstance(caught.value, PackageManagerUnavailable)
    # The speech package was fine and already processed: none of it is left behind.
    assert sorted(p.name for p in root.iterdir()) == [".offline.lock"]

    # A .deb without its data.tar member, read without dpkg-deb.
    tree = tmp_path / "empty-tree"
    tree.mkdir()
    broken = make_deb(tmp_path, "hollow", "1.0", tree, data=False)
    with pytest.raises(PackageError, match="package hollow: the archive has no data.tar"):
        extract_deb(broken, tmp_path / "out", "hollow", use_dpkg=False)


def test_a_corpus_built_for_another_spec_is_rebuilt(fake_apt: Path, tmp_path: Path) -> None:
    speech_package(fake_apt, tmp_path)
    noise_package(fake_apt, tmp_path)
    root = tmp_path / "corpus"
    ensure_offline_corpus(root, tiny_spec())
    rebuilt = ensure_offline_corpus(root, tiny_spec(noise_seconds=2.0))
    audio, _ = soundfile.read(rebuilt.demand_root / "HUM" / "ch01.wav")
    assert len(audio) == 32000
    assert not list(root.glob(".offline-build-*"))


def test_default_spec_names_every_package_once() -> None:
    packages = OfflineCorpusSpec().packages()
    assert len(packages) == len(set(packages))
    assert {"fillets-ng-data-cs", "klettres-data", "tuxpaint-stamps-default"} <= set(packages)
    assert "fillets-ng-data-nl" in packages  # babble: voices that are not speech speakers
    speech = {s.package for s in DEFAULT_SPEECH}
    babble = {
        part.package
        for env in DEFAULT_NOISE
        for layer in env.layers
        for part in layer.parts
        if layer.method == "babble"
    }
    assert not speech & babble


def test_generated_noises_join_the_recorded_ones_as_the_embedded_corpus_makes_them(
    fake_apt: Path, tmp_path: Path
) -> None:
    speech_package(fake_apt, tmp_path)
    noise_package(fake_apt, tmp_path)
    corpus = ensure_offline_corpus(tmp_path / "corpus", tiny_spec(synthetic_noise=("NPARK",)))
    assert corpus.environments == ("HUM", "KEYS", "BABBLE", "SYNTH_NPARK")
    audio, rate = soundfile.read(corpus.demand_root / "SYNTH_NPARK" / "ch01.wav", dtype="int16")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the builder generates it
    try:
        expected = ENVIRONMENT_GENERATORS["NPARK"](3.0, 16000, seeded_rng(0, "noise/NPARK"))
    finally:
        torch.set_num_threads(threads)
    soundfile.write(tmp_path / "expected.wav", expected, 16000, subtype="PCM_16")
    written, _ = soundfile.read(tmp_path / "expected.wav", dtype="int16")
    assert rate == 16000 and np.array_equal(audio, written)
    with pytest.raises(ConfigError, match=r"synthetic_noise names \['CAFE'\]"):
        tiny_spec(synthetic_noise=("CAFE",))


def test_festvox_pauses_and_the_pieces_between_them() -> None:
    # The leading pause is no cut; the others cut at their middles.
    assert festvox_pauses(FESTVOX_LABELS) == pytest.approx([0.95, 2.25, 4.7])
    # As long as possible within [1, 2.6] s: 0-2.25, then 2.25-4.7 (2.45 s; to the end would
    # be 2.75 s), then the rest is too short (0.3 s) and left out.
    assert pieces_between_pauses([0.95, 2.25, 4.7], 5.0, 1.0, 2.6) == [(0.0, 2.25), (2.25, 4.7)]
    assert pieces_between_pauses([0.95, 2.25, 4.7], 5.0, 1.0, 3.0) == [(0.0, 2.25), (2.25, 5.0)]
    # A stretch with no pause within reach is skipped up to its next pause.
    assert pieces_between_pauses([4.0, 5.5], 7.0, 1.0, 3.0) == [(4.0, 7.0)]
    assert pieces_between_pauses([], 9.0, 1.0, 3.0) == []


def test_a_festvox_voice_is_cut_at_its_labelled_pauses(fake_apt: Path, tmp_path: Path) -> None:
    voice = tmp_path / "fv-tree" / "usr/share/festival/voices/x/v_clunits"
    write_festvox_voice(voice, 3, 50)
    soundfile.write(voice / "wav" / "unlabelled.wav", np.zeros(RATE, np.float32), RATE)
    make_deb(fake_apt, "fv-data", "1.0", tmp_path / "fv-tree")
    noise_package(fake_apt, tmp_path)
    source = SpeechSource(
        "fv-data",
        "fv",
        "usr/share/festival/voices/x/*/wav/*.wav",
        r"/(?P<voice>v)_clunits/",
        cut_at_pauses=True,
    )
    hum = NoisePart("sfx-data", ("usr/share/sfx/*.wav",))
    spec = tiny_spec(
        speech=(source,),
        noise=(NoiseEnvironment("HUM", (NoiseLayer("concatenate", (hum,)),)),),
        max_seconds=2.6,
    )
    corpus = ensure_offline_corpus(tmp_path / "corpus", spec)

    assert corpus.speakers == ("fv_v",)
    manifest = json.loads(corpus.manifest_path.read_text())
    kept = [u for u in manifest["utterances"] if u["speaker"] == "fv_v"]
    # Two pieces of each labelled file (the 0.3 s tail is left out); all within the limits.
    assert len(kept) == 6
    assert {u["source"].split("@")[1] for u in kept} == {"0.000-2.250", "2.250-4.700"}
    assert all(0.8 <= u["seconds"] <= 2.6 for u in kept)
    filters = manifest["sources"][0]["speech"]["fv"]["filters"]
    assert filters["kept"] == 6 and filters["no pause labels"] == 1
