"""data.corpus=auto|real|offline|embedded: which corpus a run gets, what it says in the log, what
metrics.json records; the offline corpus from tiny fake .deb packages (tests/fake_debs.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import run_train
from fake_debs import default_layout_packages, install_fake_apt_get, make_deb, speech_like
from fake_debs import write_sound as write_sound_file

from crn_lightning.data.corpora import assign_speakers
from crn_lightning.data.corpus_choice import CorpusRoots, offline_held_out, speaker_split
from crn_lightning.data.datamodule import ArcticDemandDataModule
from crn_lightning.data.embedded import EmbeddedCorpusSpec, ensure_embedded_corpus
from crn_lightning.data.offline import ensure_offline_corpus, spec_from_config
from crn_lightning.data.packages import PackageError, PackageManagerUnavailable
from crn_lightning.errors import ConfigError
from crn_lightning.stft import STFT

TINY_EMBEDDED = {"utterances_per_speaker": 5, "noise_seconds": 6.0}
# The default spec's sources, with thresholds the fake packages' few seconds can meet.
# One generated noise: NPARK needs no eSpeak, whose output is not the same from call to call.
TINY_OFFLINE = {
    "min_speaker_utterances": 2,
    "noise_seconds": 12.0,
    "babble_talkers": 2,
    "synthetic_noise": ["NPARK"],
}
FAKE_SPEAKERS = [
    "festvox_ru_nsh",
    "fillets_cs_m",
    "fillets_cs_v",
    "klettres_en",
    "tuxpaint_en",
    "tuxpaint_fr",
]
OFFLINE_ENVIRONMENTS = ["CITY", "ENGINE", "KEYBOARD", "MUSIC", "BABBLE", "SYNTH_NPARK"]


@pytest.fixture(scope="module")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny embedded corpus, generated once for the module (a few seconds of eSpeak)."""
    root = tmp_path_factory.mktemp("embedded")
    ensure_embedded_corpus(root, EmbeddedCorpusSpec(**TINY_EMBEDDED))
    return root


def data_module(tmp_path: Path, embedded_dir: Path, **overrides: object) -> ArcticDemandDataModule:
    """A data module with no real corpus at its ARCTIC/DEMAND roots."""
    kwargs: dict = dict(
        stft=STFT(320, 160),
        arctic_root=str(tmp_path / "no-data" / "cmu_arctic"),
        demand_root=str(tmp_path / "no-data" / "DEMAND"),
        corpus="auto",
        embedded_dir=str(embedded_dir),
        embedded=TINY_EMBEDDED,
        offline_dir=str(tmp_path / "offline"),
        offline=TINY_OFFLINE,
        split={"train": 4, "val": 2, "test": 2},
        snr_db=[0, 10],
        clip_seconds=0.5,
        batch_size=2,
        num_workers=0,
    )
    return ArcticDemandDataModule(**(kwargs | overrides))


