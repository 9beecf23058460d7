"""The indoor scenes of the synthetic noise: PRESTO (a restaurant, with eSpeak NG babble),
DLIVING (music in a living room) and DWASHING (a washing machine)."""

from __future__ import annotations

import numpy as np

from crn_lightning.audio import resample
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.data.noise_synth_signals import (
    add_event,
    bandpass,
    coloured_noise,
    event_times,
    fft_filter,
    highpass,
    lowpass,
    normalise,
    reverberate,
    slow_random,
)
from crn_lightning.data.sentences import generate_sentences

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
            add_event(babble, position, speech * distance_gain * rng.uniform(0.6, 1.0))
            position += len(speech) + int(rng.uniform(0.2, 2.0) * tts_rate)
    babble = resample(babble.astype(np.float32), tts_rate, sample_rate)[:n].astype(np.float64)
    babble /= np.std(babble)

    clatter = np.zeros(n)
    for onset in event_times(seconds, rng, 1.3):
        for _ in range(rng.choice([1, 1, 1, 2, 3])):  # a plate set down often rattles twice
            start = int((onset + rng.uniform(0.0, 0.25)) * sample_rate)
            add_event(clatter, start, _clink(sample_rate, rng) * 10.0 ** rng.uniform(-0.6, 0.5))

    murmur = coloured_noise(n, sample_rate, rng, bandpass(60.0, 800.0))  # ventilation
    room = babble + 1.2 * clatter + 0.15 * murmur
    room = reverberate(room, sample_rate, rng, rt60=0.7, wet=0.5)
    # Soft furnishings and distance take the top off the spectrum.
    return normalise(fft_filter(room, sample_rate, lowpass(5000.0, order=1)))


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
                add_event(
                    track, start, 0.12 * _note(pitch, bar, sample_rate, pad_harmonics, 0.15, 2.5)
                )
            for beat_index in (0, 2) if rng.random() < 0.5 else (0, 1.5, 2, 3.5):
                pitch = _midi_hz(_degree(root, degree) - 12)
                add_event(
                    track,
                    int((time + beat_index * beat) * sample_rate),
                    0.35 * _note(pitch, beat, sample_rate, bass_harmonics, 0.01, 0.4),
                )
            if melody:
                for eighth in range(8):
                    if rng.random() < 0.6:
                        step = degree + int(rng.choice([0, 2, 4, 1, 3, 5, 7]))
                        pitch = _midi_hz(_degree(root, step) + 24)
                        add_event(
                            track,
                            int((time + eighth * beat / 2) * sample_rate),
                            0.18 * _note(pitch, beat, sample_rate, lead_harmonics, 0.005, 0.25),
                        )
            if drums:
                for beat_index in range(4):
                    onset = int((time + beat_index * beat) * sample_rate)
                    drum = _kick if beat_index % 2 == 0 else _snare
                    add_event(track, onset, drum(sample_rate, rng))
                    for half in (0.0, 0.5):
                        add_event(
                            track, onset + int(half * beat * sample_rate), _hihat(sample_rate, rng)
                        )
            time += bar
    return normalise(reverberate(track, sample_rate, rng, rt60=0.4, wet=0.3))


def _kick(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    frequency = 50.0 + 100.0 * np.exp(-t / 0.04)  # the pitch drop of a struck membrane
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return 0.6 * np.sin(phase) * np.exp(-t / 0.12) * rng.uniform(0.8, 1.0)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.2 * sample_rate)) / sample_rate
    rattle = coloured_noise(len(t), sample_rate, rng, bandpass(1500.0, 7000.0))
    body = np.sin(2 * np.pi * 190.0 * t)
    return 0.25 * (rattle * np.exp(-t / 0.05) + body * np.exp(-t / 0.03)) * rng.uniform(0.7, 1.0)


def _hihat(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.06 * sample_rate)) / sample_rate
    hiss = coloured_noise(len(t), sample_rate, rng, highpass(6000.0, order=3))
    return 0.1 * hiss * np.exp(-t / 0.015) * rng.uniform(0.5, 1.0)


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
    return fft_filter(speed, sample_rate, lowpass(2.0, order=2))


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
    motor_hz = 15.0 * speed * (1.0 + 0.02 * slow_random(n, sample_rate, rng, 0.5)) + 30.0 * running
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
        add_event(thumps, index + jitter, _thump(sample_rate, rng))
    slosh_gate = running * (0.4 + 0.6 * np.sin(np.pi * drum_turns * 2) ** 2)
    slosh_gate *= np.clip(3.0 - speed, 0.0, 1.0)  # water is pumped out before the spin
    slosh = coloured_noise(n, sample_rate, rng, bandpass(150.0, 1200.0)) * slosh_gate
    # Broadband cabinet rattle and airflow, loud in the spin.
    roar = coloured_noise(n, sample_rate, rng, bandpass(80.0, 4000.0))
    roar *= 0.05 + 0.6 * np.clip(speed / 12.0, 0.0, 1.0) ** 2

    mix = 0.08 * hum * running + 0.15 * whine * (0.3 + 0.7 * np.clip(speed / 12.0, 0.0, 1.0))
    mix += 1.5 * thumps + 0.5 * slosh + roar
    return normalise(reverberate(mix, sample_rate, rng, rt60=0.3, wet=0.25))


def _thump(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.35 * sample_rate)) / sample_rate
    body = np.sin(2 * np.pi * rng.uniform(50.0, 90.0) * t) * np.exp(-t / rng.uniform(0.04, 0.09))
    splash = coloured_noise(len(t), sample_rate, rng, bandpass(200.0, 2500.0))
    splash = splash * np.exp(-t / 0.08) * rng.uniform(0.1, 0.4)
    return (body + splash) * rng.uniform(0.4, 1.0)
