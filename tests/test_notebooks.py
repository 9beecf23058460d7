"""The notebooks: committed clean, and executed end to end against a tiny sweep made here."""

import shlex
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, TINY, run_train
from nbclient import NotebookClient

NOTEBOOKS = ROOT / "notebooks"
DATA_NOTEBOOK = NOTEBOOKS / "01_data_and_features.ipynb"
RESULTS_NOTEBOOK = NOTEBOOKS / "02_results.ipynb"


def test_committed_notebooks_are_valid_and_have_no_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [p.name for p in paths] == [DATA_NOTEBOOK.name, RESULTS_NOTEBOOK.name]
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name}: a cell has outputs; clear them"
                assert cell.execution_count is None, f"{path.name}: clear execution counts"


def execute(path: Path) -> dict:
    """Run every cell like Jupyter does (kernel in the notebook's folder); a failing cell
    raises. Returns the outputs: stdout text, and the count of each output kind."""
    notebook = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(NOTEBOOKS)}}
    NotebookClient(notebook, timeout=300, resources=resources).execute()
    text, kinds = [], {"image/png": 0, "text/markdown": 0, "audio": 0}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text.append(output.get("text", ""))
            data = output.get("data", {})
            kinds["image/png"] += "image/png" in data
            kinds["text/markdown"] += "text/markdown" in data
            kinds["audio"] += "<audio" in data.get("text/html", "")
            text.append(data.get("text/markdown", ""))
    return {"text": "\n".join(text), **kinds}


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, tiny_cache) -> tuple[Path, Path]:
    """A 2-job multirun (stft.n_fft 256 and 320, 1 epoch) of the TINY config: (sweep folder,
    corpus cache)."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    overrides = ("stft.n_fft=256,320", "trainer.max_epochs=1")
    result = run_train(tmp_path, *overrides, cache=tiny_cache, multirun=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multirun" / "quickstart").iterdir()
    return sweep, tiny_cache


@pytest.fixture(autouse=True)
def kernel_imports_this_checkout(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


@pytest.mark.slow
def test_data_notebook_runs_on_the_configured_corpus(tiny_sweep, monkeypatch):
    _, cache = tiny_sweep
    monkeypatch.setenv("CRN_OVERRIDES", shlex.join([*TINY, f"paths.cache_dir={cache}"]))
    out = execute(DATA_NOTEBOOK)
    assert f"corpus: embedded (ARCTIC {cache}" in out["text"]
    assert "every mixture is at its SNR within" in out["text"]
    # Waveforms, the model's features, spectrograms by FFT size, the resolution figure.
    assert out["image/png"] == 4
    assert out["audio"] == 1 + 2 + 1  # clean, the 2 SNRs, the whole utterance


@pytest.mark.slow
def test_results_notebook_on_a_sweep_and_on_a_single_run(tiny_sweep, monkeypatch):
    sweep, _ = tiny_sweep
    monkeypatch.setenv("CRN_RUN_DIR", str(sweep))
    out = execute(RESULTS_NOTEBOOK)
    assert "2 jobs; best by test PESQ" in out["text"]
    assert "stft.n_fft=256" in out["text"] and "stft.n_fft=320" in out["text"]
    assert "summary.csv:" in out["text"]  # written by the sweep callback (crn_lightning/sweep.py)
    # Curves, per SNR, per noise, PESQ vs SNR, PESQ vs n_fft, 2 example spectrograms.
    assert out["image/png"] == 7
    assert out["audio"] == 2 * 3  # noisy, enhanced, clean of each example

    monkeypatch.setenv("CRN_RUN_DIR", str(sweep / "1"))
    out = execute(RESULTS_NOTEBOOK)
    assert "is a single run, not a sweep: no sweep section here" in out["text"]
    assert out["image/png"] == 5
