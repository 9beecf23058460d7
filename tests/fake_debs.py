"""Tiny real .deb packages and a fake ``apt-get`` that serves them, for the offline corpus
builder's tests (no network, no root): the packages hold generated sounds, the archives are
real ``ar`` + ``tar.xz`` files that ``dpkg-deb`` and the builder's own reader unpack."""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
from pathlib import Path

import numpy as np
import soundfile

from crn_lightning.data.offline_spec import (
    NoiseEnvironment,
    NoiseLayer,
    NoisePart,
    OfflineCorpusSpec,
    SpeechSource,
)

RATE = 22050  # like the game packages: the builder resamples to 16 kHz
COPYRIGHT = (
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    "Files: *\nCopyright: 2020 Someone\nLicense: GPL-2+\n"
)


def speech_like(seed: int, seconds: float = 1.5) -> np.ndarray:
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


# A festvox label file of a 5 s sentence: pauses at 0-0.3, 0.9-1.0, 2.2-2.3 and 4.4-5.0 s.
FESTVOX_LABELS = (
    "#\n0.30 125 pau\n0.9 125 a\n1.00 125 pau\n2.2 125 b\n2.30 125 pau\n4.4 125 c\n5.0 125 pau\n"
)


def write_festvox_voice(voice: Path, files: int, seed: int) -> None:
    """``files`` 5 s sentences in a festvox voice's layout (``voice/wav/<name>.wav`` and
    ``voice/lab/<name>.lab``): speech-like stretches between the pauses of FESTVOX_LABELS."""
    for index in range(files):
        audio = np.zeros(5 * RATE, np.float32)
        for n, (start, stop) in enumerate([(0.3, 0.9), (1.0, 2.2), (2.3, 4.4)]):
            part = speech_like(seed + 3 * index + n, seconds=stop - start + 0.4)[int(0.2 * RATE) :]
            audio[int(start * RATE) : int(start * RATE) + len(part)] = part
        (voice / "wav").mkdir(parents=True, exist_ok=True)
        soundfile.write(voice / "wav" / f"x_{index}.wav", audio, RATE)
        (voice / "lab").mkdir(exist_ok=True)
        (voice / "lab" / f"x_{index}.lab").write_text(FESTVOX_LABELS)


