"""Discovery of CMU ARCTIC and DEMAND in the layouts their archives unpack to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from crn_lightning.errors import ConfigError, UserError

ARCTIC_LAYOUT = "<arctic_root>/cmu_us_<speaker>_arctic/wav/arctic_a0001.wav"
ARCTIC_SOURCE = "http://festvox.org/cmu_arctic/packed/cmu_us_<speaker>_arctic.tar.bz2"
DEMAND_LAYOUT = "<demand_root>/<ENV>/ch01.wav"
DEMAND_SOURCE = "https://zenodo.org/records/1227121 (the <ENV>_16k.zip files)"
STAGES = ("train", "val", "test")


class CorpusError(UserError, FileNotFoundError):
    """A missing or malformed corpus; the message names the path and the layout expected."""


def arctic_wav_dir(arctic_root: Path, speaker: str) -> Path:
    return Path(arctic_root) / f"cmu_us_{speaker}_arctic" / "wav"


def demand_channel_file(demand_root: Path, environment: str, channel: int) -> Path:
    return Path(demand_root) / environment / f"ch{channel:02d}.wav"


def arctic_present(arctic_root: Path, speakers: Sequence[str]) -> bool:
    return all(any(arctic_wav_dir(arctic_root, s).glob("*.wav")) for s in speakers)


def demand_present(demand_root: Path, environments: Sequence[str], channel: int) -> bool:
    return all(demand_channel_file(demand_root, e, channel).is_file() for e in environments)


def find_arctic(arctic_root: Path, speakers: Sequence[str]) -> dict[str, list[Path]]:
    """The sorted wav files of each speaker; a clear error when a speaker is missing."""
    if not speakers:
        raise CorpusError("data.speakers is empty: name at least one ARCTIC speaker (e.g. bdl)")
    found = {}
    for speaker in speakers:
        wav_dir = arctic_wav_dir(arctic_root, speaker)
        files = sorted(wav_dir.glob("*.wav")) if wav_dir.is_dir() else []
        if not files:
            raise CorpusError(
                f"CMU ARCTIC speaker '{speaker}' not found: no wav files in {wav_dir}. "
                f"Expected layout {ARCTIC_LAYOUT}; get it from {ARCTIC_SOURCE}"
            )
        found[speaker] = files
    return found


def find_demand(demand_root: Path, environments: Sequence[str], channel: int) -> dict[str, Path]:
    """The channel file of each DEMAND environment; a clear error when one is missing."""
    if not environments:
        raise CorpusError("data.environments is empty: name at least one DEMAND environment")
    found = {}
    for env in environments:
        path = demand_channel_file(demand_root, env, channel)
        if not path.is_file():
            raise CorpusError(
                f"DEMAND environment '{env}' not found: missing {path}. "
                f"Expected layout {DEMAND_LAYOUT}; get it from {DEMAND_SOURCE}"
            )
        found[env] = path
    return found


@dataclass(frozen=True)
class UtteranceRef:
    speaker: str
    path: Path


@dataclass
class Selection:
    chosen: list[UtteranceRef]
    skipped: list[tuple[Path, str]]  # (file, why it was not used)


def _duration(path: Path) -> float | str:
    try:
        return sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        return f"not a readable audio file ({err})"


def select_utterances(
    files: Mapping[str, Sequence[Path]],
    max_seconds: float,
    total: int | None,
    seed: int,
    check: Callable[[Path], str | None] | None = None,
    max_bad: int = 0,
    first_stream: int = 0,
    size_key: str = "data.split",
) -> Selection:
    """``total`` usable utterances shorter than ``max_seconds``, balanced over speakers, seeded
    (``total`` None: every usable one).

    The report used 203 + 204 ARCTIC utterances under 5 s; speakers take turns so the
    selection stays balanced whatever the corpus size. A file that cannot be read, or that
    ``check`` rejects (it returns why), is skipped and the same speaker's next one taken; more
    than ``max_bad`` such files stop with an error listing them, since that many means
    something is wrong with the corpus rather than with a file. Speaker k (sorted) draws its
    order from stream ``first_stream + k`` of ``seed``: separate calls on other speakers pass
    another ``first_stream`` so their orders are independent. ``size_key`` names the config
    key ``total`` comes from, for the error when too few utterances are usable.
    """
    skipped: list[tuple[Path, str]] = []
    pools = []
    for offset, (speaker, paths) in enumerate(sorted(files.items()), start=first_stream):
        short = []
        for path in paths:
            duration = _duration(path)
            if isinstance(duration, str):
                skipped.append((path, duration))
            elif duration < max_seconds:
                short.append(path)
        order = np.random.default_rng([seed, offset]).permutation(len(short))
        pools.append([UtteranceRef(speaker, short[i]) for i in order])
    selected: list[UtteranceRef] = []
    turn = 0
    while (total is None or len(selected) < total) and any(pools):
        pool = pools[turn % len(pools)]
        if not pool:
            turn += 1
            continue
        ref = pool.pop(0)
        problem = check(ref.path) if check else None
        if problem:
            skipped.append((ref.path, problem))
            continue  # the same speaker's turn again: the selection stays balanced
        selected.append(ref)
        turn += 1
    refuse_too_many_bad(skipped, max_bad)
    if (total is None and not selected) or (total is not None and len(selected) < total):
        raise CorpusError(
            f"{size_key} asks for {total or 'every one of its'} utterances but only "
            f"{len(selected)} usable ones are "
            f"shorter than data.max_utterance_seconds={max_seconds} "
            f"(speakers {sorted(files)}, {len(skipped)} unusable files skipped)"
        )
    return Selection(selected, skipped)


def refuse_too_many_bad(
    skipped: Sequence[tuple[Path, str]],
    max_bad: int,
    what: str = "utterance files",
    key: str = "data.max_bad_utterances",
) -> None:
    """Stop, listing the files, when more than ``max_bad`` (config ``key``) of ``what`` were
    unusable."""
    if len(skipped) > max_bad:
        listed = "\n  ".join(f"{path}: {why}" for path, why in skipped[:10])
        raise CorpusError(
            f"{len(skipped)} unusable {what} ({key}={max_bad}):\n  "
            f"{listed}{' ...' if len(skipped) > 10 else ''}"
        )


def split_utterances(
    utterances: Sequence[UtteranceRef], sizes: Mapping[str, int], seed: int
) -> dict[str, list[UtteranceRef]]:
    """Split by utterance into the named parts (e.g. train/val/test 300/99/8), seeded."""
    if sum(sizes.values()) > len(utterances):
        raise CorpusError(
            f"data.split {dict(sizes)} needs {sum(sizes.values())} utterances, "
            f"{len(utterances)} available"
        )
    order = np.random.default_rng(seed).permutation(len(utterances))
    parts, start = {}, 0
    for name, size in sizes.items():
        parts[name] = sorted(
            (utterances[i] for i in order[start : start + size]), key=lambda u: str(u.path)
        )
        start += size
    return parts


def check_split_settings(
    split: Mapping[str, int | None],
    split_by: str,
    val_speakers: Sequence[str] | None,
    test_speakers: Sequence[str] | None,
) -> None:
    """Refuse split keys that cannot work, naming the key, before any file is read."""
    if set(split) != set(STAGES):
        raise ConfigError(f"data.split must give train, val and test sizes, got {dict(split)}")
    if split_by not in ("utterance", "speaker"):
        raise ConfigError(f"data.split_by must be utterance or speaker, got {split_by!r}")
    for stage, size in split.items():
        if size is None and split_by != "speaker":
            raise ConfigError(
                f"data.split.{stage}=null takes every utterance of the split's speakers: it "
                "needs data.split_by=speaker (with split_by=utterance give each split's size)"
            )
    for key, value in (("val_speakers", val_speakers), ("test_speakers", test_speakers)):
        if value is not None and split_by != "speaker":
            raise ConfigError(
                f"data.{key} is set but data.split_by is {split_by}: speakers are assigned to "
                "splits only with data.split_by=speaker"
            )


def assign_speakers(
    speakers: Sequence[str],
    val_speakers: Sequence[str] | None,
    test_speakers: Sequence[str] | None,
    seed: int,
    speakers_from: str = "data.speakers",
    held_out: Sequence[str] = ("val", "test"),
) -> dict[str, list[str]]:
    """The speakers of each split of a speaker-disjoint split (``data.split_by=speaker``):
    ``val_speakers`` and ``test_speakers`` as named, or where null one speaker each drawn
    (seeded) from those not named; training takes all the others. ``held_out``: the splits
    taken out of ``speakers`` (("val",) where the test set is a corpus of its own);
    ``speakers_from``: where ``speakers`` come from, for the errors."""
    named = {"val": val_speakers, "test": test_speakers}
    named = {stage: chosen for stage, chosen in named.items() if stage in held_out}
    for stage, chosen in named.items():
        if chosen is None:
            continue
        if not chosen:
            raise ConfigError(
                f"data.{stage}_speakers is empty: name at least one speaker, or null for a "
                "seeded draw of one"
            )
        unknown = sorted(set(chosen) - set(speakers))
        if unknown:
            raise ConfigError(
                f"data.{stage}_speakers names {unknown}, which are not among the corpus's "
                f"speakers {list(speakers)} ({speakers_from})"
            )
    both = sorted(set(val_speakers or ()) & set(test_speakers or ()))
    if both and len(named) == 2:
        raise ConfigError(
            f"speakers {both} are in both data.val_speakers and data.test_speakers: in a "
            "speaker-disjoint split each speaker belongs to one split"
        )
    taken = {s for chosen in named.values() for s in chosen or ()}
    free = [s for s in sorted(set(speakers)) if s not in taken]
    free = [free[i] for i in np.random.default_rng([seed, 2]).permutation(len(free))]
    stages = {stage: sorted(set(chosen)) for stage, chosen in named.items() if chosen is not None}
    for stage in held_out:
        if stage not in stages and free:
            stages[stage] = [free.pop(0)]
    if len(stages) < len(held_out) or not free:
        raise ConfigError(
            f"data.split_by=speaker needs a speaker of its own for training, "
            f"{' and '.join({'val': 'validation', 'test': 'test'}[s] for s in held_out)}, "
            f"but the corpus has {sorted(set(speakers))} ({speakers_from}) with "
            + ", ".join(f"data.{stage}_speakers={chosen}" for stage, chosen in named.items())
            + f": it needs at least {len(held_out) + 1} speakers"
        )
    return {"train": sorted(free), **{stage: stages[stage] for stage in held_out}}


def select_by_speaker(
    files: Mapping[str, Sequence[Path]],
    stage_speakers: Mapping[str, Sequence[str]],
    sizes: Mapping[str, int | None],
    max_seconds: float,
    seed: int,
    check: Callable[[Path], str | None] | None = None,
    max_bad: int = 0,
) -> tuple[dict[str, list[UtteranceRef]], list[tuple[Path, str]]]:
    """A speaker-disjoint split: each split's ``sizes[split]`` utterances (None: all usable
    ones), chosen as ``select_utterances`` does (balanced, seeded) from its own speakers' files
    only.
    Returns (utterances of each split sorted by path, unusable files skipped)."""
    parts, skipped, stream = {}, [], 0
    for stage, speakers in stage_speakers.items():
        selection = select_utterances(
            {s: files[s] for s in speakers},
            max_seconds,
            sizes[stage],
            seed,
            check,
            max_bad,
            first_stream=stream,
            size_key=f"data.split.{stage}",
        )
        stream += len(speakers)  # every speaker its own random stream
        parts[stage] = sorted(selection.chosen, key=lambda u: str(u.path))
        skipped += selection.skipped
    refuse_too_many_bad(skipped, max_bad)
    return parts, skipped
