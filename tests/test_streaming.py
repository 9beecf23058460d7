"""The CRN run block by block with its state, and the hop-by-hop streaming enhancer: both must
equal the offline enhancement of the same signal."""

import numpy as np
import pytest
import torch

from crn_lightning.enhancer import Enhancer
from crn_lightning.models.crn import CRN, OUTPUTS
from crn_lightning.stft import STFT
from crn_lightning.streaming import StreamingEnhancer

SR = 16000


@pytest.fixture(autouse=True)
def one_thread():
    # Frames are tiny: on a busy 2-core machine, a second intra-op thread only waits.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _enhancer(n_fft=320, hop=160, win=None, output="mask", compression=0.5, seed=0):
    torch.manual_seed(seed)
    stft = STFT(n_fft, hop, win)
    model = CRN(stft.n_freqs, channels=(4, 8, 8, 16, 16), lstm_hidden=32, output=output)
    enhancer = Enhancer(model, stft, compression=compression)
    # Non-trivial batch-norm statistics, so that a frame leaking into another would show.
    enhancer.train()
    with torch.no_grad():
        enhancer(0.1 * torch.randn(4, SR))
    return enhancer.eval()


def _speech_like(seconds: float, seed: int = 0) -> torch.Tensor:
    """A real utterance's length and shape: voiced bursts with pauses, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voice = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 10))
    envelope = np.clip(np.sin(2 * np.pi * 1.3 * t), 0, None) ** 0.5
    noisy = 0.2 * voice * envelope + 0.03 * rng.standard_normal(len(t))
    return torch.from_numpy(noisy.astype(np.float32))


@pytest.mark.parametrize("output", OUTPUTS)
def test_crn_block_by_block_with_state_equals_one_pass(output):
    model = _enhancer(output=output).network
    x = torch.rand(2, model.input_channels, 60, model.n_freqs)
    with torch.no_grad():
        whole = model(x)
        state, frames = None, []
        for t in range(60):  # frame by frame
            y, state = model.stream(x[:, :, t : t + 1], state)
            frames.append(y)
        first, state = model.stream(x[:, :, :23])  # two uneven blocks
        second, _ = model.stream(x[:, :, 23:], state)
        zero_start, _ = model.stream(x, model.initial_state(2))
    assert (torch.cat(frames, dim=2) - whole).abs().max() < 1e-5
    assert (torch.cat([first, second], dim=2) - whole).abs().max() < 1e-5
    assert (zero_start - whole).abs().max() < 1e-5


@pytest.mark.parametrize("output", OUTPUTS)
def test_block_frames_give_the_offline_result(output):
    enhancer = _enhancer(output=output)
    x = _speech_like(3.0)[None]
    with torch.no_grad():
        assert (enhancer(x, block_frames=37) - enhancer(x)).abs().max() < 1e-5


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize(
    "n_fft, hop, win, delay",
    [(320, 160, None, 160), (512, 160, None, 416), (960, 160, None, 800), (400, 100, 300, 300)],
)
def test_streaming_equals_offline_after_the_delay(n_fft, hop, win, delay, output):
    enhancer = _enhancer(n_fft, hop, win, output=output)
    streamer = StreamingEnhancer(enhancer, batch=2)
    assert streamer.delay_samples == delay
    assert streamer.latency_samples == delay + hop
    for length in (n_fft // 2 + 1, 4321, 16000):  # shortest possible, odd, whole hops
        noisy = 0.1 * torch.randn(2, length)
        with torch.no_grad():
            offline = enhancer(noisy)
        streamed = streamer.enhance(noisy)
        assert streamed.shape == offline.shape
        assert (streamed - offline).abs().max() <= 1e-4


@pytest.mark.parametrize("output", OUTPUTS)
def test_streaming_a_real_length_signal_chunk_by_chunk(output):
    enhancer = _enhancer(output=output)
    noisy = _speech_like(6.53)
    with torch.no_grad():
        offline = enhancer(noisy)  # (samples,) in, (samples,) out
    assert offline.shape == noisy.shape
    streamer = enhancer.stream()
    assert streamer.latency_samples == 320 and streamer.latency_seconds == 0.02  # = the window
    hop, delay = 160, streamer.delay_samples
    whole = len(noisy) // hop * hop
    chunks = [streamer.process(noisy[i : i + hop]) for i in range(0, whole, hop)]
    live = torch.cat(chunks, dim=-1)[0]
    # Every chunk comes out at once; the stream is the offline signal, delay_samples late.
    assert all(c.shape == (1, hop) for c in chunks)
    assert live[:delay].abs().max() == 0
    assert (live[delay:] - offline[: whole - delay]).abs().max() <= 1e-4
    rest = streamer.flush(noisy[whole:])[0]
    assert len(rest) == delay + len(noisy) - whole
    assert (torch.cat([live, rest])[delay:] - offline).abs().max() <= 1e-4
    assert offline.abs().max() > 1e-3  # a real output well above the tolerance, not silence


def test_streaming_errors_are_clear():
    enhancer = _enhancer()
    streamer = StreamingEnhancer(enhancer)
    with pytest.raises(ValueError, match="chunks of hop_length = 160"):
        streamer.process(torch.zeros(100))
    assert streamer.process(torch.ones(160)).abs().max() == 0  # the delay: silence first
    with pytest.raises(ValueError, match="too short"):
        streamer.flush()  # 160 samples: the centred STFT needs more than n_fft / 2
    assert streamer.flush(torch.ones(20)).shape == (1, streamer.delay_samples + 20)
    with pytest.raises(RuntimeError, match="reset"):
        streamer.process(torch.zeros(160))
    with pytest.raises(ValueError, match="hop_length"):
        StreamingEnhancer(_enhancer(320, 200))
