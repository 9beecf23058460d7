"""Synthetic stand-ins for the five DEMAND noise environments the project trains on.

Each generator is a function of ``(seconds, sample_rate, rng)`` that returns float32 mono audio
normalised to an RMS of about 0.05 with peaks below 0.99. The two environments with voices in
them (PRESTO, NFIELD) also use the eSpeak NG engine, whose output depends on what the process
synthesised before (see :class:`EspeakSynthesizer`); the other three are pure. They aim at
the character of the real recordings (spectral shape, stationarity, the kind of transients),
not at realism in every detail.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from crn_lightning.audio import resample
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.data.sentences import generate_sentences

TARGET_RMS = 0.05
MAX_PEAK = 0.99

NoiseGenerator = Callable[[float, int, np.random.Generator], np.ndarray]


def _normalise(signal: np.ndarray) -> np.ndarray:
    signal = signal - signal.mean()
    signal = signal * (TARGET_RMS / np.sqrt(np.mean(np.square(signal))))
    peak = np.max(np.abs(signal))
    if peak > MAX_PEAK:  # sparse, loud events: give up some RMS rather than clip
        signal = signal * (MAX_PEAK / peak)
    return signal.astype(np.float32)


def _fft_filter(
    signal: np.ndarray, sample_rate: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Zero-phase filtering by a magnitude response ``gain(frequencies_hz)``."""
    spectrum = np.fft.rfft(signal)
    spectrum *= gain(np.fft.rfftfreq(len(signal), 1.0 / sample_rate))
    return np.fft.irfft(spectrum, len(signal))


