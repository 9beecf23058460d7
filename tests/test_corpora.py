import pytest

from crn_lightning.data.corpora import (
    CorpusError,
    find_arctic,
    find_demand,
    select_utterances,
    split_utterances,
)


def test_finds_speakers_and_environments_in_the_real_layouts(tiny_corpora):
    arctic, demand = tiny_corpora
    files = find_arctic(arctic, ["bdl", "slt"])
    assert [p.name for p in files["bdl"]][:2] == ["arctic_a0001.wav", "arctic_a0002.wav"]
    assert find_demand(demand, ["PRESTO", "NPARK"], 1)["NPARK"] == demand / "NPARK" / "ch01.wav"


def test_missing_speaker_names_the_path_layout_and_source(tiny_corpora):
    arctic, _ = tiny_corpora
    with pytest.raises(CorpusError) as err:
        find_arctic(arctic, ["bdl", "rms"])
    message = str(err.value)
    assert "'rms'" in message and "cmu_us_rms_arctic" in message
    assert "cmu_us_<speaker>_arctic/wav" in message and "festvox.org" in message


def test_missing_environment_names_the_file(tiny_corpora):
    _, demand = tiny_corpora
    with pytest.raises(CorpusError, match=r"DKITCHEN.*ch01.wav.*zenodo"):
        find_demand(demand, ["PRESTO", "DKITCHEN"], 1)


def test_selection_is_balanced_filtered_and_split_deterministically(tiny_corpora):
    arctic, _ = tiny_corpora
    files = find_arctic(arctic, ["bdl", "slt"])
    chosen = select_utterances(files, 5.0, 10, seed=3).chosen
    assert sorted(u.speaker for u in chosen).count("bdl") == 5
    parts = split_utterances(chosen, {"train": 6, "val": 3, "test": 1}, seed=3)
    again = split_utterances(
        select_utterances(files, 5.0, 10, 3).chosen, {"train": 6, "val": 3, "test": 1}, 3
    )
    assert parts == again
    names = [u.path for part in parts.values() for u in part]
    assert len(names) == len(set(names)) == 10  # disjoint by utterance
    other = split_utterances(
        select_utterances(files, 5.0, 10, 4).chosen, {"train": 6, "val": 3, "test": 1}, 4
    )
    assert other != parts


def test_duration_filter_and_too_large_split_are_clear_errors(tiny_corpora):
    arctic, _ = tiny_corpora
    files = find_arctic(arctic, ["bdl", "slt"])
    with pytest.raises(CorpusError, match="max_utterance_seconds=1.0"):
        select_utterances(files, 1.0, 4, 0)
    with pytest.raises(CorpusError, match="data.split asks for 13"):
        select_utterances(files, 5.0, 13, 0)
