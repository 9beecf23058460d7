"""Draw the README's example figure: noisy / enhanced / clean spectrograms of one test clip of
a finished run, enhanced by its best checkpoint, with the clip's PESQ measured here.

    python docs/make_example_figure.py RUN_DIR docs/example_spectrograms.png \
        --environment NPARK --snr 5 --utterance 0

Uses the package's own pieces: finished_runs.load_run / checkpoint_path, results.run_datamodule,
Enhancer.from_checkpoint, examples.enhance_grid, results.clip_scores and viz.spectrogram_figure.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

from crn_lightning import finished_runs, results, viz
from crn_lightning.enhancer import Enhancer
from crn_lightning.examples import enhance_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path, help="PNG to write (refuses to overwrite)")
    parser.add_argument("--environment", default=None, help="noise environment of the clip")
    parser.add_argument("--snr", type=float, default=None, help="test SNR of the clip (dB)")
    parser.add_argument("--utterance", type=int, default=0, help="test utterance index")
    parser.add_argument("--override", action="append", default=[], help="e.g. paths.cache_dir=…")
    parser.add_argument("--force", action="store_true", help="overwrite an existing PNG")
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        parser.error(f"{args.out} exists; pass --force to replace it")

    run = finished_runs.load_run(args.run_dir)
    datamodule = results.run_datamodule(run, args.override)
    indices = results.grid_indices(datamodule, "test", args.utterance, args.environment, args.snr)
    if not indices:
        parser.error("no test clip matches --environment/--snr/--utterance")
    index = indices[0]
    enhancer = Enhancer.from_checkpoint(finished_runs.checkpoint_path(run))
    batch = enhance_grid(enhancer, datamodule, "test", [index])
    noisy = results.clip_scores(batch["clean"][0], batch["noisy"][0])
    enhanced = results.clip_scores(batch["clean"][0], batch["enhanced"][0])
    fig = viz.spectrogram_figure(
        {
            f"noisy (PESQ {noisy['pesq']:.2f})": batch["noisy_mag"][0],
            f"enhanced (PESQ {enhanced['pesq']:.2f})": batch["enhanced_mag"][0],
            "clean": batch["clean_mag"][0],
        },
        datamodule.sample_rate,
        enhancer.stft.hop_length,
        title=f"{run.metrics['experiment']} model, test clip {index}: "
        f"{datamodule.describe('test', index)}",
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    # A 256-colour palette keeps the PNG small enough to commit (spectrograms are noisy).
    image = Image.open(buffer).convert("RGB").quantize(256)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(
        f"{args.out}: test clip {index} ({datamodule.describe('test', index)}), PESQ noisy "
        f"{noisy['pesq']:.2f} → enhanced {enhanced['pesq']:.2f}, "
        f"{args.out.stat().st_size / 1024:.0f} KB"
    )


if __name__ == "__main__":
    main()
