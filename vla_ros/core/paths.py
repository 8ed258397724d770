"""Where the package's shared files (config/, models/, launch/) live, installed or not."""

from functools import lru_cache
from pathlib import Path

PACKAGE = 'vla_ros'
SOURCE_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The source tree when running from a checkout (pip -e), else colcon's share/vla_ros."""
    if (SOURCE_ROOT / 'package.xml').is_file():
        return SOURCE_ROOT
    from ament_index_python.packages import get_package_share_directory
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (LookupError, OSError) as err:  # PackageNotFoundError is a KeyError
        raise RuntimeError(
            f'cannot find the installed share/{PACKAGE} folder ({err}); '
            'source the workspace (install/setup.bash) first') from None


def default_model_dir(kind: str) -> Path:
    """The embedded default model folder of a kind ('clip' or 'clipseg')."""
    return share_dir() / 'models' / kind


def default_params_file() -> Path:
    return share_dir() / 'config' / 'vla.yaml'
