"""`vla-ros eval-models`: retrieval, zero-shot, intents, masks and speed of the models."""

import json
from pathlib import Path
import sys

from vla_ros.core.config import BACKENDS, PRECISIONS
from vla_ros.sim.scene import object_names
from vla_ros.training.measure import (
    _load,
    clip_metrics,
    intent_metrics,
    PARAPHRASES,
    pipeline_speed,
    segmentation_metrics,
    verification_metrics,
)


def run_measure(args) -> int:
    import torch

    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import load_model, ModelLoadError
    from vla_ros.core.segmentation import Fovea
    from vla_ros.core.verification import TargetVerifier, VerifierConfig

    if args.write_cards and args.backend != 'torch':
        print('[eval-models] --write-cards: the model cards record the models on torch; '
              'measure another backend without it', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        runtime = {'backend': args.backend, 'precision': args.precision,
                   'threads': args.threads}
        encoder = ClipEncoder(load_model('clip', args.clip, device='cpu', **runtime))
        segmenter = ClipSegSegmenter(load_model('clipseg', args.clipseg, device='cpu',
                                                **runtime))
    except ModelLoadError as error:
        print(f'[eval-models] {error}', file=sys.stderr)
        return 2
    # Views of different scenes: nothing carries over from one to the next.
    verifier = TargetVerifier(encoder, VerifierConfig(contrasts=object_names(), recheck_frames=0))
    results = {'clip': encoder.name, 'clipseg': segmenter.name, 'dim': encoder.dim,
               'torch_threads': torch.get_num_threads(),
               'runtimes': {'clip': encoder.loaded.runtime,
                            'clipseg': segmenter.loaded.runtime}}
    print(f'[eval-models] CLIP on {encoder.loaded.runtime}; CLIPSeg on '
          f'{segmenter.loaded.runtime}', flush=True)
    splits = {'seen': _load(args.seen), 'held_out': _load(args.heldout)}
    for label, split in splits.items():
        print(f'[eval-models] CLIP on {label} views ...', flush=True)
        results[f'clip_{label}'] = clip_metrics(encoder, split, label)
        print(f'[eval-models] CLIPSeg on {label} views ...', flush=True)
        results[f'clipseg_{label}'] = segmentation_metrics(segmenter, split, label)
        print(f'[eval-models] target verification on {label} views ...', flush=True)
        results[f'verification_{label}'] = verification_metrics(verifier, segmenter, split,
                                                                label)
    results['intents'] = intent_metrics(encoder, Path(args.paraphrases))
    results['speed'], results['speed_without_fovea'] = pipeline_speed(
        encoder, segmenter, verifier, list(splits['seen'].images[:20]), [Fovea(), None])
    text = json.dumps(results, indent=1)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + '\n')
        print(f'[eval-models] wrote {args.output}')
    if args.write_cards:
        from vla_ros.training.cards import write_cards

        write_cards(encoder.loaded.source, segmenter.loaded.source, results)
    return 0


def add_arguments(parser):
    parser.add_argument('--clip', default='', help="CLIP folder or id ('' = the embedded one)")
    parser.add_argument('--clipseg', default='', help="CLIPSeg folder or id ('' = embedded)")
    parser.add_argument('--seen', default='runs/dataset-val/train',
                        help='DIR/SPLIT of rendered views of the training combinations '
                        '(new scenes: `vla-ros dataset --seed 100000 ...`)')
    parser.add_argument('--heldout', default='runs/dataset/heldout',
                        help='DIR/SPLIT of held-out views (`vla-ros dataset --split heldout`)')
    parser.add_argument('--paraphrases', default=str(PARAPHRASES),
                        help='YAML of intent -> held-out paraphrases')
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--backend', default='torch', choices=BACKENDS,
                        help='the runtime the models are measured on (the accuracy gate of '
                        'another backend: run it once with each)')
    parser.add_argument('--precision', default='default', choices=PRECISIONS,
                        help='with the openvino backend: default (bf16 where the CPU has it), '
                        'f32, or int8 (VNNI or AMX CPUs)')
    parser.add_argument('--output', default='', help='write the results as JSON here too')
    parser.add_argument('--write-cards', action='store_true',
                        help="write each model folder's README.md (model card) from the results")
