"""The offline corpus builder against tiny .deb packages served by a fake apt-get (no network)."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from crn_lightning.data import offline
from crn_lightning.data.builds import sha256_file
from crn_lightning.data.corpora import find_arctic, find_demand
from crn_lightning.data.offline import (
    NoiseEnvironment,
    NoiseLayer,
    NoisePart,
    OfflineCorpusSpec,
    SpeechSource,
    assess_speech,
    ensure_offline_corpus,
)
from crn_lightning.data.packages import (
    PackageError,
    PackageManagerUnavailable,
    extract_deb,
    fetch_package,
)

RATE = 22050  # like the game packages: the builder resamples to 16 kHz
COPYRIGHT = (
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    "Files: *\nCopyright: 2020 Someone\nLicense: GPL-2+\n"
)


def _speech(seed: int, seconds: float = 1.5) -> np.ndarray:
    """Speech-like: voiced syllables (harmonics of a gliding F0) between pauses at -80 dB."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 110 + 40 * rng.random() + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.random()), 0, None) ** 2
    envelope = syllables * (t > 0.2) * (t < seconds - 0.2)
    audio = 0.5 * voiced * envelope / np.max(np.abs(voiced)) + rng.normal(0, 1e-4, len(t))
    return audio.astype(np.float32)


def _write(folder: Path, name: str, audio: np.ndarray, rate: int = RATE) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(folder / name, audio, rate, format="OGG" if name.endswith(".ogg") else "WAV")


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n"
        out.write(header.encode() + data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


def _tar_xz(tree: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as archive:
        archive.add(tree, arcname=".")
    return out.getvalue()


def _make_deb(repo: Path, name: str, version: str, tree: Path, data: bool = True) -> Path:
    """A real .deb of the files under ``tree``, as ``repo/<name>_<version>_all.deb``."""
    control_dir = tree.parent / f"{name}-control"
    control_dir.mkdir()
    (control_dir / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nDescription: test\n"
    )
    doc = tree / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True, exist_ok=True)
    (doc / "copyright").write_text(COPYRIGHT)
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", _tar_xz(control_dir))]
    if data:
        members.append(("data.tar.xz", _tar_xz(tree)))
    deb = repo / f"{name}_{version.replace(':', '%3a')}_all.deb"
    deb.write_bytes(_ar(members))
    return deb


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake apt-get first on PATH: ``download NAME`` copies repo/NAME_*.deb into the cwd."""
    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    repo.mkdir()
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = download ] || exit 2\n'
        f'for deb in "{repo}/$2"_*.deb; do\n'
        '  [ -f "$deb" ] || { echo "E: Unable to locate package $2" >&2; exit 100; }\n'
        '  cp "$deb" .\n'
        "done\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return repo


def _speech_package(repo: Path, tmp_path: Path) -> None:
    """Two voices (a, b) of four clean clips each, plus a clipped, a noisy and a duplicate."""
    tree = tmp_path / "speech-tree"
    base = tree / "usr" / "share" / "talk"
    for voice in "ab":
        for index in range(4):
            _write(base, f"{voice}/{index}.ogg", _speech(10 * ord(voice) + index))
    _write(base, "a/clipped.ogg", np.clip(4.0 * _speech(1), -1.0, 1.0))
    noisy = _speech(2) + np.random.default_rng(3).normal(0, 0.05, len(_speech(2)))
    _write(base, "b/noisy.ogg", noisy.astype(np.float32))
    shutil.copyfile(base / "a" / "0.ogg", base / "b" / "copy.ogg")
    _write(base, "b/short.ogg", _speech(4, seconds=0.7))
    _make_deb(repo, "talk-data", "1:2.0-3", tree)


def _noise_package(repo: Path, tmp_path: Path) -> None:
    tree = tmp_path / "noise-tree"
    rng = np.random.default_rng(5)
    base = tree / "usr" / "share" / "sfx"
    for index in range(3):  # an engine-like hum with pauses the builder cuts out
        t = np.arange(2 * RATE) / RATE
        hum = 0.3 * np.sin(2 * np.pi * (60 + 20 * index) * t) + 0.05 * rng.normal(size=len(t))
        hum[RATE // 2 : RATE] = 0.0
        _write(base, f"hum{index}.wav", hum.astype(np.float32))
    for index in range(4):  # key clicks
        click = rng.normal(size=400) * np.exp(-np.arange(400) / 60.0)
        _write(base, f"keys/{index}-0.wav", (0.5 * click).astype(np.float32), 44100)
    _make_deb(repo, "sfx-data", "0.9", tree)


def _spec(**overrides: object) -> OfflineCorpusSpec:
    speech = (SpeechSource("talk-data", "talk", "usr/share/talk/*/*.ogg", r"/(?P<voice>[ab])/"),)
    hum = NoisePart("sfx-data", ("usr/share/sfx/*.wav",))
    noise = (
        NoiseEnvironment("HUM", (NoiseLayer("concatenate", (hum,)),)),
        NoiseEnvironment(
            "KEYS",
            (
                NoiseLayer("typing", (NoisePart("sfx-data", ("usr/share/sfx/keys/*.wav",)),)),
                NoiseLayer("concatenate", (hum,), -20.0),
            ),
        ),
        NoiseEnvironment(
            "BABBLE",
            (NoiseLayer("babble", (NoisePart("talk-data", ("usr/share/talk/a/*.ogg",)),)),),
        ),
    )
    fields = dict(
        speech=speech,
        noise=noise,
        min_seconds=0.8,
        max_seconds=3.0,
        min_speaker_utterances=3,
        noise_seconds=3.0,
        babble_talkers=2,
    )
    return OfflineCorpusSpec(**{**fields, **overrides})


def test_builds_a_verified_corpus_in_the_real_layout_and_reuses_it(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _speech_package(fake_apt, tmp_path)
    _noise_package(fake_apt, tmp_path)
    root = tmp_path / "corpus"
    corpus = ensure_offline_corpus(root, _spec())

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
    assert ensure_offline_corpus(root, _spec()) == corpus
    assert corpus.manifest_path.stat().st_mtime_ns == before

    # A damaged file is noticed; the rebuild needs apt-get, whose absence is the fallback cue.
    damaged = files["talk_b"][0]
    damaged.write_bytes(damaged.read_bytes()[:-2] + b"\0\1")
    with pytest.raises(PackageManagerUnavailable, match="apt-get is not on PATH"):
        ensure_offline_corpus(root, _spec())


def test_quality_filter_rejects_clipped_noisy_silent_and_short_clips() -> None:
    spec = _spec()
    clean = _speech(7)[None]
    clip, verdict = assess_speech(clean, RATE, spec)
    assert verdict == "kept" and clip is not None
    # Trimmed to the speech plus the margin: the 0.2 s pauses at each end shrink to ~0.1 s.
    assert 1.1 * 16000 <= len(clip) <= 1.4 * 16000
    assert assess_speech(np.clip(4.0 * clean, -1, 1), RATE, spec) == (None, "clipped")
    noisy = clean + np.random.default_rng(0).normal(0, 0.05, clean.shape).astype(np.float32)
    assert assess_speech(noisy, RATE, spec) == (None, "noisy")
    assert assess_speech(1e-3 * clean, RATE, spec) == (None, "silent")
    assert assess_speech(_speech(8, seconds=0.6)[None], RATE, spec) == (None, "too short")
    long = np.concatenate([_speech(9), _speech(10), _speech(11)])[None]
    assert assess_speech(long, RATE, spec) == (None, "too long")


@pytest.mark.parametrize("use_dpkg", [False, True])
def test_fetch_unpacks_with_and_without_dpkg_deb(
    fake_apt: Path, tmp_path: Path, use_dpkg: bool
) -> None:
    if use_dpkg and shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed here")
    _noise_package(fake_apt, tmp_path)
    package = fetch_package("sfx-data", tmp_path / "work", use_dpkg=use_dpkg)
    assert (package.name, package.version) == ("sfx-data", "0.9")
    assert soundfile.info(str(package.root / "usr/share/sfx/hum0.wav")).duration == 2.0
    assert len(list((package.root / "usr/share/sfx/keys").glob("*.wav"))) == 4


def test_unknown_package_or_no_apt_get_raise_the_fallback_error(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "corpus"
    with pytest.raises(PackageManagerUnavailable, match="Unable to locate package talk-data"):
        ensure_offline_corpus(root, _spec())
    assert sorted(p.name for p in root.iterdir()) == [".offline.lock"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PackageManagerUnavailable, match="apt-get is not on PATH"):
        ensure_offline_corpus(root, _spec())


def test_corrupt_or_incomplete_package_stops_naming_it_and_leaves_nothing(
    fake_apt: Path, tmp_path: Path
) -> None:
    _speech_package(fake_apt, tmp_path)
    _noise_package(fake_apt, tmp_path)
    deb = next(fake_apt.glob("sfx-data_*.deb"))
    deb.write_bytes(deb.read_bytes()[: len(deb.read_bytes()) // 2])  # a truncated download
    root = tmp_path / "corpus"
    with pytest.raises(PackageError, match="package sfx-data") as caught:
        ensure_offline_corpus(root, _spec())
    assert not isinstance(caught.value, PackageManagerUnavailable)
    # The speech package was fine and already processed: none of it is left behind.
    assert sorted(p.name for p in root.iterdir()) == [".offline.lock"]

    # A .deb without its data.tar member, read without dpkg-deb.
    tree = tmp_path / "empty-tree"
    tree.mkdir()
    broken = _make_deb(tmp_path, "hollow", "1.0", tree, data=False)
    with pytest.raises(PackageError, match="package hollow: the archive has no data.tar"):
        extract_deb(broken, tmp_path / "out", "hollow", use_dpkg=False)


def test_a_corpus_built_for_another_spec_is_rebuilt(fake_apt: Path, tmp_path: Path) -> None:
    _speech_package(fake_apt, tmp_path)
    _noise_package(fake_apt, tmp_path)
    root = tmp_path / "corpus"
    ensure_offline_corpus(root, _spec())
    rebuilt = ensure_offline_corpus(root, _spec(noise_seconds=2.0))
    audio, _ = soundfile.read(rebuilt.demand_root / "HUM" / "ch01.wav")
    assert len(audio) == 32000
    assert not list(root.glob(".offline-build-*"))


def test_default_spec_names_every_package_once() -> None:
    packages = OfflineCorpusSpec().packages()
    assert len(packages) == len(set(packages))
    assert {"fillets-ng-data-cs", "klettres-data", "tuxpaint-stamps-default"} <= set(packages)
    assert "fillets-ng-data-nl" in packages  # babble: voices that are not speech speakers
    speech = {s.package for s in offline.DEFAULT_SPEECH}
    babble = {
        part.package
        for env in offline.DEFAULT_NOISE
        for layer in env.layers
        for part in layer.parts
        if layer.method == "babble"
    }
    assert not speech & babble
