import importlib.util
import sys

import numpy as np
import pytest
import torch

from crn_lightning.audio import resample
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.dnsmos import dnsmos_scores
from crn_lightning.errors import UserError
from crn_lightning.mixing import mix_at_snr

needs_speechmos = pytest.mark.skipif(
    importlib.util.find_spec("speechmos") is None,
    reason="speechmos is not installed: pip install 'crn-lightning[dnsmos]'",
)


@pytest.fixture(scope="module")
def speech_22k() -> tuple[np.ndarray, int]:
    synth = EspeakSynthesizer()
    audio = synth.synthesize("The quick brown fox jumps over the lazy dog.", "en-us+m3")
    return 0.5 * audio / np.abs(audio).max(), synth.sample_rate


@needs_speechmos
def test_clean_speech_scores_above_its_noisy_mixture(speech_22k):
    speech = resample(*speech_22k, 16000)
    noise = np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32)
    clean = dnsmos_scores(speech, 16000)
    noisy = dnsmos_scores(mix_at_snr(speech, noise, 0.0)[0], 16000)
    assert set(clean) == {"sig", "bak", "ovrl", "p808"}
    assert all(1.0 <= score <= 5.0 for score in (*clean.values(), *noisy.values()))
    assert clean["bak"] > noisy["bak"] + 1.0
    assert clean["ovrl"] > noisy["ovrl"]


@needs_speechmos
def test_other_rates_are_resampled_and_tensors_accepted(speech_22k):
    audio, rate = speech_22k
    at_16k = dnsmos_scores(torch.from_numpy(resample(audio, rate, 16000)), 16000)
    assert dnsmos_scores(audio, rate) == pytest.approx(at_16k, abs=1e-6)


def test_missing_extra_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "speechmos", None)  # makes `import speechmos` fail
    with pytest.raises(UserError, match=r"pip install 'crn-lightning\[dnsmos\]'"):
        dnsmos_scores(np.zeros(16000, dtype=np.float32), 16000)


@pytest.mark.parametrize(
    ("waveform", "reason"),
    [
        (np.zeros(0, dtype=np.float32), "non-empty mono"),
        (np.zeros((2, 16000), dtype=np.float32), "non-empty mono"),
        (np.full(16000, 1.5, dtype=np.float32), r"\[-1, 1\]"),
        (np.full(16000, np.nan, dtype=np.float32), r"\[-1, 1\]"),
    ],
)
def test_bad_waveforms_are_refused_with_the_reason(waveform, reason):
    with pytest.raises(ValueError, match=reason):
        dnsmos_scores(waveform, 16000)
