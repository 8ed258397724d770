"""The runtimes behind the encoders: torch (any device) and OpenVINO (CPU).

An engine is what `ClipEncoder` and `ClipSegSegmenter` call once their inputs are tensors:

- CLIP: `image_features(pixel_values, frames)` and `text_features(input_ids, attention_mask)`, each
  an (N, dim) float tensor, not normalised;
- CLIPSeg: `conditionals(input_ids, attention_mask)` (P, dim) and
  `probabilities(pixel_values, conditionals)` (N, P, h, w) sigmoid masks.

The OpenVINO engine converts the loaded transformers model itself (`openvino.convert_model`
on small torch modules that return exactly what the torch engine computes), so one model
folder or Hugging Face id serves both back ends. The converted IR is cached on disk (see
`cache_dir`), keyed by a hash of the weights and config, the OpenVINO version and the
module's input shapes; beside each IR, OpenVINO's own model cache (`CACHE_DIR`) keeps its
compiled form. With precision int8, the image parts (CLIP's image tower, CLIPSeg's masks) are
quantised by NNCF's post-training quantisation, calibrated on the simulator renders shipped
in models/calibration (core.calibration), and cached beside the f32 IR; the text parts stay
as they are (a command is embedded once).
Batch and text length stay dynamic dimensions: the crops, prompts and command lengths vary
call to call, and padding text to the context length would run the text tower on up to
77 tokens for a 6-token command.
"""

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
from pathlib import Path
import shutil
import tempfile
import threading
import warnings

import numpy as np
import torch

from vla_ros.core.config import BACKENDS, COMPILE_MODES, PRECISIONS  # noqa: F401 - the choices

# The CPU extensions that make int8 faster than f32 (dot products of bytes); without one,
# OpenVINO emulates them and int8 is slower.
INT8_ISA = ('avx512_vnni', 'avx_vnni', 'amx_int8')
SPEED_ISA = ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_bf16',
             'amx_int8')
# Changes whenever the converted modules below change what they compute: old IR is then
# never loaded for new code.
CONVERSION_VERSION = '1'
QUANTISATION_VERSION = '1'  # likewise for the int8 settings in OpenVinoRuntime._quantised
_TOKEN_LENGTH_EXAMPLE = 7


def openvino_installed() -> bool:
    return importlib.util.find_spec('openvino') is not None