def hum_like(seed: int, seconds: float = 2.0) -> np.ndarray:
    """An engine-like hum with a pause of 0.5 s (which the builder cuts out)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    hum = 0.3 * np.sin(2 * np.pi * (60 + 20 * seed) * t) + 0.05 * rng.normal(size=len(t))
    hum[RATE // 2 : RATE] = 0.0
    return hum.astype(np.float32)


def click_like(seed: int) -> np.ndarray:
    """A key click: a decaying noise burst of 400 samples."""
    burst = np.random.default_rng(seed).normal(size=400) * np.exp(-np.arange(400) / 60.0)
    return (0.5 * burst).astype(np.float32)


def write_sound(folder: Path, name: str, audio: np.ndarray, rate: int = RATE) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    formats = {".ogg": "OGG", ".flac": "FLAC"}
    soundfile.write(folder / name, audio, rate, format=formats.get(Path(name).suffix, "WAV"))


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


def make_deb(repo: Path, name: str, version: str, tree: Path, data: bool = True) -> Path:
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


def speech_package(repo: Path, tmp_path: Path) -> None:
    """Two voices (a, b) of four clean clips each, plus a clipped, a noisy and a duplicate."""
    tree = tmp_path / "speech-tree"
    base = tree / "usr" / "share" / "talk"
    for voice in "ab":
        for index in range(4):
            write_sound(base, f"{voice}/{index}.ogg", speech_like(10 * ord(voice) + index))
    write_sound(base, "a/clipped.ogg", np.clip(4.0 * speech_like(1), -1.0, 1.0))
    noisy = speech_like(2) + np.random.default_rng(3).normal(0, 0.05, len(speech_like(2)))
    write_sound(base, "b/noisy.ogg", noisy.astype(np.float32))
    shutil.copyfile(base / "a" / "0.ogg", base / "b" / "copy.ogg")
    write_sound(base, "b/short.ogg", speech_like(4, seconds=0.7))
    make_deb(repo, "talk-data", "1:2.0-3", tree)


def noise_package(repo: Path, tmp_path: Path) -> None:
    """Three hums and four key clicks."""
    tree = tmp_path / "noise-tree"
    base = tree / "usr" / "share" / "sfx"
    for index in range(3):
        write_sound(base, f"hum{index}.wav", hum_like(index))
    for index in range(4):
        write_sound(base, f"keys/{index}-0.wav", click_like(index), 44100)
    make_deb(repo, "sfx-data", "0.9", tree)


def tiny_spec(**overrides: object) -> OfflineCorpusSpec:
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
        synthetic_noise=(),  # the generated noises are tested on their own
    )
    return OfflineCorpusSpec(**{**fields, **overrides})


def install_fake_apt_get(bin_dir: Path, repo: Path) -> Path:
    """Write ``bin_dir/apt-get``: ``download NAME`` copies ``repo/NAME_*.deb`` into the cwd,
    and says "Unable to locate package" (as apt-get does with empty lists) when there is none."""
    bin_dir.mkdir(parents=True, exist_ok=True)
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
    return script


def default_layout_packages(repo: Path, tmp_path: Path) -> None:
    """Tiny stand-ins for the ten packages of the default spec, each at the paths the default
    spec's patterns look for: three clean clips for each of six speakers (festvox_ru_nsh: one
    piece of each of three labelled sentences; fillets_cs_m, fillets_cs_v, klettres_en,
    tuxpaint_en, tuxpaint_fr) and a few seconds of sound for each
    noise part. Build with ``data.offline.min_speaker_utterances`` <= 3."""
    fillets = "usr/share/games/fillets-ng/sound"
    trees: dict[str, list[tuple[str, np.ndarray, int]]] = {}
    trees["fillets-ng-data-cs"] = [
        (f"{fillets}/l{level}/cs/l{level}-{voice}-0.ogg", speech_like(100 + 2 * level + v), RATE)
        for level in range(3)
        for v, voice in enumerate("mv")
    ]
    trees["klettres-data"] = [
        (f"usr/share/klettres/en/sounds/{letter}.ogg", speech_like(200 + n), RATE)
        for n, letter in enumerate("abc")
    ]
    trees["tuxpaint-stamps-default"] = [
        (f"usr/share/tuxpaint/stamps/animals/{animal}_desc{suffix}.ogg", speech_like(seed), RATE)
        for seed, (animal, suffix) in enumerate(
            [(a, s) for a in ("cat", "dog", "cow") for s in ("", "_fr")], start=300
        )
    ]
    scorched = "usr/share/games/scorched3d/data/globalmods/none/data"
    trees["lincity-ng-data"] = [
        ("usr/share/games/lincity-ng/sounds/traffic.wav", hum_like(1), RATE),
        ("usr/share/games/lincity-ng/music/default/theme.ogg", hum_like(2), RATE),
    ]
    trees["searchandrescue-data"] = [
        ("usr/share/games/searchandrescue/sounds/heli_engine.wav", hum_like(3), RATE)
    ]
    trees["scorched3d-data"] = [
        (f"{scorched}/wav/misc/apache1.wav", hum_like(4), RATE),
        (f"{scorched}/music/menu.ogg", hum_like(5), RATE),
    ]
    trees["bucklespring-data"] = [
        (f"usr/share/buckle/wav/{index:02x}-0.wav", click_like(index), 44100) for index in range(4)
    ]
    trees["sonic-pi-samples"] = [("usr/share/sonic-pi/samples/ambi_drone.flac", hum_like(7), RATE)]
    trees["fillets-ng-data-nl"] = [
        (
            f"{fillets}/lvl0/nl/lvl0-x-{index}.ogg",
            speech_like(400 + index),
            RATE,
        )
        for index in range(3)
    ]
    write_festvox_voice(
        tmp_path / "festvox-ru-tree/usr/share/festival/voices/russian/msu_ru_nsh_clunits", 3, 500
    )
    make_deb(repo, "festvox-ru", "0.5-1", tmp_path / "festvox-ru-tree")
    for name, files in trees.items():
        tree = tmp_path / f"{name}-tree"
        for relative, audio, rate in files:
            write_sound(tree, relative, audio, rate)
        make_deb(repo, name, "1.0-1", tree)
