"""The README and docs/: short README, generated parameter reference, node table, links."""

from pathlib import Path
import re

import pytest

from vla_ros.core.config import NODE_TABLES, parameter_reference

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / 'README.md'
DOCS = sorted((ROOT / 'docs').glob('*.md'))
REGENERATE = ('python -c "from vla_ros.core.config import parameter_reference; '
              'print(parameter_reference(), end=\'\')" > docs/parameters.md')


def test_the_readme_reads_in_five_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f'README.md has {len(lines)} lines: move detail into docs/'


def test_the_parameter_reference_is_generated_from_the_tables():
    written = (ROOT / 'docs' / 'parameters.md').read_text()
    assert written == parameter_reference(), f'docs/parameters.md is stale: run {REGENERATE}'


def node_table(readme: str) -> str:
    """The README's node table: the rows from its `| node (executable) |` header on."""
    start = readme.index('| node (executable) |')
    rows = []
    for line in readme[start:].splitlines():
        if not line.startswith('|'):
            break
        rows.append(line)
    return '\n'.join(rows)


def test_the_node_table_names_every_node_and_every_listed_topic():
    readme = README.read_text()
    table = node_table(readme)
    for node in NODE_TABLES:
        assert f'| `{node}` |' in table, f'README node table: no row for {node}'
    # The `ros2 topic list` block; test/nodes/test_config.py holds it to the running stack.
    listed = re.search(r'```text\n(/camera/image_raw\n.*?)```', readme, re.DOTALL).group(1)
    topics = [topic.removeprefix('/vla/') for topic in listed.split()
              if topic.startswith('/vla/') and not topic.endswith('/transition_event')]
    assert topics
    missing = [topic for topic in topics if f'`{topic}`' not in table]
    assert not missing, f'README: topics listed but in no node table row: {missing}'


def links(path: Path) -> list:
    text = re.sub(r'```.*?```', '', path.read_text(), flags=re.DOTALL)  # not in code blocks
    return re.findall(r'\]\(([^)\s]+)\)', text)


@pytest.mark.parametrize('path', [README, *DOCS], ids=lambda path: path.name)
def test_every_relative_link_points_to_a_file(path):
    broken = []
    for target in links(path):
        if target.startswith(('http://', 'https://', 'mailto:', '#')):
            continue
        if not (path.parent / target.split('#')[0]).exists():
            broken.append(target)
    assert not broken, f'{path.relative_to(ROOT)}: broken links {broken}'