def isa_flags(cpuinfo: str = None) -> tuple:
    """Those of SPEED_ISA this CPU has (from /proc/cpuinfo's flags; () where unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path('/proc/cpuinfo').read_text()
        except OSError:
            return ()
    flags = next((line.split(':', 1)[1].split() for line in cpuinfo.splitlines()
                  if line.startswith('flags')), [])
    return tuple(flag for flag in SPEED_ISA if flag in flags)


def int8_problem(flags: tuple = None, any_cpu: bool = False) -> str:
    """Why precision int8 cannot be used here ('' when it can): NNCF missing, or (unless
    `any_cpu`) a CPU without VNNI or AMX, where int8 is slower than f32.
    """
    flags = isa_flags() if flags is None else flags
    if not any_cpu and not any(flag in flags for flag in INT8_ISA):
        return (f"this CPU has no VNNI or AMX (it has {', '.join(flags) or 'none of '}"
                f"{'' if flags else ', '.join(SPEED_ISA)}), so int8 would run slower than "
                "f32: set precision to 'default'")
    if importlib.util.find_spec('nncf') is None:
        return 'it needs the nncf package (pip install nncf, the version in requirements.txt)'
    return ''


def cache_dir() -> Path:
    """Where converted models live: $VLA_ROS_CACHE_DIR/openvino, else
    $XDG_CACHE_HOME/vla_ros/openvino, else ~/.cache/vla_ros/openvino. Deleting it is safe:
    the next start converts again.
    """
    if os.environ.get('VLA_ROS_CACHE_DIR'):
        return Path(os.environ['VLA_ROS_CACHE_DIR']).expanduser() / 'openvino'
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base).expanduser() / 'vla_ros' / 'openvino'


# Torch ------------------------------------------------------------------------------------
# The torch engines run the very modules the OpenVINO engines convert (below), on the device.
class _TorchEngine:
    def __init__(self, model, device, dtype, compile_mode='none'):
        self.model, self.device, self.dtype = model, device, dtype
        self.compile_mode = compile_mode
        self.description = f'torch {device} {str(dtype).replace("torch.", "")}' + (
            '' if compile_mode == 'none' else f', compiled ({compile_mode})')

    def _compiled(self, module):
        """`module` as it runs with compile_mode (itself with 'none')."""
        if self.compile_mode == 'none':
            return module
        return CompiledInOneThread(module, self.compile_mode)


class CompiledInOneThread:
    """A module under torch.compile for the first thread that calls it, eager for any other.

    A CUDA graph belongs to the thread that recorded it (PyTorch asserts otherwise:
    pytorch/pytorch#123177), and one loaded model may serve nodes on several worker threads
    (core.models.ModelCache). The first call compiles (seconds to minutes); a call of another
    shape compiles again.
    """

    def __init__(self, module, mode: str):
        self.eager = module
        self.compiled = torch.compile(module, mode=mode, dynamic=False)
        self.thread = None  # the thread it is compiled for
        self._lock = threading.Lock()

    def __call__(self, *inputs):
        with self._lock:
            if self.thread is None:
                self.thread = threading.get_ident()
            mine = self.thread == threading.get_ident()
        return (self.compiled if mine else self.eager)(*inputs)


class TorchClip(_TorchEngine):
    def __init__(self, model, device, dtype, compile_mode='none'):
        super().__init__(model, device, dtype, compile_mode)
        self._image, self._text = _ClipImage(model), _ClipText(model)
        self._frame = self._compiled(self._image)  # a camera frame: one image a call

    def image_features(self, pixel_values: torch.Tensor, frames: bool = True) -> torch.Tensor:
        """`frames`: camera frames, one a call, may run compiled; crops to verify (several a
        call, or one) run eager.
        """
        image = self._frame if frames and len(pixel_values) == 1 else self._image
        with torch.inference_mode():
            # A CUDA graph's output is overwritten by its next run: the caller keeps a copy.
            return image(pixel_values.to(self.device, self.dtype)).clone()

    def text_features(self, input_ids, attention_mask) -> torch.Tensor:
        with torch.inference_mode():
            return self._text(input_ids.to(self.device), attention_mask.to(self.device))


class TorchClipSeg(_TorchEngine):
    def __init__(self, model, device, dtype, compile_mode='none'):
        super().__init__(model, device, dtype, compile_mode)
        self._masks = self._compiled(_ClipSegMasks(model))

    def conditionals(self, input_ids, attention_mask) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.get_conditional_embeddings(
                batch_size=len(input_ids), input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device))

    def probabilities(self, pixel_values, conditionals) -> np.ndarray:
        with torch.inference_mode():
            return self._masks(pixel_values.to(self.device, self.dtype),
                               conditionals).cpu().numpy()


def _clipseg_probabilities(model, pixel_values, conditionals):
    """(N, P, h, w) sigmoid masks: each of N images with each of P prompts, one batch."""
    images, count = pixel_values.shape[0], conditionals.shape[0]
    vision = model.clip.get_image_features(pixel_values=pixel_values,
                                           output_hidden_states=True)
    # hidden_states[0] is the patch embedding, so layer i is at i + 1. Rows are image-major:
    # image n with prompt p is row n * count + p.
    activations = [vision.hidden_states[index + 1].repeat_interleave(count, dim=0)
                   for index in model.extract_layers]
    logits = model.decoder(activations, conditionals.repeat(images, 1)).logits
    logits = logits.reshape(images, count, logits.shape[-2], logits.shape[-1]).float()
    return torch.sigmoid(logits)


# Modules converted for OpenVINO -----------------------------------------------------------
class _ClipImage(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.get_image_features(pixel_values=pixel_values).pooler_output


class _ClipText(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.get_text_features(input_ids=input_ids,
                                            attention_mask=attention_mask).pooler_output


class _ClipSegMasks(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values, conditionals):
        return _clipseg_probabilities(self.model, pixel_values, conditionals)


def processed_shape(processor) -> tuple:
    """(channels, height, width) of the processor's pixel_values. Not the config's
    image_size: CLIPSeg rd64 is configured at 224 and fed 352 (it interpolates its position
    embeddings).
    """
    pixels = processor.image_processor(images=[np.zeros((8, 8, 3), np.uint8)],
                                       return_tensors='pt', input_data_format='channels_last')
    return tuple(pixels['pixel_values'].shape[1:])


def _token_inputs(batch: int):
    ids = torch.ones(batch, _TOKEN_LENGTH_EXAMPLE, dtype=torch.int64)
    return ids, torch.ones_like(ids)


def weights_digest(model) -> str:
    """Hash of a model's config and every weight: the cache key's model part."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(model.config.to_json_string().encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)}'.encode())
        # Viewed as bytes: numpy has no bfloat16, and this copies nothing.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


class _Compiled:
    """One compiled OpenVINO model, callable from any thread (one infer request per thread:
    a request is not thread-safe, and nodes in one process may share this model).
    """

    def __init__(self, compiled):
        self.compiled = compiled
        self._local = threading.local()

    def __call__(self, *inputs) -> np.ndarray:
        request = getattr(self._local, 'request', None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer([np.ascontiguousarray(value) for value in inputs])
        return request.get_output_tensor(0).data.copy()


@contextlib.contextmanager
def folder_lock(folder: Path):
    """One process at a time in `folder`: OpenVINO writes its compiled blob in place and
    maps it to read, so a node compiling while another starts on the same model could read a
    half-written blob (a bus error). Released when the process ends, however it ends. Where
    the lock file cannot be made (a read-only cache), it goes on unlocked.
    """
    try:
        lock = open(folder / '.lock', 'a')
    except OSError:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class OpenVinoRuntime:
    """Converts (or finds in the cache) and compiles a model's parts for the CPU."""

    def __init__(self, model, precision: str = 'default', threads: int = 0,
                 cache: Path = None):
        import openvino

        if precision not in PRECISIONS:
            raise ValueError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
        self.openvino = openvino
        self.core = openvino.Core()
        self.model = model
        self.cache = Path(cache) if cache is not None else cache_dir()
        self.digest = weights_digest(model)
        # No pinning: the stack runs several OpenVINO nodes (and other work) on a few cores,
        # and a worker pinned to a busy core waits for it (benchmarks/README.md, Backends).
        self.config = {'PERFORMANCE_HINT': 'LATENCY', 'NUM_STREAMS': '1',
                       'ENABLE_CPU_PINNING': False}
        if precision == 'f32':
            self.config['INFERENCE_PRECISION_HINT'] = 'f32'
        if threads > 0:
            self.config['INFERENCE_NUM_THREADS'] = int(threads)
        self.precision = precision
        self.converted = []  # parts converted in this call (not found in the cache)

    def compile(self, part: str, module, example, shapes, calibration=None,
                keep_float=()) -> _Compiled:
        """`module` (a torch module) compiled; its IR from the cache when there. With
        precision int8 and `calibration` (a callable giving a list of input tuples), the
        part is quantised first, but for the operations whose names match a regular
        expression of `keep_float`.
        """
        ov = self.openvino
        key = hashlib.blake2b(
            f'{self.digest}|{part}|{shapes}|{ov.__version__}|{CONVERSION_VERSION}'.encode(),
            digest_size=16).hexdigest()
        folder = self.cache / f'{part}-{key}'
        xml = folder / 'model.xml'
        if not xml.is_file():
            with warnings.catch_warnings():
                # The tracer warns of every Python branch on a size; the ones in these models
                # depend on the image size (fixed) or on limits never reached.
                warnings.simplefilter('ignore', torch.jit.TracerWarning)
                converted = ov.convert_model(
                    module, example_input=example,
                    input=[ov.PartialShape(shape) for shape in shapes])
            self._save(converted, folder)
            self.converted.append(part)
        if self.precision == 'int8' and calibration is not None:
            folder, xml = self._quantised(part, key, xml, calibration, keep_float)
        # OpenVINO's own cache of the compiled form, kept inside the IR's folder: a blob can
        # only belong to its IR, and deleting a folder removes both.
        config = dict(self.config, CACHE_DIR=str(folder / 'compiled'))
        with folder_lock(folder):
            compiled = _Compiled(self.core.compile_model(self.core.read_model(xml), 'CPU',
                                                         config))
        # Once here, on the loading thread: the binding sets itself up on its first tensor
        # access, and two nodes' workers making that first access at once deadlocked in it
        # (seen in `vla-ros up`: one thread in a static initialiser's guard, the other waiting).
        compiled(*(tensor.numpy() for tensor in example))
        return compiled

    def _quantised(self, part: str, key: str, xml: Path, calibration, keep_float) -> tuple:
        """(folder, model.xml) of the part's int8 IR, quantised from its f32 IR at `xml` on
        the calibration inputs when not in the cache (keyed by the settings and the
        calibration files too).
        """
        import nncf

        from vla_ros.core.calibration import calibration_digest

        float_key = hashlib.blake2b(
            f'{QUANTISATION_VERSION}|{"|".join(keep_float)}|{calibration_digest()}|'
            f'{getattr(calibration, "settings", "")}'.encode(), digest_size=4).hexdigest()
        folder = self.cache / f'{part}-{key}-int8-{float_key}-nncf{nncf.__version__}'
        quantised = folder / 'model.xml'
        if not quantised.is_file():
            inputs = calibration()
            # SmoothQuant off: on the shipped CLIP it took the worst frame's cosine to f32
            # from 0.994 down to 0.987.
            model = nncf.quantize(
                self.core.read_model(xml), nncf.Dataset(inputs),
                model_type=nncf.ModelType.TRANSFORMER, subset_size=len(inputs),
                ignored_scope=nncf.IgnoredScope(patterns=list(keep_float)),
                advanced_parameters=nncf.AdvancedQuantizationParameters(smooth_quant_alpha=-1))
            self._save(model, folder)
            self.converted.append(f'{part} (int8)')
        return folder, quantised

    def _save(self, converted, folder: Path) -> None:
        # Written aside and renamed: two nodes starting together may convert the same model,
        # and neither may read the other's half-written file.
        self.cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix='.converting-', dir=self.cache))
        try:
            # compress_to_fp16 would round the weights; the precision is chosen at compile.
            self.openvino.save_model(converted, scratch / 'model.xml', compress_to_fp16=False)
            try:
                scratch.rename(folder)
            except OSError:
                if not (folder / 'model.xml').is_file():
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def inference_precision(self, compiled: _Compiled) -> str:
        """The precision OpenVINO chose on this CPU (f32, bf16, ...; int8: of what is left
        in floating point).
        """
        return str(compiled.compiled.get_property('INFERENCE_PRECISION_HINT')).lower() \
            .replace('<type: ', '').replace("'", '').replace('>', '').replace('float', 'f')


