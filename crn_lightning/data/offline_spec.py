"""What the offline corpus is made of: speech sources, noise environments, and the spec.

Speech (default :data:`DEFAULT_SPEECH`, ~420 MB of packages):

- ``fillets-ng-data-cs``: Czech game dialogue, two main actors. Files are named
  ``<level>-<who>-<line>.ogg``; ``who`` is ``m`` (the small fish) or ``v`` (the big fish), each
  voiced by one actor throughout: speakers ``fillets_cs_m`` and ``fillets_cs_v``. The ~15 minor
  characters (some with voice effects) are left out.
- ``klettres-data``: letters and syllables read in ~20 languages: speaker ``klettres_<lang>``.
- ``tuxpaint-stamps-default``: 1-2 s descriptions of drawing stamps, ``*_desc_<lang>.ogg``
  (``*_desc.ogg``: English): speaker ``tuxpaint_<lang>``.
- ``festvox-ru``: the festival Russian voice's recordings (msu_ru_nsh_clunits): one male speaker
  reading sentences of 5-15 s in a studio, 16 kHz (little above 7 kHz), cut at the pauses of
  its phone labels into clips (``cut_at_pauses``): speaker ``festvox_ru_nsh``. The only read,
  studio speech of the packages, closest in kind to VoiceBank's and ARCTIC's.

Speaker identities: ``<source tag>_<voice tag>``, where the voice tag is taken from the file's
path by the source's ``voice_regex``. For fillets it names a character voiced by one actor (a
real identity); for klettres and tuxpaint it is the *language*, a **proxy**: each language was
recorded by one or a few volunteers, not verified per file. So a speaker-disjoint split by
these names keeps each language's volunteers on one side; two "speakers" may not be two people
only where one volunteer read two languages.

Noise (default :data:`DEFAULT_NOISE`, ~180 MB of packages; all of it game or music sound
effects, a **proxy** for DEMAND's microphone recordings of real places, and mostly recorded at
11 kHz, so it holds little above 5.5 kHz):

- ``CITY``: lincity-ng's city and industry sounds (traffic, factories, crowds, markets).
- ``ENGINE``: helicopter and jet engine loops (searchandrescue-data, scorched3d-data).
- ``KEYBOARD``: typing made of bucklespring's recorded key clicks at typing rhythm, over the
  city sounds 20 dB lower (an office by a street), so that it is not mostly silence.
- ``MUSIC``: lincity-ng's and scorched3d's music and sonic-pi's loops and ambient samples.
- ``BABBLE``: six talkers summed, each a stream of Dutch utterances from fillets-ng-data-nl; no
  speaker of it is a speech speaker, so babble never shares a voice with validation or test.

A layer's method says how its recordings become one stream (:mod:`.offline_noise`):
``concatenate`` joins their non-silent stretches, ``typing`` places key clicks at a typing
rhythm, ``babble`` sums talkers. The quality filter's thresholds are described in
:mod:`.speech_quality` and :mod:`.offline_speech`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crn_lightning.data.noise_synth import ENVIRONMENT_GENERATORS
from crn_lightning.errors import ConfigError

LAYER_METHODS = ("concatenate", "typing", "babble")
SYNTHETIC_NOISE = tuple(ENVIRONMENT_GENERATORS)
SYNTHETIC_PREFIX = "SYNTH_"


@dataclass(frozen=True)
class SpeechSource:
    """Recorded speech in a package: which files, and whose voice each one is."""

    package: str
    tag: str  # the speaker prefix: speakers are "<tag>_<voice>"
    pattern: str  # glob, relative to the unpacked package root
    voice_regex: str  # searched in the path relative to the package root; group "voice"
    default_voice: str = ""  # the voice when the regex matches without the "voice" group
    # Cut each recording at the pauses its festvox phone labels mark (``.../lab/<name>.lab``
    # beside ``.../wav/<name>.wav``) into clips of min_seconds..max_seconds, for read speech
    # whose sentences are longer than the corpus's clips (festvox voices).
    cut_at_pauses: bool = False


@dataclass(frozen=True)
class NoisePart:
    """Recordings in a package, by globs relative to the unpacked package root."""

    package: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class NoiseLayer:
    """One layer of a noise environment: the recordings of its parts, pooled, and arranged
    by ``method`` into one ``noise_seconds`` stream."""

    method: str  # one of LAYER_METHODS (see the module docstring)
    parts: tuple[NoisePart, ...]
    level_db: float = 0.0  # relative to the environment's other layers (each levelled first)


@dataclass(frozen=True)
class NoiseEnvironment:
    name: str  # in capitals, like DEMAND's (CITY, ENGINE, ...)
    layers: tuple[NoiseLayer, ...]


_LINCITY_SOUNDS = NoisePart("lincity-ng-data", ("usr/share/games/lincity-ng/sounds/*.wav",))
_SCORCHED = "usr/share/games/scorched3d/data/globalmods/none/data"

DEFAULT_SPEECH: tuple[SpeechSource, ...] = (
    SpeechSource(
        "fillets-ng-data-cs",
        "fillets_cs",
        "usr/share/games/fillets-ng/sound/*/cs/*.ogg",
        r"/cs/[^/-]+-(?P<voice>[mv])-[^/]*\.ogg$",
    ),
    SpeechSource(
        "klettres-data",
        "klettres",
        "usr/share/klettres/*/*/*.ogg",
        r"^usr/share/klettres/(?P<voice>[^/]+)/",
    ),
    SpeechSource(
        "tuxpaint-stamps-default",
        "tuxpaint",
        "usr/share/tuxpaint/stamps/**/*_desc*.ogg",
        r"_desc(?:_(?P<voice>[a-z]{2,3}(?:_[A-Z]{2})?))?\.ogg$",
        default_voice="en",
    ),
    SpeechSource(
        "festvox-ru",
        "festvox_ru",
        "usr/share/festival/voices/russian/*/wav/*.wav",
        r"/msu_ru_(?P<voice>[a-z]+)_clunits/wav/",
        cut_at_pauses=True,
    ),
)

DEFAULT_NOISE: tuple[NoiseEnvironment, ...] = (
    NoiseEnvironment("CITY", (NoiseLayer("concatenate", (_LINCITY_SOUNDS,)),)),
    NoiseEnvironment(
        "ENGINE",
        (
            NoiseLayer(
                "concatenate",
                (
                    NoisePart(
                        "searchandrescue-data",
                        (
                            "usr/share/games/searchandrescue/sounds/*engine*.wav",
                            "usr/share/games/searchandrescue/sounds/hh6*/*.wav",
                        ),
                    ),
                    NoisePart(  # apache, f16, f18, t38 and jet fly-bys, tank movement
                        "scorched3d-data",
                        (
                            f"{_SCORCHED}/wav/misc/[aft]*[0-9].wav",
                            f"{_SCORCHED}/wav/misc/jet.wav",
                            f"{_SCORCHED}/wav/movement/*.wav",
                        ),
                    ),
                ),
            ),
        ),
    ),
    NoiseEnvironment(
        "KEYBOARD",
        (
            NoiseLayer(
                "typing", (NoisePart("bucklespring-data", ("usr/share/buckle/wav/*.wav",)),)
            ),
            NoiseLayer("concatenate", (_LINCITY_SOUNDS,), level_db=-20.0),
        ),
    ),
    NoiseEnvironment(
        "MUSIC",
        (
            NoiseLayer(
                "concatenate",
                (
                    NoisePart("lincity-ng-data", ("usr/share/games/lincity-ng/music/*/*.ogg",)),
                    NoisePart("scorched3d-data", (f"{_SCORCHED}/music/*.ogg",)),
                    NoisePart(
                        "sonic-pi-samples",
                        (
                            "usr/share/sonic-pi/samples/ambi_*.flac",
                            "usr/share/sonic-pi/samples/loop_*.flac",
                        ),
                    ),
                ),
            ),
        ),
    ),
    NoiseEnvironment(
        "BABBLE",
        (
            NoiseLayer(
                "babble",
                (
                    NoisePart(
                        "fillets-ng-data-nl", ("usr/share/games/fillets-ng/sound/*/nl/*.ogg",)
                    ),
                ),
            ),
        ),
    ),
)


@dataclass(frozen=True)
class OfflineCorpusSpec:
    """What to build; part of the manifest, so any change triggers a rebuild."""

    speech: tuple[SpeechSource, ...] = DEFAULT_SPEECH
    noise: tuple[NoiseEnvironment, ...] = DEFAULT_NOISE
    min_seconds: float = 1.0
    max_seconds: float = 4.9  # the project's ARCTIC filter keeps utterances shorter than 5 s
    min_dynamic_range_db: float = 30.0
    max_clipped_fraction: float = 1e-3
    silent_peak: float = 10.0 ** (-40.0 / 20.0)
    trim_threshold_db: float = 45.0
    trim_margin_seconds: float = 0.1
    min_speaker_utterances: int = 20
    noise_seconds: float = 300.0  # DEMAND recordings are 5 min long
    crossfade_seconds: float = 0.05
    babble_talkers: int = 6
    # Generated noises added to the recorded ones (crn_lightning.data.noise_synth, the embedded
    # corpus's restaurant / living room / washing machine / field / park models), as
    # SYNTH_<name>: the packages hold no recorded cafe, kitchen, office or street.
    synthetic_noise: tuple[str, ...] = SYNTHETIC_NOISE
    sample_rate: int = 16000
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "synthetic_noise", tuple(self.synthetic_noise))
        unknown = sorted(set(self.synthetic_noise) - set(ENVIRONMENT_GENERATORS))
        if unknown:
            raise ConfigError(
                f"offline corpus: synthetic_noise names {unknown}; the generated noises are "
                f"{sorted(ENVIRONMENT_GENERATORS)}"
            )
        if not self.speech:
            raise ConfigError("offline corpus: speech sources are empty")
        if not self.noise:
            raise ConfigError("offline corpus: noise environments are empty")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ConfigError(
                "offline corpus: need 0 < min_seconds < max_seconds, got "
                f"min_seconds={self.min_seconds}, max_seconds={self.max_seconds}"
            )
        if self.noise_seconds <= 0 or self.crossfade_seconds < 0:
            raise ConfigError(
                "offline corpus: noise_seconds must be > 0 and crossfade_seconds >= 0, got "
                f"{self.noise_seconds} and {self.crossfade_seconds}"
            )
        if self.min_speaker_utterances < 1 or self.babble_talkers < 1 or self.seed < 0:
            raise ConfigError(
                "offline corpus: min_speaker_utterances and babble_talkers must be >= 1 and "
                f"seed >= 0, got {self.min_speaker_utterances}, {self.babble_talkers} and "
                f"{self.seed}"
            )
        _refuse_repeats(
            [env.name for env in self.noise] + self.synthetic_names(), "noise environment names"
        )
        for env in self.noise:
            for layer in env.layers:
                if layer.method not in LAYER_METHODS:
                    raise ConfigError(
                        f"offline corpus: noise layer method {layer.method!r} in {env.name} "
                        f"is not one of {LAYER_METHODS}"
                    )
        _refuse_repeats([source.tag for source in self.speech], "speech source tags")
        for source in self.speech:
            if "voice" not in re.compile(source.voice_regex).groupindex:
                raise ConfigError(
                    f"offline corpus: {source.tag}'s voice_regex has no 'voice' group"
                )

    def synthetic_names(self) -> list[str]:
        """The generated noises' environment (folder) names."""
        return [f"{SYNTHETIC_PREFIX}{name}" for name in self.synthetic_noise]

    def packages(self) -> list[str]:
        """Every package the corpus needs, each once, speech first."""
        names = [s.package for s in self.speech]
        names += [
            part.package for env in self.noise for layer in env.layers for part in layer.parts
        ]
        return list(dict.fromkeys(names))


def _refuse_repeats(names: list[str], what: str) -> None:
    """Names that key folders and manifest entries must be unique, or one would overwrite."""
    if len(set(names)) != len(names):
        raise ConfigError(f"offline corpus: {what} repeat: {names}")
