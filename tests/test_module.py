import math

import lightning as L
import pytest
import torch
from conftest import cpu_trainer, every_epoch_checkpoint, tiny_arctic_demand

from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.examples import enhance_grid
from crn_lightning.losses import (
    CompressedSpectrumLoss,
    Loss,
    LossInputs,
    MultiResolutionSTFTLoss,
    NegativeSISDR,
    WeightedSum,
)
from crn_lightning.models.crn import CRN
from crn_lightning.module import EnhancementModule
from crn_lightning.stft import STFT

TAGS = ["loss", "pesq", "pesq_noisy", "stoi", "stoi_noisy", "si_sdr", "si_sdr_noisy"]


def build(arctic, demand, output="mask", loss=None):
    data = tiny_arctic_demand(arctic, demand, epoch_length=8)
    stft = data.stft
    model = CRN(stft.n_freqs, channels=(4, 8, 8, 16, 16), lstm_hidden=32, output=output)
    module = EnhancementModule(model, stft, lr=1e-3, compression=0.5, metric_workers=2, loss=loss)
    return data, module


def test_fast_dev_run_trains_validates_and_tests(tiny_corpora):
    data, module = build(*tiny_corpora)
    before = [p.clone() for p in module.enhancer.network.parameters()]
    trainer = cpu_trainer(fast_dev_run=1)
    trainer.fit(module, datamodule=data)
    after = list(module.enhancer.network.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    trainer.test(module, datamodule=data)
    for tag in TAGS:
        assert f"test/{tag}" in trainer.callback_metrics
    assert 1.0 <= float(trainer.callback_metrics["test/pesq_noisy"]) <= 4.65


def test_noisy_baseline_is_scored_once_and_every_grid_item_once(tiny_corpora):
    data, module = build(*tiny_corpora)
    submits = []
    original = module.scorer.submit
    module.scorer.submit = lambda *args, **kw: submits.append(1) or original(*args, **kw)
    trainer = cpu_trainer(max_epochs=2, limit_train_batches=1, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    grid = len(data.datasets["val"])  # 2 utterances × 2 environments × 2 SNRs
    assert grid == 8
    assert len(submits) == grid * 2 + grid  # enhanced twice, noisy once
    assert [r["index"] for r in module.records["val"]] == list(range(grid))
    assert float(trainer.callback_metrics["val/clips"]) == grid


def test_enhance_grid_enhances_grid_items_as_forward_does(tiny_corpora):
    data, module = build(*tiny_corpora)
    data.setup()
    enhancer = module.enhancer.eval()
    batch = enhance_grid(enhancer, data, "val", [0, 5])
    assert batch["index"].tolist() == [0, 5]
    assert batch["enhanced_mag"].shape == batch["noisy_mag"].shape
    with torch.no_grad():
        expected = enhancer(batch["noisy"])
    torch.testing.assert_close(batch["enhanced"], expected)
    assert not torch.equal(batch["enhanced"], batch["noisy"])


def test_pesq_every_n_epochs_scores_and_ranks_only_those_epochs(tiny_corpora, tmp_path):
    data, module = build(*tiny_corpora)
    module.pesq_every_n_epochs = 2
    submits, scored, last_before_epoch1 = [], [], []
    original = module.scorer.submit
    module.scorer.submit = lambda *args, **kw: submits.append(1) or original(*args, **kw)
    folder = tmp_path / "checkpoints"

    class Watch(L.Callback):
        def on_validation_end(self, trainer, pl_module):
            scored.append("val/pesq" in pl_module.last_validation[1])

        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                last_before_epoch1.append((folder / "last.ckpt").is_file())

    checkpoint = every_epoch_checkpoint(folder, "val/pesq")
    trainer = cpu_trainer(
        max_epochs=3, limit_train_batches=1, num_sanity_val_steps=0, callbacks=[checkpoint, Watch()]
    )
    trainer.fit(module, datamodule=data)
    # Epoch 2 (every 2nd) and epoch 3 (the last) score PESQ/STOI; epoch 1 only loss, SI-SDR.
    assert scored == [False, True, True]
    grid = len(data.datasets["val"])
    assert len(submits) == grid * 2 + grid  # enhanced on 2 epochs, noisy once
    # Only scored epochs are ranked; last.ckpt is written after every validation.
    assert sorted(p.name for p in folder.iterdir()) == ["e1.ckpt", "e2.ckpt", "last.ckpt"]
    assert last_before_epoch1 == [True]
    assert "val/si_sdr" in trainer.callback_metrics


def test_compiled_enhancer_estimates_what_the_eager_one_does():
    stft = STFT(320, 160)
    model = CRN(stft.n_freqs, channels=(4, 8, 8, 16, 16), lstm_hidden=32, output="mask")
    eager = Enhancer(model, stft, compression=0.5).eval()
    compiled = EnhancementModule(model, stft, compression=0.5, metric_workers=0, compile=True)
    compiled = compiled.enhancer
    noisy_mag = stft(torch.randn(2, 8000)).abs()
    with torch.no_grad():
        expected = eager.estimate(noisy_mag)
        torch.testing.assert_close(compiled.eval().estimate(noisy_mag), expected)
        # With a state (streaming) the CRN runs eagerly: same frames, same output.
        first, state = compiled.estimate_stream(noisy_mag[..., :10])
        rest, _ = compiled.estimate_stream(noisy_mag[..., 10:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=-1), expected)


class RecordingLoss(Loss):
    """A real loss that also records the per-clip values it scored."""

    def __init__(self, inner: Loss) -> None:
        self.inner, self.scored = inner, []

    def per_clip(self, inputs: LossInputs) -> torch.Tensor:
        return self.inner.per_clip(inputs)

    def __call__(self, inputs: LossInputs, per_clip: bool = False) -> torch.Tensor:
        values = super().__call__(inputs, per_clip)
        if per_clip:
            self.scored.append(values.detach())
        return values


@pytest.mark.parametrize(
    ("output", "loss"),
    [
        ("mapping", None),  # the report's mse
        ("mask", MultiResolutionSTFTLoss()),
        ("complex_mapping", CompressedSpectrumLoss()),
        (
            "complex_mask",
            WeightedSum(
                [
                    {"weight": 1.0, "loss": CompressedSpectrumLoss()},
                    {"weight": 0.001, "loss": NegativeSISDR()},
                ]
            ),
        ),
    ],
    ids=["mapping-mse", "mask-multires_stft", "complex_mapping-compressed", "complex_mask-combo"],
)
def test_every_output_trains_with_its_loss_and_scores_finite_pesq(tiny_corpora, output, loss):
    data, module = build(*tiny_corpora, output=output, loss=loss and RecordingLoss(loss))
    before = [p.clone() for p in module.enhancer.network.parameters()]
    trainer = cpu_trainer(max_epochs=1, limit_train_batches=3, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    after = list(module.enhancer.network.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert math.isfinite(float(trainer.callback_metrics["val/pesq"]))
    if loss is not None:
        module.loss.scored.clear()
    trainer.test(module, datamodule=data)
    metrics = trainer.callback_metrics
    for name in ("test/pesq", "test/stoi", "test/si_sdr", "test/loss"):
        assert math.isfinite(float(metrics[name])), name
    assert 1.0 <= float(metrics["test/pesq"]) <= 4.65
    if loss is not None:
        # Test (as validation) scores the module's own loss object, one value per clip.
        scored = torch.cat(module.loss.scored)
        assert len(scored) == len(data.datasets["test"])
        assert float(metrics["test/loss"]) == pytest.approx(float(scored.mean()), rel=1e-5)


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_the_run(tiny_corpora):
    data, module = build(*tiny_corpora)
    module.lr_schedule = "cosine"
    rates = []

    class RecordRate(L.Callback):
        def on_train_batch_end(self, trainer, *args):  # the rate this step used
            rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = cpu_trainer(max_epochs=2, limit_val_batches=0, callbacks=[RecordRate()])
    trainer.fit(module, datamodule=data)
    steps = trainer.global_step
    assert steps == 4 and rates[0] == pytest.approx(1e-3)
    # Cosine over the run's steps: lr_k = lr/2 (1 + cos(pi k / steps)).
    expected = [1e-3 / 2 * (1 + math.cos(math.pi * k / steps)) for k in range(steps)]
    assert rates == pytest.approx(expected)


def test_unknown_lr_schedule_is_refused_by_name():
    stft = STFT(320, 160)
    model = CRN(stft.n_freqs, channels=(4, 8, 8, 16, 16), lstm_hidden=32)
    with pytest.raises(ConfigError, match="module.lr_schedule must be one of"):
        EnhancementModule(model, stft, lr_schedule="linear")
