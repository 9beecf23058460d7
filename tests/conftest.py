import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
from fake_debs import install_fake_apt_get
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from crn_lightning.audio import write_audio
from crn_lightning.callbacks import ScoredCheckpoint
from crn_lightning.compose import compose_config
from crn_lightning.data.datamodule import ArcticDemandDataModule
from crn_lightning.stft import STFT

SR = 16000
ROOT = Path(__file__).resolve().parents[1]
# A whole train run in seconds: embedded corpus of 10 short utterances, 2 noises, 1 s clips,
# a tiny CRN, 2 epochs of 2 steps (the CLI and notebook tests share it).
TINY = [
    "experiment=quickstart",
    "data.corpus=embedded",  # explicit: auto could start a real build of the offline corpus
    "data.split_by=utterance",  # the embedded corpus has two speakers
    "data.embedded.utterances_per_speaker=5",
    "data.embedded.noise_seconds=12",
    "data.split.train=4",
    "data.split.val=2",
    "data.split.test=2",
    "data.snr_db=[0,10]",
    "data.clip_seconds=1.0",
    "data.train_clip_seconds=0.5",
    "data.epoch_length=8",
    "data.val_subset=null",
    "data.batch_size=4",
    "data.environments=[PRESTO,NPARK]",
    "data.num_workers=0",
    "model.channels=[4,8,8,16,16]",
    "model.lstm_hidden=32",
    "trainer.max_epochs=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
]


def cli_command(module: str, *args: str) -> list[str]:
    """``python -m crn_lightning.<module> <args>``: an entry point as a user runs it."""
    return [sys.executable, "-m", f"crn_lightning.{module}", *args]


