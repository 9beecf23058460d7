"""data.split_by=speaker: validation and test speakers never appear in training."""

import pytest
from conftest import compose, write_tiny_corpora
from test_datamodule import make

from crn_lightning.data.corpora import CorpusError
from crn_lightning.errors import ConfigError

SPEAKERS = ["bdl", "clb", "rms", "slt"]


@pytest.fixture
def four_speakers(tmp_path):
    return write_tiny_corpora(tmp_path, speakers=SPEAKERS, utterances=5)


def speakers_of(data, stage):
    return {u.speaker for u in data.datasets[stage].utterances}


def test_named_speakers_make_a_speaker_disjoint_split(four_speakers):
    data = make(
        *four_speakers,
        speakers=SPEAKERS,
        split_by="speaker",
        val_speakers=["rms"],
        test_speakers=["clb"],
        split={"train": 8, "val": 3, "test": 2},
    )
    assert speakers_of(data, "train") == {"bdl", "slt"}
    assert speakers_of(data, "val") == {"rms"} and speakers_of(data, "test") == {"clb"}
    assert data.corpus_info["utterances"] == {"train": 8, "val": 3, "test": 2}
    assert data.corpus_info["stage_speakers"] == {
        "train": ["bdl", "slt"],
        "val": ["rms"],
        "test": ["clb"],
    }
    # Balanced over the training speakers; the grids describe the new voices.
    train = [u.speaker for u in data.datasets["train"].utterances]
    assert train.count("bdl") == train.count("slt") == 4
    assert data.describe("val", 0).startswith("rms ")


def test_null_speaker_lists_are_a_seeded_disjoint_draw(four_speakers):
    kwargs = dict(speakers=SPEAKERS, split_by="speaker", split={"train": 6, "val": 2, "test": 2})
    data = make(*four_speakers, **kwargs)
    stages = {stage: speakers_of(data, stage) for stage in ("train", "val", "test")}
    assert len(stages["val"]) == len(stages["test"]) == 1 and len(stages["train"]) == 2
    assert set().union(*stages.values()) == set(SPEAKERS)
    again = make(*four_speakers, **kwargs)
    assert {stage: speakers_of(again, stage) for stage in stages} == stages
    # Naming only the test speakers: validation is drawn from the others.
    kwargs["split"] = {"train": 4, "val": 2, "test": 2}
    data = make(*four_speakers, **kwargs, test_speakers=["bdl", "slt"])
    assert speakers_of(data, "test") == {"bdl", "slt"}
    assert len(speakers_of(data, "val")) == 1 and speakers_of(data, "train") <= {"clb", "rms"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"val_speakers": ["ksp"]}, r"data.val_speakers names \['ksp'\], which are not among"),
        (
            {"val_speakers": ["rms"], "test_speakers": ["rms", "clb"]},
            r"speakers \['rms'\] are in both data.val_speakers and data.test_speakers",
        ),
        ({"test_speakers": []}, "data.test_speakers is empty"),
        (
            {"val_speakers": ["bdl", "clb"], "test_speakers": ["rms", "slt"]},
            "data.split_by=speaker needs a speaker of its own for training",
        ),
    ],
)
def test_bad_speaker_lists_name_the_key(four_speakers, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make(*four_speakers, speakers=SPEAKERS, split_by="speaker", **overrides)


def test_two_speakers_cannot_be_split_three_ways(tiny_corpora):
    with pytest.raises(ConfigError, match=r"the corpus has \['bdl', 'slt'\].*at least 3 speakers"):
        make(*tiny_corpora, split_by="speaker")


def test_too_few_utterances_of_a_splits_speakers_names_the_split(four_speakers):
    with pytest.raises(CorpusError, match=r"data.split.val asks for 6 utterances .* \['rms'\]"):
        make(
            *four_speakers,
            speakers=SPEAKERS,
            split_by="speaker",
            val_speakers=["rms"],
            split={"train": 6, "val": 6, "test": 2},
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"split_by": "voice"}, "data.split_by must be utterance or speaker, got 'voice'"),
        ({"val_speakers": ["bdl"]}, "data.val_speakers is set but data.split_by is utterance"),
    ],
)
def test_split_keys_are_checked_before_reading(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make(tmp_path / "none", tmp_path / "none", **overrides)


def test_a_checkpoint_from_other_speakers_is_refused(four_speakers):
    kwargs = dict(speakers=SPEAKERS, split_by="speaker", split={"train": 6, "val": 2, "test": 2})
    data = make(*four_speakers, **kwargs, val_speakers=["rms"], test_speakers=["clb"])
    other = make(*four_speakers, **kwargs, val_speakers=["clb"], test_speakers=["rms"])
    with pytest.raises(ConfigError, match="stage_speakers"):
        other.load_state_dict(data.state_dict())


def test_null_split_size_takes_every_utterance_of_the_splits_speakers(four_speakers):
    # The shipped schema accepts it (a Hydra override of the arctic_demand data config).
    assert compose("data.split_by=speaker", "data.split.train=null").data.split.train is None
    data = make(
        *four_speakers,
        speakers=SPEAKERS,
        split_by="speaker",
        val_speakers=["rms"],
        test_speakers=["clb"],
        split={"train": None, "val": 3, "test": 2},
    )
    assert data.corpus_info["utterances"]["train"] == 10  # bdl and slt, 5 each
