"""The embedded default corpus: a generated stand-in for CMU ARCTIC speech and DEMAND noise.

Nothing can be downloaded where this project runs, so on first use :func:`ensure_embedded_corpus`
synthesises two "speakers" with eSpeak NG and five noise environments, and writes them in the
real corpora's directory layouts, so that the loader that reads the real data reads this too::

    root/cmu_arctic/cmu_us_bdl_arctic/wav/arctic_a0001.wav ...   (male stand-in)
    root/cmu_arctic/cmu_us_bdl_arctic/etc/txt.done.data
    root/cmu_arctic/cmu_us_slt_arctic/...                      (female stand-in)
    root/DEMAND/<ENV>/ch01.wav                                 (PRESTO, DLIVING, ...)
    root/manifest.json                                         (spec, sizes, sha256s, texts)

Later calls verify the files against the manifest (sizes and sha256s: a fraction of a second
for the default corpus) and regenerate only when something is missing, corrupted or made for a
different spec. The manifest is written last, so an interrupted generation never passes.

Generation is deterministic from the spec. eSpeak NG keeps state between utterances (pitch
flutter, gain control), so its output depends on what the process spoke before: the work is
therefore split into two fixed shards, each run in order in a fresh spawned process (both at
once, which also uses two cores). As with any spawned process, a script that calls
:func:`ensure_embedded_corpus` must do so under ``if __name__ == "__main__":``.
The default corpus (408 utterances, 5 x 5 min of noise, ~85 MB) takes ~20 s on two cores.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from crn_lightning.audio import resample
from crn_lightning.data.builds import (
    BuiltCorpus,
    CorpusLayout,
    ensure_built,
    file_records,
    seeded_rng,
)
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.data.noise_synth import write_generated_noise
from crn_lightning.data.sentences import generate_sentences
from crn_lightning.errors import ConfigError

LOGGER = logging.getLogger(__name__)

# Bump when a change to the generators changes the audio, so that old corpora are rebuilt.
FORMAT_VERSION = 1

# eSpeak NG voices standing in for ARCTIC's bdl (US male) and slt (US female), several
# variants each, picked at random per utterance. Median F0 of these variants measured at the
# default pitch: m1 95 Hz, m3 106 Hz, m4 95 Hz; f1 181 Hz, f2 197 Hz, f4 181 Hz.
SPEAKERS: dict[str, tuple[str, ...]] = {
    "bdl": ("en-us+m3", "en-us+m1", "en-us+m4"),
    "slt": ("en-us+f1", "en-us+f2", "en-us+f4"),
}
ENVIRONMENTS = ("PRESTO", "DLIVING", "DWASHING", "NFIELD", "NPARK")

_LAYOUT = CorpusLayout(
    "embedded", "embedded corpus", "embedded corpus generator", ("cmu_arctic", "DEMAND")
)
_RATE_WPM = (155, 196)
_PITCH = (40, 61)
_SILENCE_SECONDS = (0.1, 0.3)  # kept before and after the speech, as in ARCTIC's recordings
_NOISE_FLOOR_RMS = 10.0 ** (-75.0 / 20.0)  # a quiet studio: silences are not digital zero
_ATTEMPTS = 4
# The work split over two processes, balanced for the default spec (~11 s of work each). Fixed,
# not derived from the core count, because the eSpeak NG output depends on what the same
# process spoke before: the same shards give the same audio on any machine.
_SHARDS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("speaker", "bdl"), ("speaker", "slt"), ("noise", "PRESTO"), ("noise", "DWASHING")),
    (("noise", "DLIVING"), ("noise", "NFIELD"), ("noise", "NPARK")),
)


@dataclass(frozen=True)
class EmbeddedCorpusSpec:
    """What to generate; part of the manifest, so any change triggers a rebuild."""

    seed: int = 0
    utterances_per_speaker: int = 204  # 2 speakers -> 408 >= the report's 407
    min_seconds: float = 1.5
    max_seconds: float = 4.9  # the project's ARCTIC filter keeps utterances shorter than 5 s
    noise_seconds: float = 300.0  # DEMAND recordings are 5 min long
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"data.embedded.seed must be >= 0, got {self.seed}")
        if self.utterances_per_speaker < 1:
            raise ConfigError(f"data.embedded.utterances_per_speaker must be >= 1, got {self}")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ConfigError(f"data.embedded: need 0 < min_seconds < max_seconds, got {self}")
        if self.noise_seconds <= 0:
            raise ConfigError(f"data.embedded.noise_seconds must be > 0, got {self}")
        if self.sample_rate < 8000:
            raise ConfigError(f"data.embedded.sample_rate must be >= 8000, got {self}")


@dataclass(frozen=True)
class EmbeddedCorpus(BuiltCorpus):
    """Where a verified embedded corpus lies."""


def ensure_embedded_corpus(
    root: Path, spec: EmbeddedCorpusSpec = EmbeddedCorpusSpec()
) -> EmbeddedCorpus:
    """Return the embedded corpus under ``root``, generating it first if it is not valid there."""
    root = Path(root)
    corpus = EmbeddedCorpus(
        arctic_root=root / "cmu_arctic",
        demand_root=root / "DEMAND",
        speakers=tuple(SPEAKERS),
        environments=ENVIRONMENTS,
        manifest_path=root / _LAYOUT.manifest_name,
    )
    return ensure_built(
        root,
        _LAYOUT,
        _recipe(spec),
        lambda build: _generate(build, spec),
        lambda: corpus,
        f"generating it ({spec})",
        LOGGER,
    )


def _recipe(spec: EmbeddedCorpusSpec) -> dict[str, Any]:
    """Everything the audio depends on, as stored in (and compared with) the manifest."""
    return {
        "format_version": FORMAT_VERSION,
        "spec": dataclasses.asdict(spec),
        "speakers": {name: list(voices) for name, voices in SPEAKERS.items()},
        "environments": list(ENVIRONMENTS),
    }


def _arctic_id(index: int) -> str:
    """ARCTIC numbers its prompts arctic_a0001..arctic_a0593, then arctic_b0001..arctic_b0539."""
    return f"arctic_a{index + 1:04d}" if index < 593 else f"arctic_b{index - 592:04d}"


def _generate(build: Path, spec: EmbeddedCorpusSpec) -> dict[str, Any]:
    """Write every file under ``build`` and return the manifest describing them."""
    for name in _LAYOUT.top_folders:
        (build / name).mkdir()
        (build / name / _LAYOUT.marker).write_text("generated by crn_lightning.data.embedded\n")
    # The speakers read the same prompts, in the same order, as ARCTIC's speakers do; the spare
    # prompts cover the rare sentence that cannot be fitted into the duration bounds.
    prompts = generate_sentences(spec.utterances_per_speaker * 6 // 5 + 10, spec.seed)
    # Each shard runs in a fresh process of its own (see the module docstring), all at once.
    context = multiprocessing.get_context("spawn")
    executors = [ProcessPoolExecutor(1, mp_context=context) for _ in _SHARDS]
    try:
        jobs = [
            executor.submit(_run_shard, str(build), shard, prompts, spec)
            for executor, shard in zip(executors, _SHARDS, strict=True)
        ]
        results = [result for job in jobs for result in job.result()]
    finally:
        for executor in executors:
            executor.shutdown(cancel_futures=True)
    utterances: list[dict[str, Any]] = []
    for kind, name, records, seconds in results:
        LOGGER.info("%s %s generated in %.1f s", kind, name, seconds)
        utterances.extend(records)
    files = file_records(build, skip_names=(_LAYOUT.marker,))
    return {**_recipe(spec), "files": files, "utterances": utterances}


def _run_shard(
    build: str, shard: tuple[tuple[str, str], ...], prompts: list[str], spec: EmbeddedCorpusSpec
) -> list[tuple[str, str, list[dict[str, Any]], float]]:
    """Run a shard's tasks in order: (kind, name, utterance records, seconds) for each."""
    # One thread per shard process: the shards already share out the cores, and oversubscribed
    # torch threads make the many small resampling calls several times slower.
    torch.set_num_threads(1)
    results = []
    for kind, name in shard:
        started = time.perf_counter()
        if kind == "speaker":
            records = _write_speaker(build, name, prompts, spec)
        else:
            _write_noise(build, name, spec)
            records = []
        results.append((kind, name, records, time.perf_counter() - started))
    return results


