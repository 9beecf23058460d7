"""The project as a wheel: built from a copy of the sources, installed into a fresh virtual
environment (its dependencies seen through a .pth file: no network, torch not reinstalled),
and every entry point run from another folder with the configs the wheel carries."""

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

ENTRY_POINTS = ["train", "evaluate", "enhance", "export", "download"]  # Hydra apps


def _run(command: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("setuptools.command.bdist_wheel") is None:
        pytest.skip("building a wheel offline needs setuptools>=70.1 (the dev extras)")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy: the build writes build/ and *.egg-info into its folder
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("crn_lightning", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    _run([*pip, "-w", str(tmp / "dist"), str(source)], cwd=tmp)
    (built,) = (tmp / "dist").glob("crn_lightning-*.whl")
    return built


def test_the_wheel_holds_every_module_and_config_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "crn_lightning").rglob("*.py")}
    configs = {
        "crn_lightning/conf/" + str(p.relative_to(ROOT / "conf"))
        for p in (ROOT / "conf").rglob("*.yaml")
    }
    # A new conf/ folder must be added to the packages list in pyproject.toml.
    assert configs - names == set() and modules - names == set()


@pytest.mark.slow
def test_an_installed_wheel_runs_every_entry_point_from_any_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = str(venv / "bin" / "python")
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
    ).stdout.strip()
    # The dependencies (torch, lightning, hydra, ...) of the environment running the tests.
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "dependencies.pth").write_text("\n".join(sorted(shared)) + "\n")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target"]
    _run([*install, purelib, str(wheel)], cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # not this checkout
    where = _run(
        [python, "-c", "import crn_lightning; print(crn_lightning.__file__)"], elsewhere, env
    )
    assert where.stdout.strip().startswith(purelib)

    train = _run(
        [python, "-m", "crn_lightning.train", "experiment=quickstart", "--cfg", "job"],
        elsewhere,
        env,
    )
    assert "name: quickstart" in train.stdout and "_target_: crn_lightning.runs" in train.stdout
    for module in ENTRY_POINTS[1:]:
        _run([python, "-m", f"crn_lightning.{module}", "--cfg", "job"], elsewhere, env)
    summarize = _run([python, "-m", "crn_lightning.summarize", "--help"], elsewhere, env)
    assert "multirun folder" in summarize.stdout
    assert not any(elsewhere.iterdir())  # --cfg job writes nothing
