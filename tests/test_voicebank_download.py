"""dataset=voicebank_demand against a local HTTP server serving tiny zips in the real layout
(<stem>.zip holding <stem>/pNNN_NNN.wav at 48 kHz), as for ARCTIC/DEMAND in test_download.py."""

import hashlib
import io
import zipfile

import numpy as np
import pytest
import soundfile as sf
from audio_trees import voice
from conftest import compose, run_cli
from http_server import Server
from hydra.utils import instantiate

from crn_lightning.audio import resample
from crn_lightning.data.archives import DownloadError, download
from crn_lightning.data.voicebank import VOICEBANK_ARCHIVES, voicebank_plan, voicebank_root
from crn_lightning.stft import STFT

RATE = 48000
FILES = {
    "train": ["p226_001", "p226_002", "p287_001", "p230_001", "p230_002", "p231_001"],
    "test": ["p232_001", "p257_001"],
}


def _signals(name: str) -> tuple[np.ndarray, np.ndarray]:
    seed = int(name[1:4]) * 1000 + int(name[5:])
    clean = voice(0.6, 100 + seed % 97, RATE)
    noise = 0.03 * np.random.default_rng(seed).standard_normal(len(clean)).astype(np.float32)
    return clean, clean + noise


def build_zips() -> dict[str, bytes]:
    zips = {}
    for (part, kind), stem in VOICEBANK_ARCHIVES.items():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name in FILES[part]:
                wav = io.BytesIO()
                sf.write(wav, _signals(name)[kind == "noisy"], RATE, format="WAV", subtype="PCM_16")
                z.writestr(f"{stem}/{name}.wav", wav.getvalue())
        zips[f"{stem}.zip"] = buffer.getvalue()
    return zips


@pytest.fixture(scope="module")
def server():
    served = Server(build_zips())
    yield served
    served.httpd.shutdown()


def sha256s(server: Server) -> dict[str, str]:
    # Not DataShare's archives: their checksums are given as a user gives a mirror's.
    return {n.removesuffix(".zip"): hashlib.sha256(d).hexdigest() for n, d in server.files.items()}


def test_download_resamples_once_into_the_pairs_layout(server, tmp_path):
    server.mode = {}
    archives = voicebank_plan(tmp_path, server.url, ["train", "test"], 16000, sha256s(server))
    assert download(archives, tmp_path) == [f"{stem}.zip" for stem in VOICEBANK_ARCHIVES.values()]
    root = voicebank_root(tmp_path)
    for part, names in FILES.items():
        for kind in ("clean", "noisy"):
            files = sorted(p.stem for p in (root / part / kind).iterdir())
            assert files == sorted(names)
        audio, rate = sf.read(root / part / "noisy" / f"{names[0]}.wav", dtype="float32")
        assert (
            rate == 16000 and sf.info(root / part / "noisy" / f"{names[0]}.wav").subtype == "PCM_16"
        )
        pcm = sf.read(io.BytesIO(_wav_at_48k(names[0])), dtype="float32")[0]
        assert np.abs(audio - resample(pcm, RATE, 16000)).max() < 2 / 32768  # one PCM step
    assert not any((tmp_path / ".downloads").iterdir())
    assert not [p for p in tmp_path.rglob(".extract-*")]
    assert download(archives, tmp_path) == []  # in place: nothing fetched again


def _wav_at_48k(name: str) -> bytes:
    wav = io.BytesIO()
    sf.write(wav, _signals(name)[1], RATE, format="WAV", subtype="PCM_16")
    return wav.getvalue()


def test_the_published_md5_rejects_another_archive(server, tmp_path):
    server.mode = {}
    archives = voicebank_plan(tmp_path, server.url, ["test"], 16000)
    assert archives[0].md5 == "34eb1c0ba7ef667e9b966866c542fc16"
    with pytest.raises(DownloadError, match="md5 .* does not match the expected 34eb1c0b"):
        download(archives, tmp_path)
    assert not (voicebank_root(tmp_path) / "test").exists()
    assert not (tmp_path / ".downloads" / "clean_testset_wav.zip").exists()


def test_an_archive_fetched_whole_is_not_fetched_again(server, tmp_path):
    # An interrupted extraction (or resampling) leaves the complete archive in .downloads.
    (tmp_path / ".downloads").mkdir()
    (tmp_path / ".downloads" / "clean_testset_wav.zip").write_bytes(
        server.files["clean_testset_wav.zip"]
    )
    server.mode, server.requests = {"clean_testset_wav.zip": "error"}, []
    archives = voicebank_plan(tmp_path, server.url, ["test"], 16000, sha256s(server))
    download(archives, tmp_path)
    assert server.requests == ["noisy_testset_wav.zip"]
    assert (voicebank_root(tmp_path) / "test" / "clean" / "p257_001.wav").is_file()
    with pytest.raises(DownloadError, match=r"voicebank_demand.parts=\['dev'\]"):
        voicebank_plan(tmp_path, server.url, ["dev"], 16000)


@pytest.mark.slow
def test_cli_download_then_the_experiments_data_holds_out_p226_and_p287(server, tmp_path):
    server.mode = {}
    data = tmp_path / "data"
    args = [
        "dataset=voicebank_demand",
        f"paths.data_dir={data}",
        f"voicebank_demand.base_url={server.url}",
        "sha256={" + ",".join(f"{k}:{v}" for k, v in sha256s(server).items()) + "}",
    ]
    dry = run_cli("download", *args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"fetch    {server.url}/clean_testset_wav.zip -> {data}/voicebank_demand/test/clean" in (
        dry.stdout
    )
    fetched = run_cli("download", *args, cwd=tmp_path, timeout=300)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    assert "done: 4 fetched, 0 already present" in fetched.stdout + fetched.stderr

    cfg = compose("experiment=voicebank_demand", f"paths.data_dir={data}", "data.num_workers=0")
    module = instantiate(cfg.data, stft=STFT(320, 160))
    module.setup()
    assert module.corpus_info["stage_speakers"] == {
        "train": ["p230", "p231"], "val": ["p226", "p287"], "test": ["p232", "p257"]
    }  # fmt: skip
    assert module.corpus_info["utterances"] == {"train": 3, "val": 3, "test": 2}
    assert module.corpus_info["skipped_files"] == []