def run_cli(
    module: str, *args: str, cwd: Path = ROOT, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run an entry point in a subprocess (from the project folder unless ``cwd``)."""
    command = cli_command(module, *args)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def tiny_train_args(tmp_path: Path, cache: Path, *overrides: str) -> list[str]:
    """The TINY training config with outputs under tmp_path and the corpus cache in cache."""
    return [
        *TINY,
        f"paths.cache_dir={cache}",
        f"paths.output_dir={tmp_path / 'outputs'}",
        *overrides,
    ]


def run_train(
    tmp_path: Path, *overrides: str, cache: Path | None = None, multirun: bool = False
) -> subprocess.CompletedProcess:
    """``python -m crn_lightning.train`` with the TINY config, outputs under tmp_path and the
    corpus cache in ``cache`` (default: tmp_path/cache)."""
    args = tiny_train_args(tmp_path, cache or tmp_path / "cache", *overrides)
    return run_cli("train", *(["-m"] if multirun else []), *args)


def train_tiny_crn(tmp_path: Path, *overrides: str) -> dict[str, Any]:
    """``python -m crn_lightning.train`` (the seed experiment) with a tiny CRN, no loader
    processes and no metric pool on the data ``overrides`` name, outputs and corpus cache
    under tmp_path; returns its run's ``metrics.json`` (``run_dir`` added)."""
    result = run_cli(
        "train",
        *overrides,
        "data.num_workers=0",
        "stft.n_fft=320",
        "model.channels=[4,8,8,16,16]",
        "model.lstm_hidden=32",
        "module.metric_workers=0",
        f"paths.output_dir={tmp_path / 'outputs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "seed").iterdir()
    return json.loads((run_dir / "metrics.json").read_text()) | {"run_dir": run_dir}


def compose(*overrides: str, hydra: bool = False) -> DictConfig:
    """The training config as the train entry point composes it (with its hydra node if
    asked); relative paths.* are taken from the project folder."""
    return compose_config(overrides, return_hydra_config=hydra)


def assert_constructor_defaults(node: DictConfig, cls: type, skip: Iterable[str] = ()) -> None:
    """Every key of a shipped config ``node`` (but ``_target_``, ``_convert_`` and ``skip``)
    holds the default ``cls`` is built with: one set of defaults. A subclass's own defaults
    win over those of the base constructors its ``**kwargs`` are passed to."""
    defaults = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("crn_lightning") and "__init__" in vars(klass):
            parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
            defaults |= {p.name: p.default for p in parameters if p.default is not p.empty}
    for key, value in node.items():
        if key in {"_target_", "_convert_", *skip}:
            continue
        default = defaults[key]
        default = list(default) if isinstance(default, tuple) else default
        default = dict(default) if isinstance(default, Mapping) else default
        assert value == default, key


def write_tiny_corpora(
    root: Path,
    speakers=("bdl", "slt"),
    utterances=6,
    environments=("PRESTO", "NPARK"),
    noise_seconds=8.0,
    seed=0,
) -> tuple[Path, Path]:
    """Tiny ARCTIC and DEMAND trees in their real layouts: harmonic 'speech' bursts of
    1.2–2.4 s per utterance and coloured noise per environment."""
    rng = np.random.default_rng(seed)
    arctic, demand = root / "cmu_arctic", root / "DEMAND"
    for s, speaker in enumerate(speakers):
        for u in range(utterances):
            seconds = 1.2 + 1.2 * rng.random()
            t = np.arange(int(seconds * SR)) / SR
            f0 = 110 + 90 * s + 20 * rng.random()
            voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
            envelope = np.clip(np.sin(np.pi * t / seconds) * 3, 0, 1)
            path = arctic / f"cmu_us_{speaker}_arctic" / "wav" / f"arctic_a{u + 1:04d}.wav"
            write_audio(path, 0.2 * voice * envelope, SR)
    for e, env in enumerate(environments):
        white = rng.standard_normal(int(noise_seconds * SR))
        noise = np.convolve(white, np.ones(e + 2) / (e + 2), mode="same")
        write_audio(demand / env / "ch01.wav", 0.1 * noise / np.abs(noise).max(), SR)
    return arctic, demand


def tiny_arctic_demand(arctic: Path, demand: Path, **overrides: Any) -> ArcticDemandDataModule:
    """The ARCTIC/DEMAND data module (not set up) on ``write_tiny_corpora``'s trees: the real
    corpus, 2 environments, 6/2/2 utterances, 0 and 10 dB, 1 s clips, batches of 4, no loader
    processes; ``overrides`` change any of its keyword arguments."""
    options = dict(
        corpus="real",
        environments=["PRESTO", "NPARK"],
        split={"train": 6, "val": 2, "test": 2},
        snr_db=[0, 10],
        clip_seconds=1.0,
        batch_size=4,
        num_workers=0,
        seed=0,
    )
    return ArcticDemandDataModule(STFT(320, 160), str(arctic), str(demand), **options | overrides)


def cpu_trainer(**options: Any) -> L.Trainer:
    """A real Trainer for in-process runs: CPU, no logger, no progress bar, the loaders' own
    sampler; checkpointing only through a ModelCheckpoint among ``callbacks``. ``options``
    are Trainer arguments (they win over these)."""
    callbacks = options.get("callbacks", [])
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=checkpointing,
        enable_progress_bar=False,
        use_distributed_sampler=False,
    )
    return L.Trainer(**defaults | options)


def every_epoch_checkpoint(dirpath: Path, monitor: str, **options: Any) -> ScoredCheckpoint:
    """A ScoredCheckpoint keeping every ranked epoch as ``e<epoch>.ckpt`` (highest
    ``monitor`` best) and ``last.ckpt``; ``options`` add ScoredCheckpoint arguments."""
    return ScoredCheckpoint(
        dirpath=dirpath,
        filename="e{epoch}",
        auto_insert_metric_name=False,
        monitor=monitor,
        mode="max",
        save_top_k=-1,
        save_last=True,
        **options,
    )


@pytest.fixture
def tiny_corpora(tmp_path):
    return write_tiny_corpora(tmp_path)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """One corpus cache for every TINY run of the session: the embedded corpus is generated
    once (about 10 s of eSpeak) and verified by the runs after."""
    return tmp_path_factory.mktemp("tiny_cache")


@pytest.fixture(scope="session", autouse=True)
def no_real_apt_get(tmp_path_factory: pytest.TempPathFactory):
    """The suite never downloads real packages: an apt-get that refuses comes first on PATH
    (for subprocesses too), so a run that would build the real offline corpus fails (explicit
    data.corpus=offline) or falls back to the embedded corpus (auto) at once."""
    bin_dir = tmp_path_factory.mktemp("refusing-apt-get")
    script = bin_dir / "apt-get"
    script.write_text("#!/bin/sh\necho 'E: apt-get is disabled in the test suite' >&2\nexit 100\n")
    script.chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        yield


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake apt-get first on PATH (also for subprocesses) serving the .debs put into the
    folder it returns; see tests/fake_debs.py."""
    repo = tmp_path / "repo"
    repo.mkdir()
    bin_dir = tmp_path / "bin"
    install_fake_apt_get(bin_dir, repo)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return repo
