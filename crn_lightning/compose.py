"""Where the Hydra configs are, and composing them outside a Hydra app (notebooks, tests,
benchmarks) as the entry points compose them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

_PACKAGE_DIR = Path(__file__).resolve().parent
# An installed wheel carries the configs inside the package (pyproject.toml maps conf/ to
# crn_lightning/conf); a checkout or an editable install reads the repository's conf/.
_INSTALLED = (_PACKAGE_DIR / "conf" / "config.yaml").is_file()
CONFIG_DIR = _PACKAGE_DIR / "conf" if _INSTALLED else _PACKAGE_DIR.parent / "conf"
# Relative paths.* of a config composed here: the checkout's root (where the commands are run
# from, whatever folder a notebook runs in), or the current folder for an installed package.
PROJECT_ROOT = Path.cwd() if _INSTALLED else _PACKAGE_DIR.parent


def compose_config(
    overrides: Sequence[str] = (), config_name: str = "config", return_hydra_config: bool = False
) -> DictConfig:
    """A config as ``python -m crn_lightning.<entry point> <overrides>`` composes it (the
    training config by default; with its ``hydra`` node if asked), with relative ``paths.*``
    made absolute against ``PROJECT_ROOT``."""
    from hydra import compose, initialize_config_dir

    from crn_lightning.config import register_configs
    from crn_lightning.finished_runs import absolute_paths

    register_configs()  # the schemas conf/config.yaml names in its defaults
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, list(overrides), return_hydra_config=return_hydra_config)
    absolute_paths(cfg, PROJECT_ROOT, CONFIG_DIR)
    return cfg
