"""Image messages to RGB arrays and back, on real sensor_msgs messages."""

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from vla_ros.core import images
from vla_ros.core.images import from_mask_msg, ImageConversionError, to_image_msg, to_rgb
from vla_ros.fixtures.hostile_inputs import png_header_only

HEIGHT, WIDTH = 6, 5


@pytest.fixture
def rgb():
    return np.random.default_rng(7).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def raw_message(array, encoding, step=None, padding=0):
    """A sensor_msgs/Image holding `array`, each row followed by `padding` junk bytes."""
    array = np.ascontiguousarray(array)
    rows = array.reshape(array.shape[0], -1).view(np.uint8)
    if padding:
        rows = np.hstack([rows, np.full((rows.shape[0], padding), 0xAB, np.uint8)])
    msg = Image()
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = step if step is not None else rows.shape[1]
    msg.data = rows.tobytes()
    return msg


def compressed_message(bgr_or_grey, extension):
    ok, encoded = cv2.imencode(extension, bgr_or_grey)
    assert ok
    msg = CompressedImage()
    msg.format = extension.lstrip('.')
    msg.data = encoded.tobytes()
    return msg


def test_backend_is_known():
    assert images.BACKEND_NAME in ('cv_bridge', 'rosbags-image')


def test_rgb8_passes_through(rgb):
    assert np.array_equal(to_rgb(raw_message(rgb, 'rgb8')), rgb)


def test_bgr8_is_reordered(rgb):
    assert np.array_equal(to_rgb(raw_message(rgb[..., ::-1], 'bgr8')), rgb)


def test_alpha_encodings_drop_alpha(rgb):
    alpha = np.full((HEIGHT, WIDTH, 1), 9, np.uint8)
    assert np.array_equal(to_rgb(raw_message(np.concatenate([rgb, alpha], 2), 'rgba8')), rgb)
    bgra = np.concatenate([rgb[..., ::-1], alpha], 2)
    assert np.array_equal(to_rgb(raw_message(bgra, 'bgra8')), rgb)


def test_mono8_is_replicated_to_three_channels():
    grey = np.arange(HEIGHT * WIDTH, dtype=np.uint8).reshape(HEIGHT, WIDTH)
    out = to_rgb(raw_message(grey, 'mono8'))
    assert out.shape == (HEIGHT, WIDTH, 3)
    assert all(np.array_equal(out[..., channel], grey) for channel in range(3))


def test_mono16_is_scaled_to_eight_bits():
    grey = np.array([[0, 65535], [32768, 257]], np.uint16)
    out = to_rgb(raw_message(grey, 'mono16'))
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255 and out[1, 1, 0] == 1


def test_float_images_read_as_zero_to_one():
    grey = np.array([[0.0, 1.0], [0.5, 2.0]], np.float32)
    out = to_rgb(raw_message(grey, '32FC1'))
    assert out[:, :, 0].tolist() == [[0, 255], [128, 255]]


def test_padded_rows_are_read_by_step(rgb):
    msg = raw_message(rgb, 'rgb8', padding=3)
    assert msg.step == WIDTH * 3 + 3
    assert np.array_equal(to_rgb(msg), rgb)


def test_compressed_jpeg_and_png(rgb):
    assert np.array_equal(to_rgb(compressed_message(rgb[..., ::-1], '.png')), rgb)
    smooth = np.full((16, 16, 3), (200, 40, 10), np.uint8)  # JPEG is lossy: compare loosely
    out = to_rgb(compressed_message(smooth[..., ::-1], '.jpg'))
    assert np.abs(out.astype(int) - smooth).max() <= 3


def test_compressed_grey_png():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    out = to_rgb(compressed_message(grey, '.png'))
    assert np.array_equal(out[..., 1], grey)


