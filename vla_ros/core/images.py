"""Conversion between sensor_msgs images and numpy arrays.

Decoding is done by cv_bridge when it imports (a robot with ROS 2 from apt) and by
rosbags-image otherwise; both sit behind :func:`to_rgb`. Messages are handled by duck typing
(``encoding``/``height``/``width``/``step``/``data`` or ``format``/``data``), so this module
never imports rclpy. Every problem with an input raises :class:`ImageConversionError`, which a
node turns into a throttled warning and a dropped frame.
"""

from io import BytesIO
from types import SimpleNamespace

import numpy as np

DEFAULT_MAX_PIXELS = 4096 * 3072  # ~12.6 MP: a 4K camera passes, an 8K frame is refused
# The smallest frame the models can use: a ViT patch (16 px) a side, and no strip narrower
# than a tenth of its length (a driver fault, not a camera's view).
MIN_FRAME_SIDE = 16
MAX_ASPECT_RATIO = 10.0


class ImageConversionError(ValueError):
    """An image message cannot be turned into an RGB array (the message says why)."""


def _load_backend():
    try:
        from cv_bridge import CvBridge
        bridge = CvBridge()
        # PyPI's cv-bridge is a ROS 1 port that cannot read ROS 2 messages; only trust the
        # ROS 2 one, which has the compressed-image API and no Python-2 leftovers.
        if hasattr(bridge, 'compressed_imgmsg_to_cv2') and hasattr(bridge, 'cv2_to_imgmsg'):
            return 'cv_bridge', bridge
    except Exception:  # noqa: BLE001 - any import trouble means: use the fallback
        pass
    from rosbags.image import image as rosbags_image
    return 'rosbags-image', rosbags_image


BACKEND_NAME, _BACKEND = _load_backend()


def is_compressed(msg) -> bool:
    return hasattr(msg, 'format')


def _pixel_bytes(encoding: str) -> int:
    """Bytes per pixel of an encoding, as the backend in use understands it."""
    try:
        if BACKEND_NAME == 'cv_bridge':
            dtype, channels = _BACKEND.encoding_to_dtype_with_channels(encoding)
            return np.dtype(dtype).itemsize * channels
        depth_bits, _, _, channels = _BACKEND.to_cvtype(encoding)
        return channels * depth_bits // 8
    except Exception as err:  # noqa: BLE001 - each library's own "unsupported" error
        raise ImageConversionError(f"unsupported encoding '{encoding}' ({err})") from None