def _description(runtime: OpenVinoRuntime, compiled: _Compiled) -> str:
    return (f'openvino {runtime.openvino.__version__.split("-")[0]} CPU '
            f'{runtime.inference_precision(compiled)} (precision {runtime.precision})')


class OpenVinoClip:
    def __init__(self, model, image_shape, precision='default', threads=0, cache=None,
                 calibration=None):
        """`calibration`: int8's, a callable giving (frames, prompts, pixel values of
        frames) (core.calibration).
        """
        runtime = OpenVinoRuntime(model, precision, threads, cache)

        def image_inputs():
            frames, _, pixels = calibration()
            return [(pixels([frame]),) for frame in frames]
        image_inputs.settings = getattr(calibration, 'settings', '')

        # int8: the patch embedding and the projection in float took the worst of 40 frames'
        # cosine to f32 from 0.989 to 0.996 (benchmarks/README.md, int8).
        self._image = runtime.compile('clip-image', _ClipImage(model),
                                      (torch.zeros(1, *image_shape),), [(-1, *image_shape)],
                                      image_inputs if calibration else None,
                                      keep_float=(r'.*\.patch_embedding[./].*',
                                                  r'.*\.visual_projection[./].*'))
        self._text = runtime.compile('clip-text', _ClipText(model), _token_inputs(2),
                                     [(-1, -1), (-1, -1)])
        self.converted = runtime.converted
        self.description = _description(runtime, self._image)

    def image_features(self, pixel_values, frames: bool = True) -> torch.Tensor:
        return torch.from_numpy(self._image(pixel_values.numpy().astype(np.float32)))

    def text_features(self, input_ids, attention_mask) -> torch.Tensor:
        return torch.from_numpy(self._text(input_ids.numpy(), attention_mask.numpy()))