@pytest.mark.parametrize(('mutate', 'message'), [
    (lambda m: setattr(m, 'encoding', 'yuv_magic'), 'unsupported encoding'),
    (lambda m: setattr(m, 'step', WIDTH * 3 - 1), 'smaller than width'),
    (lambda m: setattr(m, 'data', bytes(m.data)[:-1]), 'data holds'),
    (lambda m: (setattr(m, 'width', 0), setattr(m, 'data', b'')), 'empty image'),
    (lambda m: (setattr(m, 'height', 0), setattr(m, 'data', b'')), 'empty image'),
])
def test_bad_raw_images_raise_clear_errors(rgb, mutate, message):
    msg = raw_message(rgb, 'rgb8')
    mutate(msg)
    with pytest.raises(ImageConversionError, match=message):
        to_rgb(msg)


def test_nan_in_float_image_is_refused():
    grey = np.array([[0.0, np.nan]], np.float32)
    with pytest.raises(ImageConversionError, match='NaN'):
        to_rgb(raw_message(grey, '32FC1'))


def test_8k_frame_is_refused_before_decoding():
    msg = Image(height=4320, width=7680, encoding='mono8', step=7680)
    msg.data = bytes(7680 * 4320)
    with pytest.raises(ImageConversionError, match='exceeds the limit'):
        to_rgb(msg)


def test_corrupt_compressed_data_is_refused():
    msg = CompressedImage(format='jpeg')
    msg.data = b'\xff\xd8 this is not a jpeg'
    with pytest.raises(ImageConversionError):
        to_rgb(msg)
    with pytest.raises(ImageConversionError, match='no data'):
        to_rgb(CompressedImage(format='jpeg'))


def test_mono8_mask_round_trip_is_lossless():
    mask = np.random.default_rng(1).integers(0, 256, (33, 17), dtype=np.uint8)
    header = Header(frame_id='camera_optical')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = to_image_msg(mask, header)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('mono8', 33, 17, 17)
    assert msg.header.frame_id == 'camera_optical' and msg.header.stamp.nanosec == 345
    assert np.array_equal(from_mask_msg(msg), mask)


def test_float_mask_round_trip_is_bit_exact():
    mask = np.random.default_rng(2).random((9, 11), dtype=np.float32)
    mask[0, 0] = np.float32(1e-30)
    msg = to_image_msg(mask)
    assert msg.encoding == '32FC1' and msg.step == 11 * 4
    back = from_mask_msg(msg)
    assert back.dtype == np.float32 and np.array_equal(back.view(np.uint32),
                                                       mask.view(np.uint32))


def test_rgb_output_message(rgb):
    msg = to_image_msg(rgb)
    assert msg.encoding == 'rgb8'
    assert np.array_equal(to_rgb(msg), rgb)


def test_unpublishable_arrays_are_refused():
    with pytest.raises(ValueError, match='cannot publish'):
        to_image_msg(np.zeros((4, 4), np.float64))
    with pytest.raises(ImageConversionError, match='not a mask encoding'):
        from_mask_msg(to_image_msg(np.zeros((2, 2, 3), np.uint8)))


@pytest.mark.parametrize('side', [16000, 5000])
def test_a_compressed_bomb_is_refused_from_its_header(side):
    """Refused by the size its header claims: the data after it is cut short, so a decoder
    would have failed with another message.
    """
    msg = CompressedImage(format='png')
    msg.data = png_header_only(side, side)
    with pytest.raises(ImageConversionError, match=f'exceeds the limit of {5000 * 5000 - 1}'):
        to_rgb(msg, max_pixels=5000 * 5000 - 1)


def test_undecodable_compressed_images_say_why():
    msg = CompressedImage(format='jpeg')
    msg.data = b'\xff\xd8\xff\xe0\x00\x10JFIF\x00 cut short'
    with pytest.raises(ImageConversionError, match='can be read'):
        to_rgb(msg)
    msg.data = png_header_only(64, 48)  # a good header, broken pixels
    with pytest.raises(ImageConversionError, match='broken or cut short'):
        to_rgb(msg)
