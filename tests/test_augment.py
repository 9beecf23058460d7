import numpy as np
import pytest
from scipy import signal as sps

from crn_lightning.augment import (
    _rbj_biquad,
    augment_training_pair,
    random_equalizer,
    random_gain,
    random_lowpass,
    reverberate,
    room_impulse_response,
)
from crn_lightning.errors import ConfigError
from crn_lightning.mixing import mix_at_snr, prevent_clipping, rms, snr_db

SR = 16000
EVERYTHING = dict(
    gain_dbfs=(-35.0, -15.0), reverb_probability=1.0, eq_probability=1.0, bandlimit_probability=1.0
)


def white(seed: int, n: int, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def level_dbfs(signal: np.ndarray) -> float:
    return 20.0 * np.log10(rms(signal))


def decay_t60(impulse_response: np.ndarray, sample_rate: int = SR) -> float:
    """T60 from the Schroeder energy decay curve, extrapolated from its -5 to -25 dB part (T20)."""
    energy = np.cumsum(impulse_response[::-1] ** 2)[::-1]
    curve = 10.0 * np.log10(energy / energy[0] + 1e-30)
    return 3.0 * (np.argmax(curve <= -25.0) - np.argmax(curve <= -5.0)) / sample_rate


def band_energy_db(signal: np.ndarray, low_hz: float, high_hz: float) -> float:
    freqs, power = sps.welch(signal, fs=SR, nperseg=1024)
    return 10.0 * np.log10(power[(freqs >= low_hz) & (freqs < high_hz)].mean() + 1e-30)


@pytest.mark.parametrize(
    ("speech_scale", "noise_len", "snr"),
    [(0.1, 32000, 5.0), (0.6, 40000, -5.0), (0.05, 32000, 20.0)],  # 0.6: prevent_clipping acts
)
def test_defaults_are_todays_mixing_bit_for_bit_and_draw_nothing(speech_scale, noise_len, snr):
    clean, noise = white(0, 32000, speech_scale), white(1, noise_len, 0.3)
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    noisy, target = augment_training_pair(clean, noise, snr, rng, SR)
    expected_noisy, expected_clean = prevent_clipping(*mix_at_snr(clean, noise, snr)[:2])
    assert noisy.dtype == target.dtype == np.float32
    np.testing.assert_array_equal(noisy, expected_noisy)
    np.testing.assert_array_equal(target, expected_clean)
    assert rng.bit_generator.state == before  # the data module's later draws are unchanged


def test_random_gain_keeps_the_snr_and_lands_uniformly_in_the_dbfs_range():
    noisy, clean, noise = mix_at_snr(white(0, 32000), white(1, 32000), 7.0)
    levels = []
    for seed in range(30):
        out_noisy, out_target = random_gain(noisy, clean, np.random.default_rng(seed))
        levels.append(level_dbfs(out_noisy))
        assert snr_db(out_target, out_noisy - out_target) == pytest.approx(7.0, abs=1e-3)
    assert min(levels) >= -35.0 - 1e-4 and max(levels) <= -15.0 + 1e-4
    assert min(levels) < -30.0 and max(levels) > -20.0  # spread over the range, not one level


def test_random_gain_prevents_clipping_of_a_hot_level_on_both_signals():
    noisy, clean, _ = mix_at_snr(white(0, 32000), white(1, 32000), 0.0)
    out_noisy, out_target = random_gain(noisy, clean, np.random.default_rng(0), (-3.0, -3.0))
    assert np.abs(out_noisy).max() == pytest.approx(0.99, rel=1e-5)
    np.testing.assert_allclose(out_target / clean, out_noisy[0] / noisy[0], rtol=1e-4)


def test_silent_mixture_cannot_be_levelled():
    silent = np.zeros(100, dtype=np.float32)
    with pytest.raises(ValueError, match="silent mixture"):
        random_gain(silent, silent, np.random.default_rng(0))


@pytest.mark.parametrize("rt60", [0.25, 0.5, 0.9])
def test_rir_decays_at_the_drawn_t60_below_1_khz_and_faster_above(rt60):
    below_1k = sps.butter(4, 800, fs=SR, output="sos")
    above_4k = sps.butter(4, 4500, btype="highpass", fs=SR, output="sos")
    for seed in range(3):
        rir, _ = room_impulse_response(np.random.default_rng(seed), SR, (rt60, rt60))
        assert len(rir) == int(np.ceil(rt60 * SR))
        reverberation = rir[1:]  # without the direct tap, whose level depends on the DRR
        low = decay_t60(sps.sosfilt(below_1k, reverberation))
        assert low == pytest.approx(rt60, rel=0.2)
        assert decay_t60(sps.sosfilt(above_4k, reverberation)) < 0.8 * low


def test_rir_direct_path_early_part_and_drr():
    for seed in range(5):
        rir, early = room_impulse_response(np.random.default_rng(seed), SR, drr_db_range=(3, 3))
        assert rir[0] == 1.0 and np.abs(rir[1:]).max() < 1.0  # the direct sound comes first
        assert len(early) == 801  # 50 ms after the direct sound at 16 kHz
        np.testing.assert_array_equal(early, rir[:801])
        assert 10 * np.log10(1.0 / np.sum(rir[1:] ** 2)) == pytest.approx(3.0, abs=1e-6)
        _, direct_only = room_impulse_response(np.random.default_rng(seed), SR, early_s=0.0)
        np.testing.assert_array_equal(direct_only, [1.0])


def test_reverberation_lengthens_the_decay_of_a_burst_and_grows_with_rt60():
    burst = np.zeros(2 * SR, dtype=np.float32)
    burst[: SR // 10] = white(3, SR // 10, 0.5)
    end = SR // 10
    assert np.all(burst[end:] == 0)  # dry: silence right after the burst
    tails = []
    for rt60 in (0.3, 0.8):
        rir, early = room_impulse_response(np.random.default_rng(0), SR, (rt60, rt60))
        reverberant, target = reverberate(burst, rir, early)
        assert len(reverberant) == len(target) == len(burst)
        # the target (direct + 50 ms) dies out 50 ms after the burst; the reverberant one rings on
        # (FFT convolution leaves round-off of ~1e-8 where the exact result is 0)
        assert np.abs(target[end + 801 :]).max() < 1e-6
        assert rms(reverberant[end + 801 :]) > 1e-3
        tails.append(decay_t60(reverberant[end:]))
    assert 0 < tails[0] < tails[1]


def test_target_is_aligned_with_the_reverberant_speech():
    speech = white(4, SR)
    for seed in range(5):
        reverberant, target = reverberate(
            speech, *room_impulse_response(np.random.default_rng(seed), SR)
        )
        lags = np.arange(-200, 201)
        xcorr = [np.dot(reverberant[200:-200], np.roll(target, lag)[200:-200]) for lag in lags]
        assert lags[int(np.argmax(xcorr))] == 0


def test_reverb_snr_is_measured_against_the_reverberant_speech_and_target_keeps_dry_level():
    clean, noise = white(5, 4 * SR), white(6, 4 * SR, 0.2)
    gaps = []
    for seed in range(6):
        noisy, target = augment_training_pair(
            clean, noise, 3.0, np.random.default_rng(seed), SR, reverb_probability=1.0
        )
        # noisy = reverberant + k * noise: recover k by projection (speech and noise are
        # independent, so the error is ~1/sqrt(n)) and with it the reverberant speech
        k = np.dot(noisy, noise) / np.dot(noise, noise)
        reverberant = noisy - k * noise
        assert snr_db(reverberant, k * noise) == pytest.approx(3.0, abs=0.1)
        gaps.append(abs(snr_db(target, k * noise) - 3.0))
        # the direct path has gain 1: the target's projection on the dry speech is the dry level
        assert np.dot(target, clean) / np.dot(clean, clean) == pytest.approx(1.0, abs=0.05)
    assert max(gaps) > 0.5  # the test tells the two rules apart


def test_biquads_follow_the_cookbook_gains():
    freqs = np.array([20.0, 1000.0, 7900.0])
    for gain in (-6.0, 4.0):
        peak = _rbj_biquad("peak", 1000.0, gain, 2.0, SR)[None]
        low, high = (
            _rbj_biquad(k, 1000.0, gain, 0.0, SR)[None] for k in ("low_shelf", "high_shelf")
        )
        (peak_db, low_db, high_db) = (
            20 * np.log10(np.abs(sps.sosfreqz(sos, worN=freqs, fs=SR)[1]))
            for sos in (peak, low, high)
        )
        np.testing.assert_allclose(peak_db, [0.0, gain, 0.0], atol=0.1)
        np.testing.assert_allclose(low_db[[0, 1, 2]], [gain, gain / 2, 0.0], atol=0.2)
        np.testing.assert_allclose(high_db[[0, 1, 2]], [0.0, gain / 2, gain], atol=0.2)


def test_random_equalizer_colours_within_its_section_gains_and_varies():
    responses = []
    for seed in range(10):
        sos = random_equalizer(np.random.default_rng(seed), SR)
        assert 3 <= len(sos) <= 5
        _, h = sps.sosfreqz(sos, worN=256, fs=SR)
        db = 20 * np.log10(np.abs(h))
        assert np.abs(db).max() <= 6.0 * len(sos) and np.abs(db).max() > 1.0
        responses.append(db)
    assert np.std(responses, axis=0).mean() > 1.0  # different seeds, different microphones


def test_lowpass_removes_the_energy_above_its_cutoff():
    noise = white(7, 4 * SR)
    for cutoff in (2500.0, 3400.0):
        sos = random_lowpass(np.random.default_rng(0), SR, (cutoff, cutoff))
        out = sps.sosfilt(sos, noise)
        passband = band_energy_db(out, 100, 0.8 * cutoff)
        assert passband == pytest.approx(band_energy_db(noise, 100, 0.8 * cutoff), abs=0.5)
        assert band_energy_db(out, 1.5 * cutoff, 2 * cutoff) < passband - 25.0
        assert band_energy_db(out, 2 * cutoff, SR / 2) < passband - 45.0
    narrowband = random_lowpass(np.random.default_rng(0), 8000)  # capped below 8 kHz's Nyquist
    assert np.abs(sps.sosfreqz(narrowband, worN=[1000.0], fs=8000)[1][0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="above 0.9x Nyquist"):
        random_lowpass(np.random.default_rng(0), 8000, (3700.0, 3800.0))


def test_bandlimit_filters_the_noise_and_the_target_alike():
    clean, noise = white(8, 4 * SR), white(9, 4 * SR)
    for seed in range(3):
        noisy, target = augment_training_pair(
            clean, noise, 0.0, np.random.default_rng(seed), SR, bandlimit_probability=1.0
        )
        # the cutoff is at most 7 kHz; an unfiltered noise would fill the top band of the mixture
        top_drop = [
            band_energy_db(x, 7700, 8000) - band_energy_db(x, 100, 3000) for x in (noisy, target)
        ]
        assert top_drop[1] < -6.0
        assert top_drop[0] == pytest.approx(top_drop[1], abs=1.5)


def test_eq_colours_the_target_exactly_as_the_speech_in_the_mixture():
    clean, noise = white(10, 2 * SR), white(11, 2 * SR)
    for seed in range(3):
        noisy, target = augment_training_pair(
            clean, noise, 5.0, np.random.default_rng(seed), SR, eq_probability=1.0
        )
        # noisy - target is the (coloured) noise alone, at the SNR: the target is the mixed speech
        assert snr_db(target, noisy - target) == pytest.approx(5.0, abs=1e-3)
        assert rms(target - clean) > 0.1 * rms(clean)  # and it is coloured, not the clean speech


def test_same_seed_same_pair_other_seed_other_pair():
    clean, noise = white(12, SR), white(13, SR)
    first = augment_training_pair(clean, noise, 5.0, np.random.default_rng(3), SR, **EVERYTHING)
    again = augment_training_pair(clean, noise, 5.0, np.random.default_rng(3), SR, **EVERYTHING)
    other = augment_training_pair(clean, noise, 5.0, np.random.default_rng(4), SR, **EVERYTHING)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert all(x.dtype == np.float32 and len(x) == SR for x in first)


def test_each_augmentation_keeps_its_draws_when_others_are_switched_on():
    # The gain draws the same level whether or not reverberation and filters come before it.
    clean, noise = white(14, SR), white(15, SR)
    for seed in range(5):
        alone = augment_training_pair(
            clean, noise, 5.0, np.random.default_rng(seed), SR, gain_dbfs=(-35, -15)
        )
        together = augment_training_pair(
            clean, noise, 5.0, np.random.default_rng(seed), SR, **EVERYTHING
        )
        assert level_dbfs(alone[0]) == pytest.approx(level_dbfs(together[0]), abs=1e-3)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("reverb_probability", 1.5),
        ("eq_probability", -0.1),
        ("bandlimit_probability", "often"),
        ("rt60_s", (0.8, 0.2)),
        ("rt60_s", (200, 800)),  # milliseconds by mistake
        ("rt60_s", (0.5,)),
        ("gain_dbfs", (-15, -35)),
        ("gain_dbfs", (-10, 5)),
        ("gain_dbfs", -25),
    ],
)
def test_bad_options_raise_config_error_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"data\.augment\.{key}"):
        augment_training_pair(
            white(0, 1000), white(1, 1000), 0.0, np.random.default_rng(0), SR, **{key: value}
        )
