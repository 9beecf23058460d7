"""The downloader against a local HTTP server serving small archives in the real formats."""

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli, tiny_train_args
from http_server import Server

from crn_lightning.data.archives import DownloadError, download
from crn_lightning.data.corpora import arctic_present, demand_present
from crn_lightning.data.downloads import arctic_demand_plan

SR = 16000
SPEAKERS, ENVIRONMENTS = ["bdl", "slt"], ["PRESTO", "NPARK"]


def _wav(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), SR, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def build_archives() -> dict[str, bytes]:
    """cmu_us_<spk>_arctic.tar.bz2 (cmu_us_<spk>_arctic/wav/*.wav) and <ENV>_16k.zip
    (<ENV>/ch01.wav ...), as festvox and Zenodo serve them, with tiny content."""
    rng = np.random.default_rng(0)
    files = {}
    for s, speaker in enumerate(SPEAKERS):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:
            for u in range(5):
                t = np.arange(int((1.5 + 0.2 * u) * SR)) / SR
                voice = sum(np.sin(2 * np.pi * (120 + 80 * s) * k * t) / k for k in range(1, 6))
                data = _wav(0.2 * voice * np.clip(np.sin(np.pi * t / t[-1]) * 3, 0, 1))
                info = tarfile.TarInfo(f"cmu_us_{speaker}_arctic/wav/arctic_a{u + 1:04d}.wav")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        files[f"cmu_us_{speaker}_arctic.tar.bz2"] = buffer.getvalue()
    for env in ENVIRONMENTS:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for channel in (1, 2):
                noise = 0.05 * rng.standard_normal(12 * SR)
                z.writestr(f"{env}/ch{channel:02d}.wav", _wav(noise))
        files[f"{env}_16k.zip"] = buffer.getvalue()
    return files


@pytest.fixture(scope="module")
def server():
    served = Server(build_archives())
    yield served
    served.httpd.shutdown()


def sha256s(server: Server) -> dict[str, str]:
    # The test archives are not festvox's: give their checksums as a user gives a mirror's.
    return {
        s: hashlib.sha256(server.files[f"cmu_us_{s}_arctic.tar.bz2"]).hexdigest() for s in SPEAKERS
    }


def archives(server: Server, data_dir: Path, checksums=None):
    return arctic_demand_plan(
        data_dir, server.url, SPEAKERS, server.url, ENVIRONMENTS, checksums or sha256s(server)
    )


def nothing_partial(data_dir: Path) -> bool:
    # No corpus folder without its files, and no archive or extraction left behind.
    leftovers = [p for p in data_dir.rglob("*") if ".extract-" in p.name or p.suffix == ".zip"]
    return (
        not leftovers
        and not any(data_dir.glob("DEMAND/*"))
        and not any(data_dir.glob("cmu_arctic/*"))
    )


def test_a_server_error_is_clear_and_leaves_nothing(server, tmp_path):
    server.mode = {"cmu_us_bdl_arctic.tar.bz2": "error"}
    with pytest.raises(DownloadError, match=r"cmu_us_bdl_arctic.tar.bz2: the server answered 500"):
        download(archives(server, tmp_path), tmp_path)
    assert nothing_partial(tmp_path)


def test_a_truncated_download_fails_then_resumes_with_a_range_request(server, tmp_path):
    server.mode, server.ranges = {"cmu_us_bdl_arctic.tar.bz2": "truncate"}, []
    with pytest.raises(DownloadError, match="truncated download") as err:
        download(archives(server, tmp_path), tmp_path)
    assert "run the command again to resume" in str(err.value)
    part = tmp_path / ".downloads" / "cmu_us_bdl_arctic.tar.bz2.part"
    kept = part.stat().st_size
    assert 0 < kept < len(server.files["cmu_us_bdl_arctic.tar.bz2"])
    assert nothing_partial(tmp_path) and not arctic_present(tmp_path / "cmu_arctic", ["bdl"])

    server.mode = {}
    download(archives(server, tmp_path), tmp_path)
    assert server.ranges == [("cmu_us_bdl_arctic.tar.bz2", kept)]  # only the missing part
    assert arctic_present(tmp_path / "cmu_arctic", SPEAKERS)
    assert demand_present(tmp_path / "DEMAND", ENVIRONMENTS, 1)
    assert not any((tmp_path / ".downloads").iterdir())


@pytest.mark.parametrize("name", ["cmu_us_slt_arctic.tar.bz2", "NPARK_16k.zip"])
def test_a_corrupt_archive_is_rejected_and_leaves_no_partial_corpus(server, tmp_path, name):
    server.mode = {name: "corrupt"}
    expected = "does not match the expected" if name.endswith("bz2") else "not a valid archive"
    with pytest.raises(DownloadError, match=expected):
        download(archives(server, tmp_path), tmp_path)
    target = "cmu_arctic/cmu_us_slt_arctic" if name.endswith("bz2") else "DEMAND/NPARK"
    assert not (tmp_path / target).exists()
    assert not (tmp_path / ".downloads" / name).exists()  # fetched afresh next time
    server.mode = {}


def test_the_known_festvox_checksum_rejects_another_archive(server, tmp_path):
    server.mode = {}
    with pytest.raises(DownloadError, match="26b91aaf48b2799b2956792b4632c2f926cd0542f4"):
        download(arctic_demand_plan(tmp_path, server.url, ["bdl"], server.url, []), tmp_path)


def test_unknown_names_are_clear_errors(tmp_path):
    with pytest.raises(DownloadError, match=r"unknown ARCTIC speakers \['bld'\]"):
        arctic_demand_plan(tmp_path, "u", ["bld"], "u", [])
    with pytest.raises(DownloadError, match=r"unknown DEMAND environments \['PARK'\]"):
        arctic_demand_plan(tmp_path, "u", [], "u", ["PARK"])


@pytest.mark.slow
def test_cli_dry_run_download_then_training_uses_the_real_corpus(server, tmp_path):
    server.mode = {}
    data = tmp_path / "data"
    args = [
        f"paths.data_dir={data}",
        f"arctic.base_url={server.url}",
        f"demand.base_url={server.url}",
        f"arctic.speakers=[{','.join(SPEAKERS)}]",
        f"demand.environments=[{','.join(ENVIRONMENTS)}]",
        "sha256={" + ",".join(f"{k}:{v}" for k, v in sha256s(server).items()) + "}",
    ]
    dry = run_cli("download", *args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"fetch    {server.url}/NPARK_16k.zip -> {data}/DEMAND/NPARK" in dry.stdout
    assert not data.exists()

    fetched = run_cli("download", *args, cwd=tmp_path, timeout=300)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    assert "done: 4 fetched, 0 already present" in fetched.stdout + fetched.stderr
    assert not list(tmp_path.glob(".hydra")) and not list(tmp_path.glob("*.log"))

    real = ("data.corpus=auto", f"paths.data_dir={data}", "trainer.fast_dev_run=true")
    trained = run_cli("train", *tiny_train_args(tmp_path, tmp_path / "cache", *real))
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "quickstart").iterdir()
    assert "corpus: real" in (run_dir / "train.log").read_text()
    corpus = json.loads((run_dir / "metrics.json").read_text())["corpus"]
    assert corpus["kind"] == "real" and corpus["arctic_root"] == str(data / "cmu_arctic")
    assert not (tmp_path / "cache").exists()  # the embedded corpus was never generated
