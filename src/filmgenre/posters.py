"""Poster files: opened safely, decoded as every model sees them, and cached once for a size.

A poster is read in three places (``prepare``'s cache, ``predict`` on a user's file, the
pretrained encoder on the originals); all open it through ``open_poster``, so a huge or
damaged image is refused the same way everywhere, and ``prepare`` and ``predict`` decode
through ``decode_poster``, so a model sees a given poster the same in training and in use.
"""

from pathlib import Path

import numpy as np

from filmgenre import config
from filmgenre.rawdata import DatasetError


class PosterError(DatasetError):
    """A poster file that cannot be used: missing, not an image, damaged, or too large."""


class PosterTooLarge(PosterError):
    """A poster over ``config.MAX_POSTER_PIXELS``, refused from its header before any decoding."""

    def __init__(self, message: str, size: str):
        super().__init__(message)
        self.size = size


# The formats ``tf.io.decode_image`` reads, by PIL's names for them (MPO: a camera's multi-picture JPEG).
POSTER_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"}
PASS_A_POSTER = "Pass a JPEG, PNG, GIF or BMP poster."


def open_poster(source):
    """The poster opened by PIL, which has read its header and no pixel, once the header shows
    an image TensorFlow decodes within ``config.MAX_POSTER_PIXELS`` (frames counted).

    Every reader of a poster file (the cache, ``predict``, the encoder, the figures) opens it
    here first, so none decodes more than the limit: a small file can hold a huge image.
    ``source`` is a path or a binary file object.
    """
    from PIL import Image, UnidentifiedImageError

    name = source if isinstance(source, (str, Path)) else getattr(source, "name", "the poster")
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        what = "a folder, not a file" if Path(source).is_dir() else "no such file"
        raise PosterError(f"{name}: {what}. Pass the path of a poster image (JPEG, PNG, GIF or BMP).")
    # PIL's own bomb check would refuse without the size; ours follows, with it, at the same limit.
    bomb_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        image = Image.open(source)
        frames = getattr(image, "n_frames", 1)  # reads each frame's header, decodes none
    except UnidentifiedImageError:
        raise PosterError(f"{name}: not a readable image (empty, damaged, or another kind of file). "
                          f"{PASS_A_POSTER}") from None
    except (OSError, EOFError) as error:
        raise PosterError(f"{name}: cannot be read ({getattr(error, 'strerror', None) or error}). "
                          f"{PASS_A_POSTER}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = bomb_limit
    width, height = image.size
    if image.format not in POSTER_FORMATS:
        image.close()
        raise PosterError(f"{name}: a {image.format} image, which the models cannot read. "
                          f"Convert it to JPEG or PNG and pass that.")
    if width * height * frames > config.MAX_POSTER_PIXELS:
        image.close()
        size = f"{width:,} x {height:,} pixels" + (f" x {frames:,} frames" if frames > 1 else "")
        raise PosterTooLarge(f"{name}: {size}, over the limit of {config.MAX_POSTER_PIXELS:,} pixels for a poster "
                             "(config.MAX_POSTER_PIXELS); not decoded. Pass a smaller copy of the image "
                             "(a few hundred pixels a side is plenty).", size)
    return image


def damaged_poster(name) -> PosterError:
    """The error for a poster whose header reads but whose pixels do not decode."""
    return PosterError(f"{name}: damaged or cut short: its pixels cannot be decoded. "
                       f"Pass an intact copy (JPEG, PNG, GIF or BMP).")


def decode_poster(raw, image_size: int):
    """Decode any poster bytes (JPEG of any flavour, or PNG/GIF/BMP misnamed .jpg) to RGB.

    JPEGs at least twice the target size are decoded at half resolution by the DCT
    (``ratio=2``), which halves the decoding time without visible loss after resizing.
    """
    import tensorflow as tf

    def jpeg():
        height_width = tf.image.extract_jpeg_shape(raw)[:2]
        return tf.cond(
            tf.reduce_min(height_width) >= 2 * image_size,
            lambda: tf.io.decode_jpeg(raw, channels=3, ratio=2),
            lambda: tf.io.decode_jpeg(raw, channels=3),
        )

    is_jpeg = tf.strings.substr(raw, 0, 2) == b"\xff\xd8"
    image = tf.cond(is_jpeg, jpeg, lambda: tf.io.decode_image(raw, channels=3, expand_animations=False))
    image = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def model_pixels(images):
    """uint8 posters (a numpy array or a tensor) as every poster model is fed them: float32 in [0, 1].

    ``explain``'s altered posters, ``predict``'s one film and the bench scale through here.
    ``features.poster_dataset`` (training and evaluation) writes the same division: its module is
    part of every model's build key (``stamps``), so moving it here retrains every model, which is
    left to a run that retrains anyway; test_posters keeps the two equal until then."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 255.0


def cache_posters(ids: list[str], images_dir: Path, image_size: int, progress: bool = True):
    """Decode and resize every film's poster once, in parallel.

    Returns the images (uint8, N x size x size x 3) of the films whose poster decoded, in
    the order of ``ids``, with the missing and undecodable posters' Ids and the oversized
    ones' sizes by Id. Headers are checked first (``open_poster``): an oversized or
    unreadable poster never reaches the decoder. A poster that then fails to decode is
    dropped by ``ignore_errors`` and detected by its absent index.
    """
    import keras
    import tensorflow as tf

    present, missing, refused, oversized = [], [], [], {}
    for i, film_id in enumerate(ids):
        path = images_dir / f"{film_id}.jpg"
        if not path.is_file():
            missing.append(film_id)
            continue
        try:
            open_poster(path).close()
            present.append(i)
        except PosterTooLarge as error:
            oversized[film_id] = error.size
        except PosterError:
            refused.append(i)
    paths = [str(images_dir / f"{ids[i]}.jpg") for i in present]
    posters = (
        tf.data.Dataset.from_tensor_slices((np.array(present, dtype=np.int64), paths))
        .map(lambda index, path: (index, decode_poster(tf.io.read_file(path), image_size)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .batch(256)
        .prefetch(tf.data.AUTOTUNE)
    )
    bar = keras.utils.Progbar(len(present), unit_name="poster") if progress and present else None
    indices, images, done = [], [], 0
    for index_batch, image_batch in posters:
        indices.append(index_batch.numpy())
        images.append(image_batch.numpy())
        done += len(index_batch)
        if bar:
            bar.update(done)
    if bar and done < len(present):
        bar.update(len(present), finalize=True)
    decoded = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
    undecodable = [ids[i] for i in sorted(set(present) - set(decoded.tolist()) | set(refused))]
    array = np.concatenate(images) if images else np.zeros((0, image_size, image_size, 3), np.uint8)
    return [ids[i] for i in decoded], array, missing, undecodable, oversized
