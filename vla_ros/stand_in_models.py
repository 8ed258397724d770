"""The embedded models when they exist, else tiny random stand-ins (the plumbing runs)."""

from pathlib import Path


def ensure_models(cache_dir: Path, quiet: bool = False):
    """The embedded default models, or tiny random stand-ins while models/ ships none."""
    from vla_ros.core import paths, tiny_models

    sources = {}
    for kind, build in (('clip', tiny_models.build_tiny_clip),
                        ('clipseg', tiny_models.build_tiny_clipseg)):
        embedded = paths.default_model_dir(kind)
        if (embedded / 'config.json').is_file():
            sources[kind] = str(embedded)
            continue
        stand_in = cache_dir / f'tiny-random-{kind}'
        if not (stand_in / 'config.json').is_file():
            build(stand_in)
        if not quiet:
            print(f'no embedded {kind} model in {embedded.parent}; using a tiny '
                  f'RANDOM {kind} at {stand_in} (the plumbing runs, the outputs mean nothing)')
        sources[kind] = str(stand_in)
    return sources
