"""Commands as people type them: cleaning, and the object phrase a segmenter should look for."""

import re
import unicodedata

# Verb phrases that precede the object in a navigation command, longest first so that
# "go over to" wins over "go to". Configurable through the segmenter's `command_prefixes`.
DEFAULT_COMMAND_PREFIXES = (
    'please', 'can you', 'could you', 'go over to', 'go up to', 'go to', 'go towards',
    'go toward', 'move to', 'move towards', 'drive to', 'drive towards', 'head to',
    'head towards', 'navigate to', 'approach', 'find', 'look for', 'search for', 'locate',
    'reach', 'get to', 'come to', 'pick up', 'face', 'turn to', 'turn towards',
)
ARTICLES = ('the', 'a', 'an', 'that', 'this')
MAX_COMMAND_CHARS = 1000


def clean_command(text: str) -> tuple:
    """Normalise a typed command; return (clean text, list of what was changed and why).

    NFKC folds look-alike Unicode (full-width letters, ligatures); control and format
    characters (zero-width spaces, direction marks, NUL) are removed; white space is collapsed.
    Over-long input is cut to MAX_COMMAND_CHARS characters. An empty result means "no command".
    """
    notes = []
    if not isinstance(text, str):
        raise TypeError(f'a command is a string, got {type(text).__name__}')
    normalised = unicodedata.normalize('NFKC', text)
    kept = []
    removed = 0
    for char in normalised:
        category = unicodedata.category(char)
        if char in '\t\n\r\v\f':
            kept.append(' ')
        elif category in ('Cc', 'Cf', 'Cs', 'Co', 'Cn'):
            removed += 1
        else:
            kept.append(char)
    if removed:
        notes.append(f'removed {removed} control/format/unassigned character(s)')
    cleaned = ' '.join(''.join(kept).split())
    if len(cleaned) > MAX_COMMAND_CHARS:
        notes.append(f'cut from {len(cleaned)} to {MAX_COMMAND_CHARS} characters')
        cleaned = cleaned[:MAX_COMMAND_CHARS].rstrip()
    return cleaned, notes


def object_phrase(command: str, prefixes=DEFAULT_COMMAND_PREFIXES) -> str:
    """The thing a command refers to: "Go to the red ball!" -> "red ball".

    The rule: lower-case; drop trailing punctuation; repeatedly strip a leading prefix from
    `prefixes` (whole words, longest first) and a leading article; what is left is the
    phrase. A command with no known prefix is taken whole ("red ball" -> "red ball").
    """
    phrase = ' '.join(command.lower().split())
    phrase = re.sub(r'[\s.!?,;:]+$', '', phrase)
    ordered = sorted({p.strip().lower() for p in prefixes if p.strip()}, key=len, reverse=True)
    changed = True
    while changed and phrase:
        changed = False
        for prefix in (*ordered, *ARTICLES):
            if phrase == prefix:
                break
            if phrase.startswith(prefix + ' '):
                phrase = phrase[len(prefix) + 1:].lstrip(' ,')
                changed = True
                break
    return phrase


def command_object(command: str, prefixes=DEFAULT_COMMAND_PREFIXES) -> str:
    """What a typed command asks the segmenter to find: cleaned, then its object phrase."""
    return object_phrase(clean_command(command)[0], prefixes)
