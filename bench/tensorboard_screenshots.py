"""Screenshots of a run's TensorBoard views in a real browser (headless Chromium).

Starts ``tensorboard --logdir RUN --host 127.0.0.1`` on a free port, opens each view in
headless Chromium, writes ``tensorboard_<view>.png`` per view into OUT and stops TensorBoard.
This is the browser check of what a user sees; the event-file test
(tests/test_tensorboard_layout.py) checks tags, steps and hparams on every CI run.

Chromium: ``--chromium PATH``, else ``$CHROMIUM``, else ``chromium-headless-shell`` /
``chromium`` on PATH. Without root, ``--fetch-chromium DIR`` downloads the Debian packages
(``apt-get download``: chromium-headless-shell and whatever it needs that the system lacks) and
unpacks them into DIR with ``dpkg-deb -x``; nothing is installed system-wide.

Usage:
    python bench/tensorboard_screenshots.py outputs/quickstart/<date_time> docs/ \
        [--fetch-chromium ~/.cache/crn_lightning/chromium]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# (file suffix, URL fragment): the views a researcher opens, in the order they use them.
VIEWS = (
    ("timeseries", "timeseries"),
    ("custom_scalars", "custom_scalars"),
    ("images", "images"),
    ("audio", "audio"),
    ("hparams", "hparams"),
)
HEADLESS_PACKAGE = "chromium-headless-shell"
BINARY_IN_PACKAGE = Path("usr/lib/chromium/chromium-headless-shell")


def _installed(package: str) -> bool:
    return subprocess.run(["dpkg", "-s", package], capture_output=True).returncode == 0


def _depends(package: str) -> list[str]:
    out = subprocess.run(
        ["apt-cache", "depends", package], capture_output=True, text=True, check=True
    ).stdout
    return [
        line.split(":", 1)[1].strip().strip("<>")
        for line in out.splitlines()
        if line.strip().startswith("Depends:")
    ]


def fetch_chromium(folder: Path) -> Path:
    """Headless Chromium unpacked from Debian packages into ``folder`` (no root)."""
    binary = folder / BINARY_IN_PACKAGE
    if binary.exists():
        return binary
    if shutil.which("apt-get") is None:
        sys.exit("--fetch-chromium needs apt-get (Debian/Ubuntu); pass --chromium PATH instead")
    wanted: list[str] = []
    queue = [HEADLESS_PACKAGE]
    while queue:  # the package and every dependency the system does not already have
        package = queue.pop()
        if package in wanted:
            continue
        wanted.append(package)
        queue += [d for d in _depends(package) if d not in wanted and not _installed(d)]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as debs:
        print(f"apt-get download {' '.join(wanted)}", flush=True)
        subprocess.run(["apt-get", "download", *wanted], cwd=debs, check=True)
        staging = Path(debs) / "root"
        for deb in sorted(Path(debs).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        for entry in staging.iterdir():  # moved into place only when every package unpacked
            target = folder / entry.name
            if target.exists():
                shutil.rmtree(target)
            entry.rename(target)
    return binary


def chromium_environment(binary: Path) -> dict[str, str]:
    """Library path for a Chromium unpacked from packages (its own libraries sit beside it)."""
    env = dict(os.environ)
    root = binary.parents[3] if binary.parts[-4:-1] == ("usr", "lib", "chromium") else None
    if root is not None:
        libs = [root / "usr/lib/x86_64-linux-gnu", root / "usr/lib/x86_64-linux-gnu/pulseaudio"]
        libs.append(binary.parent)
        env["LD_LIBRARY_PATH"] = ":".join([str(p) for p in libs] + [env.get("LD_LIBRARY_PATH", "")])
    return env


def find_chromium(explicit: str | None, fetch_into: Path | None) -> Path:
    if explicit:
        return Path(explicit)
    if fetch_into is not None:
        return fetch_chromium(fetch_into)
    for name in (os.environ.get("CHROMIUM"), HEADLESS_PACKAGE, "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return Path(found)
    sys.exit("no Chromium found: pass --chromium PATH or --fetch-chromium DIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"TensorBoard did not answer at {url} within {timeout_s:.0f} s")


def screenshot(chromium: Path, url: str, out: Path, size: str, wait_ms: int) -> None:
    command = [
        str(chromium),
        "--headless",
        "--no-sandbox",  # root in a container: Chromium refuses its sandbox
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={size}",
        f"--virtual-time-budget={wait_ms}",  # lets TensorBoard's JavaScript fetch and draw
        f"--screenshot={out}",
        url,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env=chromium_environment(chromium), timeout=180
    )
    if result.returncode != 0 or not out.exists():
        sys.exit(f"Chromium failed on {url}:\n{result.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (its TensorBoard events inside)")
    parser.add_argument("out", type=Path, help="folder for tensorboard_<view>.png")
    parser.add_argument("--chromium", help="path of a Chromium or chromium-headless-shell binary")
    parser.add_argument("--fetch-chromium", type=Path, help="unpack Chromium from Debian here")
    parser.add_argument("--size", default="1400,900", help="browser window, width,height")
    parser.add_argument("--wait-ms", type=int, default=20000, help="virtual time per view")
    args = parser.parse_args()
    if not any(args.run.rglob("events.out.tfevents.*")):
        sys.exit(f"{args.run}: no TensorBoard event files under it (a run folder expected)")
    chromium = find_chromium(args.chromium, args.fetch_chromium)
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    run_name = "/".join(args.run.resolve().parts[-2:])
    tensorboard = subprocess.Popen(
        # Named as ``tensorboard --logdir outputs`` names it (e.g. quickstart/<date_time>).
        [sys.executable, "-m", "tensorboard.main", "--logdir_spec", f"{run_name}:{args.run}"]
        + ["--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/data/runs", timeout_s=60)
        for name, fragment in VIEWS:
            out = args.out / f"tensorboard_{name}.png"
            screenshot(chromium, f"{base}/#{fragment}", out, args.size, args.wait_ms)
            print(f"{out}  ({out.stat().st_size // 1024} KiB)", flush=True)
    finally:
        tensorboard.terminate()
        tensorboard.wait(timeout=30)


if __name__ == "__main__":
    main()
