"""What a user sees in TensorBoard, read from the event files of a tiny real training run:
the custom-scalars layout, the tags, their steps and the HPARAMS entry."""

import re

import pytest
from conftest import run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from crn_lightning.tensorboard_layout import HPARAMS_METRICS

ALL = {"scalars": 0, "images": 0, "audio": 0, "tensors": 0}


@pytest.fixture(scope="module")
def events(tmp_path_factory, tiny_cache) -> EventAccumulator:
    tmp_path = tmp_path_factory.mktemp("tensorboard_run")
    result = run_train(tmp_path, cache=tiny_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "quickstart").iterdir()
    # The run's events lie in its own folder: `tensorboard --logdir outputs` names the run
    # quickstart/<date_time>, not .../tensorboard.
    assert list(run_dir.glob("events.out.tfevents.*"))
    accumulator = EventAccumulator(str(run_dir), size_guidance=ALL)
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_one_chart_per_metric_holds_enhanced_and_noisy_in_order_train_val_test(events):
    (config,) = events.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    assert [c.title for c in layout.category] == ["train", "val", "test", "test by SNR"]
    charts = {
        (c.title, chart.title): list(chart.multiline.tag)
        for c in layout.category
        for chart in c.chart
    }
    assert charts[("val", "PESQ")] == ["^val/pesq$", "^val/pesq_noisy$"]
    assert charts[("test", "SI-SDR (dB)")] == ["^test/si_sdr$", "^test/si_sdr_noisy$"]
    assert charts[("train", "loss")] == ["^train/loss$"]
    scalars = set(events.Tags()["scalars"])
    for patterns in charts.values():  # every chart draws something
        for pattern in patterns:
            assert any(re.search(pattern, tag) for tag in scalars), pattern


@pytest.mark.slow
def test_tags_bookkeeping_apart_no_duplicates_and_one_step_per_validation(events):
    scalars = set(events.Tags()["scalars"])
    assert {f"val/{m}" for m in ("loss", "pesq", "pesq_noisy", "stoi", "si_sdr")} <= scalars
    assert "test/pesq" in scalars and "test_by_snr/pesq@snr=10" in scalars
    assert not {t for t in scalars if t.startswith("hparams/")}  # no copies of test/*
    assert "epoch" not in scalars
    counts = {t for t in scalars if re.search(r"clips|failures|skipped", t)}
    assert counts == {
        f"zz_bookkeeping/{s}_{n}" for s in ("val", "test") for n in ("clips", "pesq_failures")
    }

    # Scalars, images and audio of one validation at the same (global) step.
    val_steps = [e.step for e in events.Scalars("val/pesq")]
    assert val_steps == [2, 4]  # 2 epochs of 2 steps
    images, audio = events.Tags()["images"], events.Tags()["audio"]
    assert len(images) == 3
    for tag in images:
        assert re.fullmatch(
            r"val_examples/clip_\d{3}_(bdl|slt)_arctic_a\d{4}_(PRESTO|NPARK)_(0|10)dB", tag
        )
        assert [e.step for e in events.Images(tag)] == val_steps
        image = events.Images(tag)[-1]
        assert image.height > image.width >= 500  # stacked panels, readable on a card
        kinds = [t.removeprefix(tag + "/") for t in audio if t.startswith(tag + "/")]
        assert sorted(kinds) == kinds == ["1_noisy", "2_enhanced", "3_clean"]
        assert [e.step for e in events.Audio(f"{tag}/2_enhanced")] == val_steps
        assert [e.step for e in events.Audio(f"{tag}/1_noisy")] == val_steps[:1]


@pytest.mark.slow
def test_hparams_are_the_swept_settings_typed_with_the_figures_that_matter(events):
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metrics = [m.name.tag for m in experiment.experiment.metric_infos]
    assert metrics == list(HPARAMS_METRICS)
    assert metrics[:2] == ["summary/best_val_pesq", "test/pesq"]
    scalars = set(events.Tags()["scalars"])
    assert set(metrics) <= scalars  # each column has a value
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = start.session_start_info.hparams
    assert values["module.lr"].number_value == pytest.approx(0.002)
    assert values["stft.n_fft"].number_value == 320
    assert values["data.batch_size"].number_value == 4
    assert values["model.channels"].string_value == "4,8,8,16,16"
    assert values["data.snr_db"].string_value == "0,10"
    assert values["corpus"].string_value == "embedded"
    assert values["loss"].string_value == "CompressedSpectrumLoss + 0.5·NegativeSTOI"
    assert not [k for k in values if k.startswith(("checkpoint", "paths", "callbacks"))]
    assert len(values) <= 20
    gain = events.Scalars("summary/pesq_gain")[0].value
    pesq, noisy = events.Scalars("test/pesq")[0].value, events.Scalars("test/pesq_noisy")[0].value
    assert gain == pytest.approx(pesq - noisy, abs=1e-5)
