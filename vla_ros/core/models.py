"""Load CLIP and CLIPSeg from a Hugging Face id or a local folder through one code path.

Both kinds of source go through ``from_pretrained``; a folder is just an id that happens to
exist on disk. Every failure is turned into one :class:`ModelLoadError` whose message names the
source and says what to do, so a node can print one line instead of a 40-line traceback.
"""

from dataclasses import dataclass
import json
import os
from pathlib import Path
import sys
import threading
from typing import Any

import torch

from vla_ros.core import paths
from vla_ros.core.backends import (
    BACKENDS,
    COMPILE_MODES,
    int8_problem,
    make_engine,
    openvino_installed,
    PRECISIONS,
)
from vla_ros.core.config import DEVICES  # noqa: F401 (where callers find it)
from vla_ros.core.errors import ModelLoadError  # noqa: F401 - where callers find it
from vla_ros.core.preprocessing import TorchImageProcessor, use_torch_preprocessing

DTYPES = {
    'float32': torch.float32,
    'float16': torch.float16,
    'bfloat16': torch.bfloat16,
}
KINDS = ('clip', 'clipseg')


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference: weights in eval mode on `device`, with its processor."""

    kind: str
    source: str
    name: str
    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    backend: str = 'torch'  # resolved: 'torch' or 'openvino'
    engine: Any = None  # what the encoders run (vla_ros.core.backends)
    image_preprocessor: Any = None  # core.preprocessing's, or None: the processor's own

    @property
    def runtime(self) -> str:
        """Backend, device and precision in words, for logs and /diagnostics."""
        if self.image_preprocessor is None:
            return self.engine.description
        return f'{self.engine.description}, preprocessing with torch on {self.device}'

    def pixel_values(self, images) -> torch.Tensor:
        """(N, 3, h, w) model input of N HxWx3 uint8 RGB arrays."""
        if self.image_preprocessor is not None:
            return self.image_preprocessor(images)
        # Arrays here are HxWx3; left to guess, the processor takes a 1- or 3-pixel-high
        # frame for channels-first and fails. The image processor itself: the processor
        # wrapper's argument handling cost 0.2 ms.
        return self.processor.image_processor(images=list(images), return_tensors='pt',
                                              input_data_format='channels_last')['pixel_values']


def resolve_device(device: str) -> torch.device:
    """Map the `device` parameter (auto|cpu|cuda[:N]) to a torch device, or explain why not."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cpu':
        return torch.device('cpu')
    if device == 'cuda' or device.startswith('cuda:'):
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"device '{device}' was requested but this machine has no usable CUDA GPU "
                "(torch.cuda.is_available() is False); set device to 'auto' or 'cpu'.")
        return torch.device(device)
    raise ModelLoadError(f"device '{device}' is not one of auto, cpu, cuda, cuda:N.")


def resolve_backend(backend: str, device: torch.device, dtype: str = 'float32') -> str:
    """Map the `backend` parameter to 'torch' or 'openvino', or explain why it cannot run.

    auto: OpenVINO on a CPU where it is installed and the dtype is float32 (a bfloat16 dtype
    asks for torch's own CPU kernels), torch otherwise (CUDA).
    """
    if backend not in BACKENDS:
        raise ModelLoadError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}.")
    if backend == 'auto':
        usable = device.type == 'cpu' and dtype == 'float32' and openvino_installed()
        return 'openvino' if usable else 'torch'
    if backend == 'openvino':
        if device.type != 'cpu':
            raise ModelLoadError(
                f"backend 'openvino' runs on the CPU, but device is '{device}'; set device "
                "to 'cpu', or backend to 'torch' or 'auto' (torch on CUDA).")
        if dtype != 'float32':
            raise ModelLoadError(
                f"dtype '{dtype}' is a torch setting; with backend 'openvino' keep dtype "
                "float32 and choose the precision parameter (default|f32|int8).")
        if not openvino_installed():
            raise ModelLoadError(
                "backend 'openvino' was requested but the openvino package is not installed; "
                "install it (pip install openvino, the version in requirements.txt) or set "
                "backend to 'torch' or 'auto'.")
    return backend


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype '{dtype}' is not one of {', '.join(DTYPES)}.")
    if dtype == 'float16' and device.type == 'cpu':
        # Half-precision kernels are missing or slower than fp32 on most CPUs.
        raise ModelLoadError(
            "dtype 'float16' needs a CUDA device; use float32 or bfloat16 on CPU.")
    return DTYPES[dtype]