def _write_noise(build: str, environment: str, spec: EmbeddedCorpusSpec) -> None:
    folder = Path(build) / "DEMAND" / environment
    write_generated_noise(folder, environment, spec.noise_seconds, spec.sample_rate, spec.seed)


def _write_speaker(
    build: str, speaker: str, prompts: list[str], spec: EmbeddedCorpusSpec
) -> list[dict[str, Any]]:
    synth = EspeakSynthesizer()
    rng = seeded_rng(spec.seed, f"speaker/{speaker}")
    folder = Path(build) / "cmu_arctic" / f"cmu_us_{speaker}_arctic"
    (folder / "wav").mkdir(parents=True)
    (folder / "etc").mkdir()
    records: list[dict[str, Any]] = []
    for index, text in enumerate(prompts):
        if len(records) == spec.utterances_per_speaker:
            break
        voice = SPEAKERS[speaker][int(rng.integers(len(SPEAKERS[speaker])))]
        rate_wpm, pitch = int(rng.integers(*_RATE_WPM)), int(rng.integers(*_PITCH))
        for _ in range(_ATTEMPTS):
            audio = _utterance(synth, text, voice, rate_wpm, pitch, spec, rng)
            seconds = len(audio) / spec.sample_rate
            if spec.min_seconds <= seconds <= spec.max_seconds:
                break
            # Speak faster or slower to fit the bounds, like a reader asked to.
            rate_wpm = int(
                np.clip(rate_wpm * (1.15 if seconds > spec.max_seconds else 0.85), 80, 400)
            )
        else:
            continue  # ARCTIC, too, has prompts that the project's duration filter drops
        utterance_id = _arctic_id(index)
        path = folder / "wav" / f"{utterance_id}.wav"
        soundfile.write(path, audio, spec.sample_rate, subtype="PCM_16")
        records.append(
            {
                "speaker": speaker,
                "id": utterance_id,
                "path": path.relative_to(build).as_posix(),
                "text": text,
                "voice": voice,
                "rate_wpm": rate_wpm,
                "pitch": pitch,
                "seconds": len(audio) / spec.sample_rate,
            }
        )
    if len(records) < spec.utterances_per_speaker:
        raise RuntimeError(
            f"only {len(records)} of {spec.utterances_per_speaker} utterances for {speaker} fit "
            f"in [{spec.min_seconds}, {spec.max_seconds}] s"
        )
    lines = [f'( {record["id"]} "{record["text"]}" )\n' for record in records]
    (folder / "etc" / "txt.done.data").write_text("".join(lines))
    return records


def _utterance(
    synth: EspeakSynthesizer,
    text: str,
    voice: str,
    rate_wpm: int,
    pitch: int,
    spec: EmbeddedCorpusSpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """Speak ``text`` and shape it like an ARCTIC recording: silences, level, noise floor."""
    speech = resample(
        synth.synthesize(text, voice, rate_wpm=rate_wpm, pitch=pitch),
        synth.sample_rate,
        spec.sample_rate,
    )
    active = np.flatnonzero(np.abs(speech) > 0.01 * np.max(np.abs(speech)))
    speech = speech[active[0] : active[-1] + 1]
    lead, trail = (int(rng.uniform(*_SILENCE_SECONDS) * spec.sample_rate) for _ in range(2))
    audio = np.concatenate(
        [np.zeros(lead), speech * (rng.uniform(0.5, 0.9) / np.max(np.abs(speech))), np.zeros(trail)]
    )
    audio += rng.normal(0.0, _NOISE_FLOOR_RMS, len(audio))
    return audio.astype(np.float32)
