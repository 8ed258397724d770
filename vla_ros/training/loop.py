"""The loop every training stage shares: pixels, schedule, checkpoints, progress, saving.

Progress is a tqdm bar with the running loss; a checkpoint (weights, optimiser, schedule,
random state) is written every `--checkpoint-every` steps to OUTPUT/checkpoint.pt and picked
up again by the same command. The finished model is a Hugging Face folder (config,
safetensors, tokenizer, processor) plus training.json, which the model card is written from.
"""

import json
import math
import os
from pathlib import Path
import random
import sys
import time


def pixel_values(processor, images, chunk: int = 512):
    """All images through the model's own processor once (the same resize and normalisation
    as the nodes), kept as one float tensor.
    """
    import torch
    from tqdm import tqdm

    parts = [processor(images=list(images[start:start + chunk]), return_tensors='pt')
             ['pixel_values'] for start in tqdm(range(0, len(images), chunk),
                                                desc='preprocess', unit='chunk')]
    return torch.cat(parts)


def schedule(optimizer, warmup: int, total: int):
    import torch

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Checkpointer:
    """Save and restore everything a resumed run needs to continue the same run."""

    def __init__(self, output: Path, every: int):
        self.path, self.every = output / 'checkpoint.pt', every

    def restore(self, model, optimizer, scheduler):
        import torch

        if not self.path.is_file():
            return 0, 0.0
        state = torch.load(self.path, weights_only=False, map_location='cpu')
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        random.setstate(state['python_rng'])
        torch.set_rng_state(state['torch_rng'])
        print(f'[train] resumed from {self.path} at step {state["step"]}', flush=True)
        return state['step'], state['seconds']

    def maybe_save(self, step, seconds, model, optimizer, scheduler, force=False):
        import torch

        if not force and step % self.every:
            return
        temporary = self.path.with_suffix('.tmp')
        torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                    'scheduler': scheduler.state_dict(), 'step': step, 'seconds': seconds,
                    'python_rng': random.getstate(), 'torch_rng': torch.get_rng_state()},
                   temporary)
        os.replace(temporary, self.path)  # a cut-off never leaves half a checkpoint


def device_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'


def run_loop(args, model, parameters, step_loss, output: Path, describe):
    """The shared loop: AdamW, warm-up + cosine, checkpoints, tqdm, training.json."""
    import torch
    from tqdm import tqdm

    optimizer = torch.optim.AdamW(parameters, weight_decay=args.weight_decay)
    scheduler = schedule(optimizer, min(200, args.steps // 10 + 1), args.steps)
    checkpoints = Checkpointer(output, args.checkpoint_every)
    step, seconds = checkpoints.restore(model, optimizer, scheduler) if args.resume else (0, 0.)
    resumed_at = step  # > 0: an earlier run (perhaps with other arguments) did the first steps
    model.train()
    history, running = [], None
    bar = tqdm(total=args.steps, initial=step, desc=f'train {args.kind}', unit='step')
    started = time.monotonic() - seconds
    while step < args.steps:
        # bfloat16 matmuls (fp32 weights and optimiser): ~20 % faster on CPUs with bf16 units.
        with torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss, parts = step_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f'{running:.3f}', **{k: f'{v:.3f}' for k, v in parts.items()})
        if step % 50 == 0:
            history.append({'step': step, 'loss': running, **parts})
        checkpoints.maybe_save(step, time.monotonic() - started, model, optimizer, scheduler,
                               force=step == args.steps)
    bar.close()
    model.eval()
    seconds = time.monotonic() - started
    record = {'kind': args.kind, 'command': ' '.join(['vla-ros'] + sys.argv[1:]),
              'seed': args.seed, 'steps': args.steps, 'batch': args.batch, 'lr': args.lr,
              'training_seconds': round(seconds, 1), 'torch_threads': torch.get_num_threads(),
              'device': device_name(args.device),
              'bf16_autocast': args.bf16, 'resumed_at_step': resumed_at,
              'final_loss': running, 'history': history, **describe}
    return record


def training_record(folder):
    """The training.json of the model a stage starts from (None if it has none)."""
    path = Path(folder) / 'training.json'
    return json.loads(path.read_text()) if path.is_file() else None


def save(model, processor, output: Path, record: dict) -> int:
    """The finished model as a Hugging Face folder, with its training record."""
    model.cpu()
    for parameter in model.parameters():  # save_pretrained wants contiguous tensors
        parameter.data = parameter.data.contiguous()
    model.save_pretrained(output)
    processor.save_pretrained(output)
    (output / 'training.json').write_text(json.dumps(record, indent=1))
    print(f'[train] saved {output} after {record["training_seconds"]:.0f} s', flush=True)
    return 0