def _lowpass(cutoff_hz: float, order: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    return lambda f: 1.0 / np.sqrt(1.0 + (f / cutoff_hz) ** (2 * order))


def _highpass(cutoff_hz: float, order: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    return lambda f: 1.0 / np.sqrt(1.0 + (cutoff_hz / np.maximum(f, 1e-3)) ** (2 * order))


def _bandpass(low_hz: float, high_hz: float) -> Callable[[np.ndarray], np.ndarray]:
    low, high = _highpass(low_hz), _lowpass(high_hz)
    return lambda f: low(f) * high(f)


def _coloured_noise(
    n: int, sample_rate: int, rng: np.random.Generator, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    noise = _fft_filter(rng.standard_normal(n), sample_rate, gain)
    return noise / np.std(noise)


def _slow_random(
    n: int, sample_rate: int, rng: np.random.Generator, corner_hz: float
) -> np.ndarray:
    """A smooth zero-mean, unit-variance random process varying at about ``corner_hz``."""
    return _coloured_noise(n, sample_rate, rng, _lowpass(corner_hz, order=3))


def _room_impulse(
    sample_rate: int, rng: np.random.Generator, rt60: float, damping_hz: float = 4000.0
) -> np.ndarray:
    """Exponentially decaying noise: a diffuse late reverberation tail, highs absorbed."""
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail = _fft_filter(tail, sample_rate, _lowpass(damping_hz, order=1))
    return tail / np.sqrt(np.sum(np.square(tail)))


def _reverberate(
    signal: np.ndarray, sample_rate: int, rng: np.random.Generator, rt60: float, wet: float
) -> np.ndarray:
    impulse = _room_impulse(sample_rate, rng, rt60)
    size = 1 << int(np.ceil(np.log2(len(signal) + len(impulse) - 1)))
    tail = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(impulse, size), size)
    return (1.0 - wet) * signal + wet * tail[: len(signal)]


def _add(track: np.ndarray, start: int, event: np.ndarray) -> None:
    """Add ``event`` into ``track`` at ``start``, cutting whatever falls outside."""
    if start >= len(track) or start + len(event) <= 0:
        return
    lo, hi = max(start, 0), min(start + len(event), len(track))
    track[lo:hi] += event[lo - start : hi - start]


def _event_times(seconds: float, rng: np.random.Generator, mean_interval: float) -> np.ndarray:
    """Onsets of a Poisson process over ``[0, seconds)``."""
    count = int(seconds / mean_interval * 2 + 10)
    times = np.cumsum(rng.exponential(mean_interval, count))
    while times[-1] < seconds:
        times = np.concatenate(
            [times, times[-1] + np.cumsum(rng.exponential(mean_interval, count))]
        )
    return times[times < seconds]


def _wind(n: int, sample_rate: int, rng: np.random.Generator, gustiness: float) -> np.ndarray:
    """Low-passed noise whose level follows slow random gusts (``gustiness``: std of log level)."""
    gust = _slow_random(n, sample_rate, rng, 0.15) + 0.5 * _slow_random(n, sample_rate, rng, 0.6)
    envelope = np.exp(gustiness * gust / np.std(gust))
    rumble = _coloured_noise(n, sample_rate, rng, lambda f: _highpass(15.0)(f) * _lowpass(180.0)(f))
    # Turbulence higher up gets louder faster than the rumble as the gust strengthens.
    hiss = _coloured_noise(n, sample_rate, rng, _bandpass(300.0, 1200.0))
    return envelope * rumble + 0.1 * envelope**1.5 * hiss


_BABBLE_VOICES = (
    "en-us+m1", "en-us+f1", "en-us+m3", "en-us+f2", "en-us+m4",
    "en-us+f3", "en-us+m6", "en-us+f4", "en-us+m2", "en-us+f5",
)  # fmt: skip


def restaurant(
    seconds: float, sample_rate: int, rng: np.random.Generator, talkers: int = 7
) -> np.ndarray:
    """PRESTO: overlapping diners talking, cutlery and plate clatter, in a reverberant room."""
    n = int(round(seconds * sample_rate))
    synth = EspeakSynthesizer()
    tts_rate = synth.sample_rate
    tts_n = int(np.ceil(seconds * tts_rate))
    sentences = generate_sentences(talkers * int(seconds / 2.5 + 4), int(rng.integers(2**31)))
    next_sentence = 0
    babble = np.zeros(tts_n)
    for talker in range(talkers):
        voice = _BABBLE_VOICES[talker % len(_BABBLE_VOICES)]
        distance_gain = 10.0 ** (rng.uniform(-12.0, 0.0) / 20.0)
        position = int(rng.uniform(-3.0, 2.0) * tts_rate)  # talkers start mid-sentence
        while position < tts_n:
            speech = synth.synthesize(
                sentences[next_sentence % len(sentences)],
                voice,
                rate_wpm=int(rng.integers(150, 200)),
                pitch=int(rng.integers(30, 75)),
            )
            next_sentence += 1
            _add(babble, position, speech * distance_gain * rng.uniform(0.6, 1.0))
            position += len(speech) + int(rng.uniform(0.2, 2.0) * tts_rate)
    babble = resample(babble.astype(np.float32), tts_rate, sample_rate)[:n].astype(np.float64)
    babble /= np.std(babble)

    clatter = np.zeros(n)
    for onset in _event_times(seconds, rng, 1.3):
        for _ in range(rng.choice([1, 1, 1, 2, 3])):  # a plate set down often rattles twice
            start = int((onset + rng.uniform(0.0, 0.25)) * sample_rate)
            _add(clatter, start, _clink(sample_rate, rng) * 10.0 ** rng.uniform(-0.6, 0.5))

    murmur = _coloured_noise(n, sample_rate, rng, _bandpass(60.0, 800.0))  # ventilation
    room = babble + 1.2 * clatter + 0.15 * murmur
    room = _reverberate(room, sample_rate, rng, rt60=0.7, wet=0.5)
    # Soft furnishings and distance take the top off the spectrum.
    return _normalise(_fft_filter(room, sample_rate, _lowpass(5000.0, order=1)))


def _clink(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Cutlery on china: a click plus a few inharmonic, fast-decaying high partials."""
    length = int(0.25 * sample_rate)
    t = np.arange(length) / sample_rate
    event = np.zeros(length)
    for _ in range(int(rng.integers(3, 7))):
        frequency = rng.uniform(1500.0, min(7500.0, 0.45 * sample_rate))
        decay = rng.uniform(0.01, 0.08)
        phase = rng.uniform(0.0, 2 * np.pi)
        event += (
            rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * frequency * t + phase) * np.exp(-t / decay)
        )
    click_length = int(0.004 * sample_rate)
    event[:click_length] += 2.0 * np.diff(rng.standard_normal(click_length + 1))
    return event / np.max(np.abs(event))


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _note(
    frequency: float,
    duration: float,
    sample_rate: int,
    harmonics: np.ndarray,
    attack: float,
    decay: float,
    release: float = 0.05,
) -> np.ndarray:
    """A harmonic tone with an attack, an exponential decay and a short release."""
    t = np.arange(int((duration + release) * sample_rate)) / sample_rate
    tone = np.zeros(len(t))
    for k, amplitude in enumerate(harmonics, start=1):
        if k * frequency < 0.45 * sample_rate:
            tone += amplitude * np.sin(2 * np.pi * k * frequency * t)
    envelope = np.minimum(t / attack, 1.0) * np.exp(-t / decay)
    envelope *= np.clip((duration + release - t) / release, 0.0, 1.0)
    return tone * envelope


_MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
# Chord progressions as scale degrees (I-V-vi-IV and friends).
_PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 4), (1, 4, 0, 0))


def _degree(root: int, degree: int) -> int:
    return root + 12 * (degree // 7) + int(_MAJOR_SCALE[degree % 7])


def music(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """DLIVING (music in a living room): chords, bass, melody and drums in 8-bar sections."""
    n = int(round(seconds * sample_rate))
    track = np.zeros(n)
    beat = 60.0 / rng.uniform(84.0, 124.0)
    bar = 4 * beat
    root = int(rng.integers(48, 58))
    pad_harmonics = 1.0 / np.arange(1, 7) ** 1.5
    bass_harmonics = np.array([1.0, 0.5, 0.2])
    lead_harmonics = np.array([1.0, 0.6, 0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    time = 0.0
    while time < seconds:
        progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
        if rng.random() < 0.25:
            root += int(rng.choice([-5, -2, 2, 5]))  # a key change between sections
            root = min(max(root, 45), 60)
        drums, melody = rng.random() < 0.8, rng.random() < 0.75
        for bar_index in range(8):
            degree = progression[bar_index % 4]
            start = int(time * sample_rate)
            for voice_degree in (degree, degree + 2, degree + 4):
                pitch = _midi_hz(_degree(root, voice_degree) + 12)
                _add(track, start, 0.12 * _note(pitch, bar, sample_rate, pad_harmonics, 0.15, 2.5))
            for beat_index in (0, 2) if rng.random() < 0.5 else (0, 1.5, 2, 3.5):
                pitch = _midi_hz(_degree(root, degree) - 12)
                _add(
                    track,
                    int((time + beat_index * beat) * sample_rate),
                    0.35 * _note(pitch, beat, sample_rate, bass_harmonics, 0.01, 0.4),
                )
            if melody:
                for eighth in range(8):
                    if rng.random() < 0.6:
                        step = degree + int(rng.choice([0, 2, 4, 1, 3, 5, 7]))
                        pitch = _midi_hz(_degree(root, step) + 24)
                        _add(
                            track,
                            int((time + eighth * beat / 2) * sample_rate),
                            0.18 * _note(pitch, beat, sample_rate, lead_harmonics, 0.005, 0.25),
                        )
            if drums:
                for beat_index in range(4):
                    onset = int((time + beat_index * beat) * sample_rate)
                    drum = _kick if beat_index % 2 == 0 else _snare
                    _add(track, onset, drum(sample_rate, rng))
                    for half in (0.0, 0.5):
                        _add(
                            track, onset + int(half * beat * sample_rate), _hihat(sample_rate, rng)
                        )
            time += bar
    return _normalise(_reverberate(track, sample_rate, rng, rt60=0.4, wet=0.3))


def _kick(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    frequency = 50.0 + 100.0 * np.exp(-t / 0.04)  # the pitch drop of a struck membrane
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return 0.6 * np.sin(phase) * np.exp(-t / 0.12) * rng.uniform(0.8, 1.0)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.2 * sample_rate)) / sample_rate
    rattle = _fft_filter(rng.standard_normal(len(t)), sample_rate, _bandpass(1500.0, 7000.0))
    rattle /= np.std(rattle)
    body = np.sin(2 * np.pi * 190.0 * t)
    return 0.25 * (rattle * np.exp(-t / 0.05) + body * np.exp(-t / 0.03)) * rng.uniform(0.7, 1.0)


def _hihat(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.06 * sample_rate)) / sample_rate
    hiss = _fft_filter(rng.standard_normal(len(t)), sample_rate, _highpass(6000.0, order=3))
    return 0.1 * hiss / np.std(hiss) * np.exp(-t / 0.015) * rng.uniform(0.5, 1.0)


def _drum_speed(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Drum revolutions per second: wash turns (one way, stop, the other way), then a spin."""
    n = int(round(seconds * sample_rate))
    speed = np.zeros(n)
    spin_start = 0.75 * seconds if seconds >= 60 else seconds
    time = 0.0
    while time < spin_start:
        turn = rng.uniform(8.0, 14.0)
        rps = rng.uniform(0.7, 0.9)
        start, stop = int(time * sample_rate), int(min(time + turn, spin_start) * sample_rate)
        ramp = np.minimum(np.arange(stop - start) / (0.8 * sample_rate), 1.0)
        speed[start:stop] = rps * ramp
        time += turn + rng.uniform(2.0, 4.0)  # the pause before the drum reverses
    start = int(spin_start * sample_rate)
    if start < n:
        ramp_up = np.arange(n - start) / sample_rate
        speed[start:] = rng.uniform(10.0, 13.0) * np.minimum(ramp_up / 25.0, 1.0) ** 1.5
    return _fft_filter(speed, sample_rate, _lowpass(2.0, order=2))


def washing_machine(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """DWASHING: motor hum and whine, laundry thumping each drum turn, sloshing water."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    speed = np.maximum(_drum_speed(seconds, sample_rate, rng), 0.0)
    running = np.clip(speed / 0.3, 0.0, 1.0)

    # Mains-frequency transformer hum while the motor is driven.
    mains = rng.choice([50.0, 60.0])
    hum = sum(a * np.sin(2 * np.pi * k * mains * t) for k, a in ((2, 1.0), (4, 0.4), (6, 0.2)))
    # Motor whine: its shaft turns about 15 times faster than the drum, wobbling with the load.
    motor_hz = 15.0 * speed * (1.0 + 0.02 * _slow_random(n, sample_rate, rng, 0.5)) + 30.0 * running
    motor_phase = 2 * np.pi * np.cumsum(motor_hz) / sample_rate
    whine = sum(np.sin(k * motor_phase) / k for k in range(1, 9))

    # Laundry lifted and dropped once per drum revolution.
    drum_turns = np.cumsum(speed) / sample_rate
    thumps = np.zeros(n)
    turn_starts = np.flatnonzero(np.diff(np.floor(drum_turns)) > 0)
    for index in turn_starts:
        if speed[index] > 2.0:  # in the spin the laundry sticks to the drum
            continue
        jitter = int(rng.uniform(0.0, 0.2) * sample_rate)
        _add(thumps, index + jitter, _thump(sample_rate, rng))
    slosh_gate = running * (0.4 + 0.6 * np.sin(np.pi * drum_turns * 2) ** 2)
    slosh_gate *= np.clip(3.0 - speed, 0.0, 1.0)  # water is pumped out before the spin
    slosh = _coloured_noise(n, sample_rate, rng, _bandpass(150.0, 1200.0)) * slosh_gate
    # Broadband cabinet rattle and airflow, loud in the spin.
    roar = _coloured_noise(n, sample_rate, rng, _bandpass(80.0, 4000.0))
    roar *= 0.05 + 0.6 * np.clip(speed / 12.0, 0.0, 1.0) ** 2

    mix = 0.08 * hum * running + 0.15 * whine * (0.3 + 0.7 * np.clip(speed / 12.0, 0.0, 1.0))
    mix += 1.5 * thumps + 0.5 * slosh + roar
    return _normalise(_reverberate(mix, sample_rate, rng, rt60=0.3, wet=0.25))


def _thump(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.35 * sample_rate)) / sample_rate
    body = np.sin(2 * np.pi * rng.uniform(50.0, 90.0) * t) * np.exp(-t / rng.uniform(0.04, 0.09))
    splash = _fft_filter(rng.standard_normal(len(t)), sample_rate, _bandpass(200.0, 2500.0))
    splash = splash / np.std(splash) * np.exp(-t / 0.08) * rng.uniform(0.1, 0.4)
    return (body + splash) * rng.uniform(0.4, 1.0)


_SHOUTS = (
    "Over here!", "Pass it!", "Man on!", "Go go go!", "Shoot!", "Come on!", "Yes!",
    "Keep going!", "Time!", "Well done!", "Back!", "Nice one!", "Push up!", "Left side!",
)  # fmt: skip
_SHOUT_VOICES = ("en-us+m1", "en-us+m3", "en-us+m6", "en-us+m4", "en-us+f1", "en-us+f3")


def sports_field(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """NFIELD: wind over an open field, distant players shouting, the odd referee whistle."""
    n = int(round(seconds * sample_rate))
    wind = _wind(n, sample_rate, rng, gustiness=0.5)
    wind /= np.std(wind)

    synth = EspeakSynthesizer()
    tts_rate = synth.sample_rate
    voices = np.zeros(int(np.ceil(seconds * tts_rate)))
    for onset in _event_times(seconds, rng, 5.0):
        shout = synth.synthesize(
            _SHOUTS[int(rng.integers(len(_SHOUTS)))],
            _SHOUT_VOICES[int(rng.integers(len(_SHOUT_VOICES)))],
            rate_wpm=int(rng.integers(190, 260)),
            pitch=int(rng.integers(70, 100)),  # raised voices
        )
        _add(voices, int(onset * tts_rate), shout * 10.0 ** (rng.uniform(-10.0, 0.0) / 20.0))
    voices = resample(voices.astype(np.float32), tts_rate, sample_rate)[:n].astype(np.float64)
    # Distance: air absorbs the highs, and the far side of the pitch sends back a diffuse echo.
    voices = _fft_filter(voices, sample_rate, _bandpass(200.0, 2500.0))
    voices = _reverberate(voices, sample_rate, rng, rt60=1.0, wet=0.6)
    voices /= np.std(voices) + 1e-12

    whistles = np.zeros(n)
    for onset in _event_times(seconds, rng, 40.0):
        for repeat in range(int(rng.choice([1, 1, 2, 3]))):
            start = int((onset + 0.5 * repeat) * sample_rate)
            _add(
                whistles, start, _whistle(sample_rate, rng, long=repeat == 0 and rng.random() < 0.3)
            )
    whistles = _reverberate(whistles, sample_rate, rng, rt60=0.8, wet=0.5)
    return _normalise(wind + 0.6 * voices + 0.3 * whistles)


def _whistle(sample_rate: int, rng: np.random.Generator, long: bool) -> np.ndarray:
    """A pea whistle: a ~3 kHz tone trilled by the pea at some 30 Hz."""
    duration = rng.uniform(0.8, 1.3) if long else rng.uniform(0.15, 0.35)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    trill = np.sin(2 * np.pi * rng.uniform(25.0, 40.0) * t)
    frequency = rng.uniform(2700.0, 3500.0) + 150.0 * trill
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    envelope = np.minimum(t / 0.02, 1.0) * np.minimum((duration - t) / 0.03, 1.0)
    tone = np.sin(phase)
    if 2 * np.max(frequency) < 0.45 * sample_rate:  # the overtone only where it cannot alias
        tone += 0.15 * np.sin(2 * phase)
    return tone * (0.75 + 0.25 * trill) * envelope


def park(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """NPARK: a light breeze in the leaves, distant traffic and several kinds of birdsong."""
    n = int(round(seconds * sample_rate))
    wind = _wind(n, sample_rate, rng, gustiness=0.35)
    leaves = _coloured_noise(n, sample_rate, rng, _bandpass(1000.0, 6000.0))
    leaves *= np.exp(0.8 * _slow_random(n, sample_rate, rng, 0.3)) * 0.15
    traffic = _coloured_noise(n, sample_rate, rng, _bandpass(30.0, 250.0))
    background = wind + leaves + 0.4 * traffic
    background /= np.std(background)

    birds = np.zeros(n)
    for _ in range(int(rng.integers(3, 6))):  # species, each with its own song
        species = {
            # Kept below 0.45 * sample_rate with sweep and vibrato added.
            "base": rng.uniform(2000.0, min(5000.0, 0.28 * sample_rate)),
            "sweep": rng.uniform(-1200.0, 1200.0),
            "length": rng.uniform(0.03, 0.15),
            "fm_rate": rng.uniform(20.0, 90.0),
            "fm_depth": rng.uniform(50.0, 350.0),
            "gap": rng.uniform(0.03, 0.12),
        }
        gain = 10.0 ** (rng.uniform(-12.0, 0.0) / 20.0)  # near and far birds
        for onset in _event_times(seconds, rng, rng.uniform(4.0, 12.0)):
            start = onset
            for _ in range(int(rng.integers(3, 12))):
                chirp = _chirp(sample_rate, rng, species)
                _add(birds, int(start * sample_rate), gain * chirp)
                start += len(chirp) / sample_rate + species["gap"] * rng.uniform(0.8, 1.2)
    birds = _reverberate(birds, sample_rate, rng, rt60=0.5, wet=0.3)
    birds /= np.std(birds) + 1e-12
    return _normalise(background + 0.8 * birds)


def _chirp(sample_rate: int, rng: np.random.Generator, species: dict[str, float]) -> np.ndarray:
    """One syllable of birdsong: a frequency sweep with fast vibrato and a smooth envelope."""
    duration = species["length"] * rng.uniform(0.8, 1.2)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    sweep = species["base"] * rng.uniform(0.95, 1.05) + species["sweep"] * t / duration
    vibrato = species["fm_depth"] * np.sin(2 * np.pi * species["fm_rate"] * t)
    phase = 2 * np.pi * np.cumsum(sweep + vibrato) / sample_rate
    envelope = np.sin(np.pi * t / duration) ** 2
    return np.sin(phase) * envelope


ENVIRONMENT_GENERATORS: dict[str, NoiseGenerator] = {
    "PRESTO": restaurant,
    "DLIVING": music,
    "DWASHING": washing_machine,
    "NFIELD": sports_field,
    "NPARK": park,
}
