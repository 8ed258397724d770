"""CLIP's own byte-level BPE tokenizer, cut to its first `merges` merge rules.

The vocabulary file OpenAI published with CLIP ships inside the `open-clip-torch` wheel. BPE
applies its merges in rank order, so keeping the first K merges is exactly CLIP's tokenizer at a
smaller vocabulary: common words stay single tokens with the same ids as in openai/clip-*, rare
words split into more pieces, and nothing becomes unknown (the 512 byte symbols stay). That keeps
the embedding table small enough to ship while any typed command still tokenizes.
"""

import gzip
import importlib.util
from pathlib import Path
import sys
import zipfile

VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz'
FULL_MERGES = 49152 - 256 - 2  # what CLIP itself uses of the file
CACHE = Path.home() / '.cache' / 'vla_ros'
WHEEL_FOLDERS = (Path(sys.prefix) / 'wheels', CACHE)  # `make setup` downloads it to the first


def byte_symbols():
    """CLIP's printable stand-ins for the 256 bytes, in CLIP's vocabulary order (printable
    bytes first, then the rest shifted above 255), so token ids match openai's.
    """
    printable = list(range(ord('!'), ord('~') + 1)) + list(range(ord('\xa1'), ord('\xac') + 1))
    printable += list(range(ord('\xae'), ord('\xff') + 1))
    others = [byte for byte in range(256) if byte not in printable]
    return [chr(byte) for byte in printable] + [chr(256 + n) for n in range(len(others))]


def find_vocab_file(explicit: str = '') -> Path:
    """The BPE file: an explicit path, the installed open_clip package, a wheel in the cache."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f'no BPE vocabulary file at {path}')
        return path
    spec = importlib.util.find_spec('open_clip')  # finds without importing (torchvision)
    if spec and spec.origin and (Path(spec.origin).parent / VOCAB_FILE).is_file():
        return Path(spec.origin).parent / VOCAB_FILE
    extracted = CACHE / VOCAB_FILE
    if extracted.is_file():
        return extracted
    wheels = [wheel for folder in WHEEL_FOLDERS for wheel in folder.glob('open_clip_torch-*.whl')]
    for wheel in sorted(wheels):
        with zipfile.ZipFile(wheel) as archive:
            CACHE.mkdir(parents=True, exist_ok=True)
            extracted.write_bytes(archive.read(f'open_clip/{VOCAB_FILE}'))
        return extracted
    raise FileNotFoundError(
        f'CLIP BPE vocabulary not found. Get it with: pip download --no-deps '
        f'open-clip-torch==3.3.0 -d {WHEEL_FOLDERS[0]}   (or pass --bpe-vocab PATH to '
        f'{VOCAB_FILE})')


def read_merges(path: Path, count: int):
    lines = gzip.open(path, 'rt', encoding='utf-8').read().split('\n')
    merges = [tuple(line.split()) for line in lines[1:FULL_MERGES + 1]]
    if not 0 <= count <= len(merges):
        raise ValueError(f'merges must be in [0, {len(merges)}], got {count}')
    return merges[:count]


def clip_bpe_tokenizer(merges: int, context_tokens: int, vocab_file: str = ''):
    """A `CLIPTokenizer` with CLIP's vocabulary cut to `merges` merges; the end token has the
    highest id (CLIP's text tower pools there).
    """
    from transformers import CLIPTokenizer

    rules = read_merges(find_vocab_file(vocab_file), merges)
    symbols = byte_symbols()
    tokens = symbols + [symbol + '</w>' for symbol in symbols]
    tokens += [''.join(rule) for rule in rules] + ['<|startoftext|>', '<|endoftext|>']
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=rules,
                         model_max_length=context_tokens)