def _check_raw_layout(msg, max_pixels: int) -> int:
    """Validate size, step and buffer length of a raw Image; return the tight row size."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'empty image ({width}x{height})')
    if height * width > max_pixels:
        raise ImageConversionError(
            f'image of {width}x{height} exceeds the limit of {max_pixels} pixels')
    row_bytes = width * _pixel_bytes(msg.encoding)
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width {width} x pixel size of '{msg.encoding}' "
            f'({row_bytes} bytes)')
    if len(msg.data) != step * height:
        raise ImageConversionError(
            f'data holds {len(msg.data)} bytes, but step {step} x height {height} = '
            f'{step * height}')
    return row_bytes


def _unpadded(msg, row_bytes: int):
    """A view of the message without row padding (rosbags-image assumes tight rows)."""
    if int(msg.step) == row_bytes:
        return msg
    rows = np.frombuffer(msg.data, np.uint8).reshape(int(msg.height), int(msg.step))
    return SimpleNamespace(
        encoding=msg.encoding, height=msg.height, width=msg.width, step=row_bytes,
        is_bigendian=msg.is_bigendian, data=np.ascontiguousarray(rows[:, :row_bytes]).data)


def _float_to_uint8(image: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(image)):
        raise ImageConversionError('float image contains NaN or infinite values')
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _decode_raw(msg, row_bytes: int) -> np.ndarray:
    if BACKEND_NAME == 'cv_bridge':  # cv_bridge honours step itself
        return _BACKEND.imgmsg_to_cv2(msg, desired_encoding='passthrough')
    return _BACKEND.image_to_cvimage(_unpadded(msg, row_bytes))


HEADER_FORMATS = ('PNG', 'JPEG', 'WEBP', 'BMP', 'TIFF', 'PPM', 'JPEG2000')


def _check_compressed_size(data: bytes, max_pixels: int) -> None:
    """Refuse a compressed image by the size its header gives, before anything is decoded:
    a 249 KB PNG can decode to 16000x16000 pixels (768 MB of RGB).
    """
    from PIL import Image as PilImage
    from PIL import UnidentifiedImageError

    try:
        # The header only, and only formats OpenCV decodes too.
        with PilImage.open(BytesIO(data), formats=HEADER_FORMATS) as header:
            width, height = header.size
    except PilImage.DecompressionBombError as err:  # PIL's own, far larger, limit
        raise ImageConversionError(f'compressed image exceeds the limit of {max_pixels} '
                                   f'pixels ({err})') from None
    except UnidentifiedImageError:
        raise ImageConversionError('compressed image data is not an image format that can be '
                                   f'read (starts with {bytes(data[:8])!r})') from None
    except Exception as err:  # noqa: BLE001 - a broken header, in any of PIL's readers
        raise ImageConversionError(f'compressed image header cannot be read: '
                                   f'{err or type(err).__name__}') from None
    if width * height > max_pixels:
        raise ImageConversionError(f'compressed image of {width}x{height} (from its header) '
                                   f'exceeds the limit of {max_pixels} pixels')


def _decode_compressed(msg, max_pixels: int) -> tuple:
    """Decode a CompressedImage; return (array, encoding of that array)."""
    if not len(msg.data):
        raise ImageConversionError('compressed image has no data')
    _check_compressed_size(bytes(msg.data), max_pixels)
    try:
        if BACKEND_NAME == 'cv_bridge':
            image = _BACKEND.compressed_imgmsg_to_cv2(msg, desired_encoding='passthrough')
        else:
            image = _BACKEND.compressed_image_to_cvimage(msg)
    except Exception:  # noqa: BLE001 - rosbags-image asserts with no message
        image = None
    if image is None:
        raise ImageConversionError('compressed image data cannot be decoded (its header was '
                                   'read: the data after it is broken or cut short)')
    # OpenCV decodes to BGR(A) or grey, whatever the format string says.
    channels = 1 if image.ndim == 2 else image.shape[2]
    depth = '16' if image.dtype == np.uint16 else '8'
    encoding = {1: f'mono{depth}', 3: f'bgr{depth}', 4: f'bgra{depth}'}.get(channels)
    if encoding is None:
        raise ImageConversionError(f'compressed image decodes to {channels} channels')
    return image, encoding


def _convert_color(image: np.ndarray, source_encoding: str, target_encoding: str):
    if BACKEND_NAME == 'cv_bridge':
        from cv_bridge.boost.cv_bridge_boost import cvtColor2
        return cvtColor2(image, source_encoding, target_encoding)
    return _BACKEND.convert_color(image, source_encoding, target_encoding)


def to_rgb(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Turn a sensor_msgs Image or CompressedImage into an HxWx3 uint8 RGB array.

    Accepts colour, mono, alpha, 16-bit and float (0..1) encodings; rejects what cannot be
    read with an :class:`ImageConversionError` naming the problem.
    """
    try:
        if is_compressed(msg):
            image, encoding = _decode_compressed(msg, max_pixels)
        else:
            row_bytes = _check_raw_layout(msg, max_pixels)
            image = _decode_raw(msg, row_bytes)
            encoding = msg.encoding
        if image.dtype.kind == 'f':
            channels = 1 if image.ndim == 2 else image.shape[2]
            if channels not in (1, 3):
                raise ImageConversionError(
                    f"float encoding '{encoding}' has {channels} channels; 1 or 3 are read")
            image = _float_to_uint8(image)
            return np.stack([image] * 3, axis=-1) if channels == 1 else image
        rgb = _convert_color(image, encoding, 'rgb8')
    except ImageConversionError:
        raise
    except Exception as err:  # noqa: BLE001 - the backends raise many kinds of errors
        reason = str(err) or 'no reason given'
        raise ImageConversionError(
            f'cannot convert image: {type(err).__name__}: {reason}') from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageConversionError(
            f"encoding '{getattr(msg, 'encoding', 'compressed')}' did not convert to rgb8")
    return np.ascontiguousarray(rgb)


def camera_frame(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A camera frame for the models: to_rgb, refusing frames the models cannot use."""
    rgb = to_rgb(msg, max_pixels)
    check_frame_size(*rgb.shape[:2])
    return rgb


def check_frame_size(height: int, width: int) -> None:
    """Refuse a frame the models cannot use: a side under MIN_FRAME_SIDE pixels, or longer
    than MAX_ASPECT_RATIO times its other side.
    """
    if min(height, width) < MIN_FRAME_SIDE:
        raise ImageConversionError(
            f'frame of {width}x{height} is too small: at least {MIN_FRAME_SIDE} px a side')
    if max(height, width) > MAX_ASPECT_RATIO * min(height, width):
        raise ImageConversionError(
            f'frame of {width}x{height} is a strip, not a view (aspect ratio over '
            f'{MAX_ASPECT_RATIO:g}:1)')


# The encodings this package writes, derived from the array rather than a lookup table.
def _encoding_of(array: np.ndarray) -> str:
    if array.ndim == 2 and array.dtype == np.uint8:
        return 'mono8'
    if array.ndim == 2 and array.dtype == np.float32:
        return '32FC1'
    if array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        return 'rgb8'
    raise ValueError(
        f'cannot publish an array of shape {array.shape} and dtype {array.dtype}; '
        'expected HxW uint8 (mono8), HxW float32 (32FC1) or HxWx3 uint8 (rgb8)')


def to_image_msg(array: np.ndarray, header=None):
    """A lossless sensor_msgs/Image of a mask (mono8 / 32FC1) or an RGB picture (rgb8)."""
    from sensor_msgs.msg import Image

    array = np.ascontiguousarray(array)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.encoding = _encoding_of(array)
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.is_bigendian = int(array.dtype.byteorder == '>')
    msg.step = int(array.strides[0])
    msg.data = array.tobytes()
    return msg


def from_mask_msg(msg) -> np.ndarray:
    """Read back a mono8 / 32FC1 mask exactly as it was published."""
    if msg.encoding not in ('mono8', '32FC1'):
        raise ImageConversionError(f"'{msg.encoding}' is not a mask encoding (mono8, 32FC1)")
    row_bytes = _check_raw_layout(msg, DEFAULT_MAX_PIXELS)
    return np.array(_decode_raw(msg, row_bytes))
