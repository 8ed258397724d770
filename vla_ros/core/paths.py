"""Where the package's shared files (config/, models/, launch/) live, installed or not."""

from functools import lru_cache
from pathlib import Path

PACKAGE = 'vla_ros'
SOURCE_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """share/vla_ros of a colcon install, else the source tree (pip -e development venv)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        from ament_index_python.packages import PackageNotFoundError
    except ImportError:
        return SOURCE_ROOT
    try:
        return Path(get_package_share_directory(PACKAGE))
    except PackageNotFoundError:
        return SOURCE_ROOT


def default_model_dir(kind: str) -> Path:
    """The embedded default model folder of a kind ('clip' or 'clipseg')."""
    return share_dir() / 'models' / kind


def default_params_file() -> Path:
    return share_dir() / 'config' / 'vla.yaml'