class OpenVinoClipSeg:
    def __init__(self, model, image_shape, precision='default', threads=0, cache=None,
                 calibration=None, tokenizer=None):
        """`calibration`: as OpenVinoClip's; `tokenizer` encodes its prompts."""
        runtime = OpenVinoRuntime(model, precision, threads, cache)
        dim = int(model.config.projection_dim)
        self._text = runtime.compile('clipseg-text', _ClipText(model.clip), _token_inputs(2),
                                     [(-1, -1), (-1, -1)])

        def mask_inputs():
            # As the node calls it: the frame and its fovea's crop, the object's prompt.
            from vla_ros.core.segmentation import Fovea

            frames, prompts, pixels = calibration()
            fovea = Fovea()
            inputs = []
            for frame, prompt in zip(frames, prompts):
                tokens = tokenizer([prompt], return_tensors='np')
                inputs.append((pixels([frame, fovea.crop(frame)]), self._text(
                    tokens['input_ids'], tokens['attention_mask'])))
            return inputs
        mask_inputs.settings = getattr(calibration, 'settings', '')

        # Examples with 2 images and 3 prompts: a size-1 example could be traced as a constant.
        # int8: the image tower only; the small decoder in int8 took the shipped model's
        # masks from IoU 0.97 to 0.93 against f32's, for little time.
        self._masks = runtime.compile(
            'clipseg-masks', _ClipSegMasks(model),
            (torch.zeros(2, *image_shape), torch.zeros(3, dim)),
            [(-1, *image_shape), (-1, dim)], mask_inputs if calibration else None,
            keep_float=(r'.*\.decoder[./].*', r'.*\.patch_embedding[./].*'))
        self.converted = runtime.converted
        self.description = _description(runtime, self._masks)

    def conditionals(self, input_ids, attention_mask) -> torch.Tensor:
        return torch.from_numpy(self._text(input_ids.numpy(), attention_mask.numpy()))

    def probabilities(self, pixel_values, conditionals) -> np.ndarray:
        return self._masks(pixel_values.numpy().astype(np.float32),
                           conditionals.numpy().astype(np.float32))


def make_engine(kind: str, model, processor, backend: str, device, dtype,
                precision='default', threads=0, cache=None, compile_mode='none'):
    """The engine of a loaded model on a resolved backend ('torch' or 'openvino')."""
    if backend == 'openvino':
        calibration = None
        if precision == 'int8':
            from vla_ros.core.calibration import calibration_views

            def pixels(images):
                return processor.image_processor(
                    images=list(images), return_tensors='np',
                    input_data_format='channels_last')['pixel_values'].astype(np.float32)

            def calibration():
                frames, prompts = calibration_views()
                return frames, prompts, pixels
            # What makes the calibration's pixels: part of the quantised model's cache key.
            calibration.settings = json.dumps(processor.image_processor.to_dict(),
                                              sort_keys=True, default=str)
        shape = processed_shape(processor)
        if kind == 'clip':
            return OpenVinoClip(model, shape, precision, threads, cache, calibration)
        return OpenVinoClipSeg(model, shape, precision, threads, cache, calibration,
                               processor.tokenizer)
    return (TorchClip if kind == 'clip' else TorchClipSeg)(model, device, dtype, compile_mode)
