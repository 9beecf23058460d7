"""A small ctypes wrapper around eSpeak NG, as bundled by the ``espeakng-loader`` package.

eSpeak NG keeps all its state (voice, parameters, callback) in process-global variables, so
the library is initialised once per process and every synthesis runs under one lock.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import espeakng_loader
import numpy as np

# Values from eSpeak NG's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0
_BUFFER_MS = 500
_RAND_SEED = 1

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_sample_rate = 0
_data_path = Path()
# Chunks of the utterance being synthesised; filled by the C callback under ``_lock``.
_chunks: list[np.ndarray] = []


@_SynthCallback
def _collect(wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
    if wav and count > 0:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    return 0  # 0 = go on synthesising


def _load() -> tuple[ctypes.CDLL, int, Path]:
    """Load and initialise the library once per process (caller holds ``_lock``)."""
    global _library, _sample_rate, _data_path
    if _library is not None:
        return _library, _sample_rate, _data_path
    library_path = espeakng_loader.get_library_path()
    data_path = Path(espeakng_loader.get_data_path())
    try:
        library = ctypes.CDLL(library_path)
    except OSError as error:
        raise RuntimeError(f"cannot load eSpeak NG from {library_path}: {error}") from error
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    library.espeak_SetSynthCallback.restype = None
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetVoiceByName.restype = ctypes.c_int
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_SetParameter.restype = ctypes.c_int
    library.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    library.espeak_Synth.restype = ctypes.c_int
    rate = library.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS,
        _BUFFER_MS,
        str(data_path).encode(),
        _INITIALIZE_DONT_EXIT,
    )
    if rate <= 0:
        raise RuntimeError(
            f"eSpeak NG at {library_path} failed to initialise with data {data_path} "
            f"(returned {rate})"
        )
    # Breathy variants (f2, f3, f5...) draw noise from a generator that eSpeak NG seeds from the
    # clock; a fixed seed makes a process's output depend only on what it is asked to say.
    library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    library.espeak_ng_SetRandSeed.restype = None
    library.espeak_ng_SetRandSeed(_RAND_SEED)
    library.espeak_SetSynthCallback(_collect)
    _library, _sample_rate, _data_path = library, rate, data_path
    return library, rate, data_path


class EspeakSynthesizer:
    """Text-to-speech with eSpeak NG; all instances share the one process-global engine.

    eSpeak NG carries state from one utterance to the next (pitch flutter phase, gain control),
    so the same call can give slightly different audio later in a process. Its random
    generator (seeded from the clock by eSpeak NG) is seeded with a constant here, so a fresh
    process that makes the same sequence of calls produces the same audio, bit for bit.
    """

    def __init__(self) -> None:
        with _lock:
            self._library, self.sample_rate, self._data_path = _load()
        self._variants_dir = self._data_path / "voices" / "!v"

    def _select_voice(self, voice: str) -> None:
        # eSpeak silently falls back to the default voice for an unknown "+variant",
        # so the variant is checked against the data folder before asking the library.
        language, _, variant = voice.partition("+")
        if variant and not (self._variants_dir / variant).is_file():
            raise ValueError(
                f"unknown eSpeak NG voice variant {variant!r} in {voice!r} "
                f"(no file in {self._variants_dir})"
            )
        if not language or self._library.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"eSpeak NG refused voice {voice!r} (data in {self._data_path})")

    def synthesize(
        self, text: str, voice: str, rate_wpm: int | None = None, pitch: int | None = None
    ) -> np.ndarray:
        """Speak ``text`` with ``voice`` (e.g. ``"en-us+m3"``) at the native sample rate.

        ``rate_wpm`` is eSpeak's speaking rate in words per minute (80-450, default 175);
        ``pitch`` is its base pitch 0-100 (default 50), relative to the voice's own range.
        Returns float32 mono samples in [-1, 1].
        """
        if not text.strip():
            raise ValueError("cannot synthesise empty text")
        encoded = text.encode("utf-8") + b"\0"
        with _lock:
            self._select_voice(voice)
            # Set both on every call, so that no earlier call's values carry over.
            self._library.espeak_SetParameter(_PARAM_RATE, 175 if rate_wpm is None else rate_wpm, 0)
            self._library.espeak_SetParameter(_PARAM_PITCH, 50 if pitch is None else pitch, 0)
            _chunks.clear()
            status = self._library.espeak_Synth(
                encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            samples = np.concatenate(_chunks) if _chunks else np.zeros(0, np.int16)
            _chunks.clear()
        if status != _EE_OK:
            raise RuntimeError(f"eSpeak NG failed to synthesise with voice {voice!r} ({status})")
        if samples.size == 0:
            raise RuntimeError(f"eSpeak NG produced no audio for {text!r} with voice {voice!r}")
        return samples.astype(np.float32) / np.float32(32768.0)
