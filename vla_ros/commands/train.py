"""`vla-ros train`: train the embedded CLIP (three stages) or CLIPSeg on rendered views."""

from pathlib import Path
import random
import sys

from vla_ros.core import paths
from vla_ros.core.config import DEVICES
from vla_ros.training.data import HELD_OUT_PARAPHRASES


def run_train(args) -> int:
    import torch

    from vla_ros.training.stages.clip import train_clip
    from vla_ros.training.stages.clipseg import train_clipseg
    from vla_ros.training.stages.crops import train_crops
    from vla_ros.training.stages.intents import train_intents

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('[train] --device cuda: no CUDA device here; use --device cpu', file=sys.stderr)
        return 2
    args.device = torch.device('cuda' if args.device == 'cuda' or (
        args.device == 'auto' and torch.cuda.is_available()) else 'cpu')
    torch.manual_seed(args.seed)
    args.output = args.output or f'runs/models/{args.kind}'
    for folder in [args.data, *args.extra_data]:
        if not (Path(folder) / 'train.npz').is_file():
            print(f'[train] no {Path(folder) / "train.npz"}: render it first with '
                  f'`vla-ros dataset --split train --output {folder}`', file=sys.stderr)
            return 2
    if args.kind != 'clip' and not (Path(args.clip) / 'config.json').is_file():
        print(f'[train] no CLIP at {args.clip}: train it first (`vla-ros train clip`)',
              file=sys.stderr)
        return 2
    Path(args.output).mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)  # prompt and batch draws; nothing draws from it before training
    return {'clip': train_clip, 'intents': train_intents, 'crops': train_crops,
            'clipseg': train_clipseg}[
        args.kind](args)


def add_arguments(parser):
    parser.add_argument('kind', choices=('clip', 'intents', 'crops', 'clipseg'),
                        help='clip: contrastive CLIP; intents: its second stage (text tower '
                        "tuned to the policy's intents); crops: its third (vision tower tuned "
                        'on crops of single objects too, for the target verifier); clipseg: '
                        'CLIPSeg on a trained CLIP')
    parser.add_argument('--data', default='runs/dataset', help='folder with train.npz/.jsonl')
    parser.add_argument('--output', default=None, help='default: runs/models/<kind>')
    parser.add_argument('--clip', default=str(paths.default_model_dir('clip')),
                        help='(intents, crops, clipseg) the trained CLIP they start from')
    parser.add_argument('--steps', type=int, default=3000)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--lr', type=float, default=5e-4)
    parser.add_argument('--weight-decay', type=float, default=0.05)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = default)')
    parser.add_argument('--device', choices=DEVICES, default='auto',
                        help='where to train (auto: a CUDA GPU if there is one)')
    parser.add_argument('--no-bf16', dest='bf16', action='store_false',
                        help='train in float32 matmuls (default: bfloat16 autocast)')
    parser.add_argument('--checkpoint-every', type=int, default=100)
    parser.add_argument('--no-resume', dest='resume', action='store_false',
                        help='start over even if OUTPUT/checkpoint.pt exists')
    parser.add_argument('--bpe-vocab', default='', help="(clip) path to CLIP's "
                        'bpe_simple_vocab_16e6.txt.gz; default: from the open-clip-torch wheel')
    parser.add_argument('--exclude-phrases', default=str(HELD_OUT_PARAPHRASES),
                        help='(clip) YAML of held-out intent paraphrases never trained on')
    parser.add_argument('--intent-groups', type=int, default=8,
                        help='(clip) phrasings of each intent per step')
    parser.add_argument('--intent-weight', type=float, default=0.5)
    parser.add_argument('--min-intent-similarity', type=float, default=0.5,
                        help="(intents) the policy's min_intent_similarity to clear")
    parser.add_argument('--absent-fraction', type=float, default=0.3,
                        help='(clipseg) prompts naming nothing in view (target: empty mask)')
    parser.add_argument('--hard-negative-fraction', type=float, default=0.0,
                        help='(clipseg) share of those that name the colour or the shape of '
                        'something in view (0.5 was tried: held-out mIoU fell, see '
                        'benchmarks/README.md)')
    parser.add_argument('--extra-data', nargs='*', default=[],
                        help='(clipseg) more dataset folders whose train split is added, e.g. '
                        'views rendered with `vla-ros dataset --anywhere-fraction 1`')
    parser.add_argument('--image-size', type=int, default=None,
                        help="(clipseg) input size if not the CLIP's own (its position "
                        'embeddings are interpolated to the new grid)')
    parser.add_argument('--backbone-lr-factor', type=float, default=0.2,
                        help='(clipseg) learning rate of the CLIP towers relative to --lr; '
                        '0 freezes them (their features are then computed once)')