def no_apt_get(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def apt_get_with_empty_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty-repo").mkdir()
    install_fake_apt_get(tmp_path / "bin", tmp_path / "empty-repo")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


@pytest.mark.parametrize("package_manager", [no_apt_get, apt_get_with_empty_lists])
def test_auto_without_a_package_manager_falls_back_to_embedded_with_a_banner(
    tmp_path, embedded_dir, monkeypatch, caplog, package_manager
):
    package_manager(tmp_path, monkeypatch)
    data = data_module(tmp_path, embedded_dir)
    with caplog.at_level(logging.WARNING, logger="crn_lightning.data.corpus_choice"):
        data.setup()
    assert data.corpus_info["kind"] == "embedded" and data.corpus_info["sources"] == []
    (banner,) = [r.getMessage() for r in caplog.records if "EMBEDDED CORPUS" in r.getMessage()]
    assert "WILL NOT\nHELP REAL RECORDINGS" in banner
    assert "python -m crn_lightning.download" in banner and "apt-get update" in banner
    expected = "apt-get is not on PATH" if package_manager is no_apt_get else "Unable to locate"
    assert expected in banner and str(tmp_path / "offline") in banner
    # Nothing half-built is left where the offline corpus would go.
    assert [p.name for p in (tmp_path / "offline").iterdir()] == [".offline.lock"]


def test_explicit_offline_without_a_package_manager_is_an_error_naming_the_key(
    tmp_path, embedded_dir, monkeypatch
):
    no_apt_get(tmp_path, monkeypatch)
    data = data_module(tmp_path, embedded_dir, corpus="offline")
    with pytest.raises(ConfigError, match=r"data.corpus=offline.*apt-get is not on PATH") as err:
        data.setup()
    assert "data.offline_dir" in str(err.value) and "data.corpus=auto" in str(err.value)
    assert isinstance(err.value.__cause__, PackageManagerUnavailable)


def test_auto_stops_on_a_broken_package_instead_of_falling_back(
    fake_apt, tmp_path, embedded_dir, caplog
):
    tree = tmp_path / "tree"
    write_sound_file(tree, "usr/share/x.ogg", speech_like(0))
    deb = make_deb(fake_apt, "fillets-ng-data-cs", "1.0", tree)
    deb.write_bytes(deb.read_bytes()[:200])  # a truncated download
    data = data_module(tmp_path, embedded_dir)
    with pytest.raises(PackageError, match="package fillets-ng-data-cs") as err:
        data.setup()
    assert not isinstance(err.value, PackageManagerUnavailable)
    assert "data.corpus=embedded trains without it" in caplog.text
    assert "EMBEDDED CORPUS" not in caplog.text


def test_auto_uses_the_offline_corpus_with_its_own_speakers_and_environments(
    fake_apt, tmp_path, embedded_dir, caplog
):
    default_layout_packages(fake_apt, tmp_path)
    spec = spec_from_config(TINY_OFFLINE)
    serial = ensure_offline_corpus(tmp_path / "serial", spec, workers=1)
    corpus = ensure_offline_corpus(tmp_path / "offline", spec, workers=2)
    # The process pool changes nothing: same manifest, so the same bytes in every file.
    assert corpus.manifest_path.read_text() == serial.manifest_path.read_text()
    assert list(corpus.speakers) == FAKE_SPEAKERS
    assert list(corpus.environments) == OFFLINE_ENVIRONMENTS

    # data.speakers / data.environments (ARCTIC, DEMAND names) do not apply to it.
    with caplog.at_level(logging.INFO):
        data = data_module(tmp_path, embedded_dir, environments=["PRESTO"], speakers=["bdl"])
        data.setup()
    info = data.corpus_info
    assert info["kind"] == "offline" and info["speakers"] == FAKE_SPEAKERS
    assert info["environments"] == data.environments == OFFLINE_ENVIRONMENTS
    assert info["arctic_root"] == str(corpus.arctic_root)
    cs = next(s for s in info["sources"] if s["package"] == "fillets-ng-data-cs")
    assert cs == {
        "package": "fillets-ng-data-cs",
        "version": "1.0-1",
        "licenses": ["GPL-2+"],
        "speech_files": 6,
        "speech_minutes": cs["speech_minutes"],
        "noise": [],
    }
    assert 0.1 < cs["speech_minutes"] < 0.2  # six clips of ~1.3 s
    lincity = next(s for s in info["sources"] if s["package"] == "lincity-ng-data")
    assert lincity["speech_files"] == 0 and lincity["noise"] == ["CITY", "KEYBOARD", "MUSIC"]
    assert "do not apply" in caplog.text
    assert "fillets-ng-data-cs 1.0-1 (speech: 6 files" in caplog.text
    assert {data.describe("test", i).split(" + ")[1].split()[0] for i in range(4)} <= set(
        OFFLINE_ENVIRONMENTS
    )

    restricted = data_module(
        tmp_path,
        embedded_dir,
        corpus="offline",
        offline_speakers=["tuxpaint_fr", "klettres_en", "fillets_cs_m"],
        offline_environments=["BABBLE", "CITY"],
    )
    restricted.setup()
    assert restricted.corpus_info["speakers"] == ["fillets_cs_m", "klettres_en", "tuxpaint_fr"]
    assert restricted.environments == ["CITY", "BABBLE"]
    with pytest.raises(ConfigError, match=r"data.offline_speakers=\['bdl'\].*\['bdl'\] are not"):
        data_module(tmp_path, embedded_dir, offline_speakers=["bdl"]).setup()


def test_offline_settings_are_checked_by_name(tmp_path, embedded_dir):
    with pytest.raises(ConfigError, match=r"data.offline: \['speech'\] cannot be set"):
        data_module(tmp_path, embedded_dir, offline={"speech": []})
    with pytest.raises(ConfigError, match="data.offline: .*min_seconds=5.0, max_seconds=4.9"):
        data_module(tmp_path, embedded_dir, offline={"min_seconds": 5.0})


@pytest.mark.slow
def test_train_cli_on_a_first_built_offline_corpus_records_its_sources(fake_apt, tmp_path):
    default_layout_packages(fake_apt, tmp_path)
    offline_settings = [f"data.offline.{key}={value}" for key, value in TINY_OFFLINE.items()]
    result = run_train(tmp_path, "data.corpus=offline", *offline_settings, "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "quickstart").iterdir()
    log = (run_dir / "train.log").read_text()
    assert "building it from 10 Debian packages" in log and "corpus: offline" in log
    assert "its sources (Debian packages):\n  fillets-ng-data-cs 1.0-1 (speech: 6 files" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 2  # TINY: 8 mixtures an epoch in batches of 4
    corpus = metrics["corpus"]
    assert corpus["kind"] == "offline" and corpus["speakers"] == FAKE_SPEAKERS
    assert corpus["environments"] == OFFLINE_ENVIRONMENTS
    packages = [(s["package"], s["version"], s["speech_files"]) for s in corpus["sources"]]
    assert packages[:4] == [
        ("fillets-ng-data-cs", "1.0-1", 6),
        ("klettres-data", "1.0-1", 3),
        ("tuxpaint-stamps-default", "1.0-1", 6),
        ("festvox-ru", "0.5-1", 3),  # a piece of each of its three labelled sentences
    ]
    assert len(packages) == 10
    assert set(metrics["test_breakdown"]["by_environment"]) <= set(OFFLINE_ENVIRONMENTS)
    manifest = json.loads((tmp_path / "cache" / "offline" / "manifest.json").read_text())
    assert [s["version"] for s in manifest["sources"]] == [s[1] for s in packages]


def test_auto_falling_back_to_two_embedded_speakers_splits_by_utterance(
    tmp_path, embedded_dir, monkeypatch, caplog
):
    """The quickstart asks for a speaker split; the embedded fallback has two voices only."""
    no_apt_get(tmp_path, monkeypatch)
    data = data_module(tmp_path, embedded_dir, split_by="speaker")
    with caplog.at_level(logging.WARNING, logger="crn_lightning.data.corpus_choice"):
        data.setup()
    assert data.corpus_info["split_by"] == "utterance"
    assert "splitting by utterance instead" in caplog.text
    # Named explicitly, the same corpus cannot be split by speaker: an error, not a fallback.
    data = data_module(tmp_path, embedded_dir, corpus="embedded", split_by="speaker")
    with pytest.raises(ConfigError, match="needs at least 3 speakers"):
        data.setup()


def test_null_speaker_lists_take_the_corpus_standard_held_out_speakers():
    speakers = ["a", "b", "klettres_fr", "klettres_nl", "tuxpaint_bg", "tuxpaint_ro"]
    roots = CorpusRoots(
        Path("s"), Path("n"), speakers, ["CITY"], "offline", [], offline_held_out(speakers)
    )
    split = speaker_split("speaker", "auto", roots, None, None)
    assert (split.val, split.test) == (
        ["klettres_nl", "tuxpaint_ro"],
        ["klettres_fr", "tuxpaint_bg"],
    )
    assert set(assign_speakers(speakers, split.val, split.test, 0)["train"]) == {"a", "b"}
    # Named speakers win; a subset without the standard voices has no standard split.
    assert speaker_split("speaker", "auto", roots, ["a"], None).val == ["a"]
    assert offline_held_out(["a", "b", "klettres_fr"]) is None
    assert speaker_split("utterance", "auto", roots, None, None).val is None
