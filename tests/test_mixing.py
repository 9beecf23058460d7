import numpy as np
import pytest

from crn_lightning.mixing import (
    is_silent,
    mix_at_snr,
    prevent_clipping,
    rms,
    silent_window_fraction,
    snr_db,
)


@pytest.mark.parametrize("target", [-5.0, 0.0, 15.0, 20.0, 25.0])
def test_mix_at_snr_hits_the_target_within_0_01_db(target):
    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(64000) * 0.1).astype(np.float32)
    noise = (rng.standard_normal(80000) * 0.3).astype(np.float32)
    mixture, clean, scaled = mix_at_snr(speech, noise, target)
    assert len(mixture) == len(clean) == len(scaled) == 64000  # the longer one is cut
    assert abs(snr_db(clean, scaled) - target) < 0.01
    np.testing.assert_allclose(mixture, clean + scaled, atol=1e-7)
    assert mixture.dtype == np.float32


def test_mix_uses_the_rms_rule_on_the_given_signals():
    speech = np.sin(np.linspace(0, 200 * np.pi, 16000)).astype(np.float32)
    noise = np.ones(16000, dtype=np.float32)
    _, _, scaled = mix_at_snr(speech, noise, 20.0)
    assert rms(scaled) == pytest.approx(rms(speech) / 10.0, rel=1e-5)


@pytest.mark.parametrize("which", ["speech", "noise"])
def test_silent_input_is_a_clear_error_not_nan(which):
    loud = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    silent = np.zeros(1000, dtype=np.float32)
    args = (silent, loud) if which == "speech" else (loud, silent)
    with pytest.raises(ValueError, match=f"the {which} is silent"):
        mix_at_snr(*args, 10.0)


def test_prevent_clipping_scales_everything_together_and_keeps_snr():
    rng = np.random.default_rng(2)
    mixture, speech, noise = mix_at_snr(rng.standard_normal(8000), rng.standard_normal(8000), 5.0)
    assert np.abs(mixture).max() > 0.99
    out_mix, out_speech, out_noise = prevent_clipping(mixture, speech, noise)
    assert np.abs(out_mix).max() == pytest.approx(0.99, rel=1e-6)
    assert snr_db(out_speech, out_noise) == pytest.approx(5.0, abs=1e-4)
    quiet = mixture * 0.01
    assert prevent_clipping(quiet)[0] is quiet


def test_silent_window_fraction_matches_the_rms_of_every_window():
    rng = np.random.default_rng(3)
    signal = (0.1 * rng.standard_normal(3000)).astype(np.float32)
    signal[500:1400] = 0.0  # digital silence
    signal[2000:2600] = 0.0
    signal[2100] = 1e-12  # far below SILENCE_RMS over a window: still silent
    length = 200
    brute = [is_silent(signal[o : o + length]) for o in range(len(signal) - length + 1)]
    assert silent_window_fraction(signal, length) == sum(brute) / len(brute)
    assert sum(brute) == (900 - length + 1) + (600 - length + 1)
    assert silent_window_fraction(np.zeros(50, np.float32), 50) == 1.0
    with pytest.raises(ValueError, match="no window of 60 samples"):
        silent_window_fraction(signal[:50], 60)