def is_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (HF_HUB_OFFLINE and friends)."""
    for variable in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'):
        if os.environ.get(variable, '').strip().lower() in ('1', 'true', 'yes', 'on'):
            return True
    return False


def looks_like_path(source: str) -> bool:
    """A source is meant as a folder when it is written like one (hub ids are 'org/name')."""
    return source.startswith(('/', './', '../', '~')) or source.count('/') > 1


def resolve_source(kind: str, source: str) -> str:
    """Empty means the embedded default of this kind; a path must exist; else a hub id."""
    if kind not in KINDS:
        raise ValueError(f'unknown model kind {kind!r}; expected one of {KINDS}')
    if not source.strip():
        folder = paths.default_model_dir(kind)
        if not (folder / 'config.json').is_file():
            raise ModelLoadError(
                f'no {kind} model configured and the embedded default {folder} is missing; '
                f'set the model parameter to a Hugging Face id or a local model folder.')
        return str(folder)
    source = source.strip()
    if looks_like_path(source) or Path(source).expanduser().exists():
        folder = Path(source).expanduser().resolve()
        if not folder.is_dir():
            raise ModelLoadError(
                f"model folder '{source}' does not exist; point the model parameter at a folder "
                'holding config.json and model.safetensors, or use a Hugging Face id.')
        if not (folder / 'config.json').is_file():
            raise ModelLoadError(
                f"model folder '{source}' has no config.json; it must be a Hugging Face model "
                "folder written by save_pretrained().")
        return str(folder)
    return source


def _check_config_kind(kind: str, folder: str) -> None:
    """Refuse a CLIPSeg folder given as CLIP and vice versa, before transformers half-loads it."""
    config_file = Path(folder) / 'config.json'
    if not config_file.is_file():
        return
    try:
        model_type = json.loads(config_file.read_text()).get('model_type', '')
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"model folder '{folder}': config.json is unreadable ({err}).") from None
    if model_type != kind:
        raise ModelLoadError(
            f"model '{folder}' is a '{model_type}' model, but a '{kind}' model is needed here.")


def _model_class(kind: str):
    # Imported lazily: transformers takes seconds to import and not every caller needs it.
    from transformers import CLIPModel, CLIPSegForImageSegmentation
    return CLIPModel if kind == 'clip' else CLIPSegForImageSegmentation


def _preprocessing_on_device(preprocessing: str, device: torch.device) -> bool:
    try:
        return use_torch_preprocessing(preprocessing, device)
    except ValueError as err:
        raise ModelLoadError(f'{err}.') from err


def runtime_options(values: dict, kind: str = '') -> dict:
    """A model node's checked parameter values as ModelCache.get's keywords: how it runs
    its models of `kind` (the node, and the evaluator standing in for it, load them alike).
    """
    options = {'device': values['device'], 'dtype': values['dtype'],
               'backend': values['backend'], 'precision': values['precision'],
               'threads': values['cpu_threads']}
    for name in ('preprocessing', 'compile_mode'):  # the image nodes' (config.IMAGE_RUNTIME)
        if name in values:
            options[name] = values[name]
    if kind == 'clipseg' and 'input_size' in values:  # scene_segmenter's
        options['input_size'] = values['input_size']
    return options


def set_input_size(kind: str, model, processor, input_size: int) -> None:
    """Feed a CLIPSeg `input_size` pixels square instead of its processor's size (0: keep
    it): fewer patches, less time a segmentation, coarser masks. CLIPSeg interpolates its
    position embeddings and its decoder gives masks at the input's size; the size must be a
    multiple of the patch size. CLIP's image tower is fixed to its size: refused.
    """
    if not input_size:
        return
    if kind != 'clipseg':
        raise ModelLoadError(f'input_size {input_size}: only a CLIPSeg model takes another '
                             'input size (CLIP is fixed to its own); set it to 0.')
    patch = int(model.config.vision_config.patch_size)
    if input_size % patch or input_size < 2 * patch:
        raise ModelLoadError(
            f"input_size {input_size}: must be a multiple of the model's patch size {patch} "
            f'and at least {2 * patch} (e.g. {max(2, round(input_size / patch)) * patch}), '
            'or 0 for the size its processor uses.')
    image_processor = processor.image_processor
    size = image_processor.to_dict().get('size')
    if not isinstance(size, dict) or {key for key, value in size.items()
                                      if value is not None} != {'height', 'width'}:
        raise ModelLoadError(f'input_size {input_size}: the processor sizes images as '
                             f'{size}, not by height and width; set it to 0.')
    if input_size > 2 * max(size['height'], size['width']):
        raise ModelLoadError(
            f"input_size {input_size}: more than twice the processor's "
            f"{size['height']}x{size['width']} (memory grows with the square of the patches); "
            'set it at most to that, or 0.')
    image_processor.size = {'height': input_size, 'width': input_size}


def load_model(kind: str, source: str = '', device: str = 'auto',
               dtype: str = 'float32', backend: str = 'torch', precision: str = 'default',
               threads: int = 0, preprocessing: str = 'auto',
               compile_mode: str = 'none', input_size: int = 0,
               int8_on_any_cpu: bool = False) -> LoadedModel:
    """Load a CLIP ('clip') or CLIPSeg ('clipseg') model and its processor, ready for inference.

    `source` is a Hugging Face id, a local folder, or empty for the embedded default.
    `backend` (auto|torch|openvino) chooses the runtime; `precision` (default|f32|int8) and
    `threads` (0: all cores) apply to OpenVINO, which converts the model at the first start
    and caches it (vla_ros.core.backends.cache_dir). `preprocessing` (auto|processor|torch)
    and `compile_mode` (none|default|reduce-overhead, torch only): see core.preprocessing and
    core.backends. `input_size`: set_input_size. Precision int8 (OpenVINO, quantised at the
    first start) is refused on a CPU where it would be slower than f32 (no VNNI or AMX),
    unless `int8_on_any_cpu` (benchmarks and tests measure its accuracy anywhere).
    """
    from transformers import AutoProcessor
    from transformers.utils import logging as transformers_logging

    if not getattr(sys.stderr, 'isatty', lambda: False)():
        # Progress bars belong on a terminal; in a node's log (ros2 launch) they are lines of
        # carriage returns.
        transformers_logging.disable_progress_bar()
    resolved = resolve_source(kind, source)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    backend = resolve_backend(backend, torch_device, dtype)
    if precision not in PRECISIONS:
        raise ModelLoadError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}.")
    if precision == 'int8':
        if backend != 'openvino':
            raise ModelLoadError(
                f"precision 'int8' is OpenVINO's, but the backend is '{backend}'; set backend "
                "to 'openvino' (a CPU), or precision to 'default'.")
        problem = int8_problem(any_cpu=int8_on_any_cpu)
        if problem:
            raise ModelLoadError(f"precision 'int8': {problem}.")
    if compile_mode not in COMPILE_MODES:
        raise ModelLoadError(
            f"compile_mode '{compile_mode}' is not one of {', '.join(COMPILE_MODES)}.")
    if compile_mode != 'none' and backend != 'torch':
        raise ModelLoadError(
            f"compile_mode '{compile_mode}' compiles torch's work, but the backend is "
            f"'{backend}'; set backend to 'torch' or compile_mode to 'none'.")
    on_device = _preprocessing_on_device(preprocessing, torch_device)
    local = Path(resolved).is_dir()
    if local:
        _check_config_kind(kind, resolved)
    offline = local or is_offline()
    try:
        model = _model_class(kind).from_pretrained(
            resolved, local_files_only=offline, dtype=torch_dtype)
        processor = AutoProcessor.from_pretrained(resolved, local_files_only=offline)
    except Exception as err:  # transformers raises OSError, ValueError, safetensors errors...
        where = f"folder '{resolved}'" if local else f"Hugging Face id '{resolved}'"
        if local:
            advice = ('check that it holds config.json, model.safetensors and the '
                      'tokenizer/processor files written by save_pretrained()')
        elif offline:
            advice = ('the machine is offline (HF_HUB_OFFLINE): download the model on a '
                      'connected machine and point the model parameter at its local folder')
        else:
            advice = ('check the id and the network, or point the model parameter at a '
                      'local model folder')
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f'cannot load {kind} model from {where}: {first_line} -- {advice}.') from err
    model = model.to(torch_device).eval()
    set_input_size(kind, model, processor, input_size)
    try:  # before the engine: compiling or converting takes a while, this fails at once
        image_preprocessor = (TorchImageProcessor(processor.image_processor, torch_device)
                              if on_device else None)
    except ValueError as err:
        raise ModelLoadError(f'{kind} model {resolved}: {err}.') from err
    try:
        engine = make_engine(kind, model, processor, backend, torch_device, torch_dtype,
                             precision, threads, compile_mode=compile_mode)
    except Exception as err:  # noqa: BLE001 - OpenVINO's conversion errors have many types
        advice = ("set precision to 'default'" if precision == 'int8'
                  else "set backend to 'torch'")
        raise ModelLoadError(
            f"cannot run the {kind} model '{resolved}' on {backend}: {type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''} -- {advice}.") \
            from err
    name = Path(resolved).name if local else resolved
    return LoadedModel(kind=kind, source=resolved, name=name, model=model,
                       processor=processor, device=torch_device, dtype=torch_dtype,
                       backend=backend, engine=engine, image_preprocessor=image_preprocessor)


class ModelCache:
    """Load each (kind, source, device, dtype) once and share it between the users in a process.

    The one-process runner hands one cache to all nodes, so the camera and command embedders
    share one CLIP in memory when they name the same model.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._models = {}  # key -> [LoadedModel, users]

    def get(self, kind: str, source: str = '', device: str = 'auto',
            dtype: str = 'float32', backend: str = 'torch', precision: str = 'default',
            threads: int = 0, preprocessing: str = 'auto',
            compile_mode: str = 'none', input_size: int = 0) -> LoadedModel:
        """The model, loaded on first use; each call is one more user until release()."""
        backend = resolve_backend(backend, resolve_device(device), dtype)
        # Precision and threads are compiled into an OpenVINO model; torch ignores them.
        options = (precision, threads) if backend == 'openvino' else ()
        on_device = _preprocessing_on_device(preprocessing, resolve_device(device))
        key = (kind, resolve_source(kind, source), device, dtype, backend, options,
               on_device, compile_mode, input_size)
        with self._lock:  # held while loading so two nodes never load the same model twice
            if key not in self._models:
                self._models[key] = [load_model(kind, source, device, dtype, backend,
                                                precision, threads, preprocessing,
                                                compile_mode, input_size), 0]
            self._models[key][1] += 1
            return self._models[key][0]

    def release(self, loaded: LoadedModel) -> None:
        """One user fewer; the cache forgets a model nobody uses (its memory can be freed)."""
        with self._lock:
            for key, entry in list(self._models.items()):
                if entry[0] is loaded:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del self._models[key]
                    return
