"""The IDX parser, the dataset and its splits, and the data directory."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from helpers import idx_bytes, synthetic_digits, write_mnist
from digitnet import data
from digitnet.data import DataError, load_mnist, parse_idx, resolve_data_dir

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


# ---------------------------------------------------------------------------
# IDX parsing


@pytest.mark.parametrize("compressed", [True, False])
def test_parse_images_and_labels_gz_and_raw(tmp_path, compressed):
    images, labels = synthetic_digits(7, seed=3)
    files = {}
    for kind, array in (("images", images), ("labels", labels)):
        raw = idx_bytes(array)
        path = tmp_path / (f"{kind}.gz" if compressed else kind)
        path.write_bytes(gzip.compress(raw) if compressed else raw)
        files[kind] = path
    parsed_images = parse_idx(files["images"], "images")
    parsed_labels = parse_idx(files["labels"], "labels")
    assert parsed_images.dtype == np.uint8 and parsed_images.shape == (7, 28, 28)
    assert parsed_labels.dtype == np.uint8 and parsed_labels.shape == (7,)
    np.testing.assert_array_equal(parsed_images, images)
    np.testing.assert_array_equal(parsed_labels, labels)


def test_header_is_big_endian_with_the_documented_magic_numbers(tmp_path):
    # Written by hand rather than with idx_bytes, so a wrong helper cannot hide a wrong parser.
    pixels = bytes(range(2 * 3 * 4))
    (tmp_path / "img").write_bytes(struct.pack(">IIII", 0x00000803, 2, 3, 4) + pixels)
    (tmp_path / "lab").write_bytes(struct.pack(">II", 0x00000801, 3) + bytes([0, 9, 5]))
    images = parse_idx(tmp_path / "img", "images")
    assert images.shape == (2, 3, 4)
    assert images[1, 2, 3] == 23
    assert parse_idx(tmp_path / "lab", "labels").tolist() == [0, 9, 5]


def assert_data_error_names(excinfo, path: Path, *words: str):
    message = str(excinfo.value)
    assert str(path) in message, message
    for word in words:
        assert word in message.lower(), message


@pytest.mark.parametrize("compressed", [True, False])
def test_truncated_payload_is_refused(tmp_path, compressed):
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-5]
    path = tmp_path / ("x.gz" if compressed else "x")
    path.write_bytes(gzip.compress(raw) if compressed else raw)
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, "images")
    assert_data_error_names(excinfo, path, "truncated")


@pytest.mark.parametrize("kind, array", [("images", np.zeros((3, 28, 28), np.uint8)),
                                         ("labels", np.arange(5, dtype=np.uint8))])
def test_trailing_bytes_are_refused(tmp_path, kind, array):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(array) + b"\x00"))
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, kind)
    assert_data_error_names(excinfo, path, "trailing")


@pytest.mark.parametrize("content, kind, problem", [
    (struct.pack(">II", 0x803, 3), "images", "truncated"),   # magic and one of three sizes
    (b"\x00\x00", "labels", ""),                              # too short for a magic number
    (b"<html>Not Found</html>", "images", "magic"),            # an error page saved as data
])
def test_malformed_headers_are_refused(tmp_path, content, kind, problem):
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, kind)
    assert_data_error_names(excinfo, path, problem)


@pytest.mark.parametrize("kind, array", [("images", np.arange(5, dtype=np.uint8)),          # a labels file
                                         ("labels", np.zeros((2, 28, 28), np.uint8))])      # an images file
def test_wrong_magic_is_refused(tmp_path, kind, array):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, kind)
    assert_data_error_names(excinfo, path, "magic")


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_corrupt_gzip_is_refused(tmp_path, damage):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8) % 10)))
    if damage == "cut":
        packed = packed[: len(packed) // 2]
    else:
        packed[-6] ^= 0xFF  # inside the CRC-32 / size trailer
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, "labels")
    assert_data_error_names(excinfo, path, "gzip")


def test_labels_above_nine_are_refused(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 10, 3], np.uint8))))
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, "labels")
    assert_data_error_names(excinfo, path, "10")


def test_unreadable_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError) as excinfo:
        parse_idx(tmp_path / "nope.gz", "images")
    assert_data_error_names(excinfo, tmp_path / "nope.gz")


# ---------------------------------------------------------------------------
# Bad headers and bombs: refused before allocating or decompressing (issue 21)

REGRESSIONS = Path(__file__).parent / "fuzz" / "regressions" / "idx"
# Each regression input (tests/fuzz/make_regressions.py builds them), the kind it is read as, and the words
# of its one message.
REFUSED = {
    "idx-zero-dimension": ("images", "0 x 4294967295 x 4294967068", "dimension of 0"),  # was ValueError
    "idx-zero-labels": ("labels", "dimension of 0"),
    "idx-product-overflows-int64": ("images", "4294967295 x 4294967295 x 4294967295", "more than"),
    "idx-gzip-bomb-trailing": ("images", "trailing"),                   # was inflated whole first
    "idx-gzip-declares-2GB": ("images", "2,116,800,000", "gzip bomb"),  # refused unread
    "idx-raw-declares-more-than-held": ("images", "truncated", "78400"),
    "idx-gzip-truncated-stream": ("images", "gzip"),
}


def test_every_regression_input_has_its_message_here():
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_regression_inputs_are_refused_with_one_message(tmp_path, name):
    kind, *words = REFUSED[name]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes((REGRESSIONS / name).read_bytes())
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, kind)
    assert_data_error_names(excinfo, path, *(w.lower() for w in words))
    assert "\n" not in str(excinfo.value)


def peak_traced_bytes(function, *args) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        function(*args)
    except DataError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_gzip_bomb_is_inflated_no_further_than_its_header_says(tmp_path):
    # One image and 16 MiB of zeros after it: the old parser inflated all 16 MiB (32 MB peak) first.
    path = tmp_path / "bomb.gz"
    path.write_bytes((REGRESSIONS / "idx-gzip-bomb-trailing").read_bytes())
    assert peak_traced_bytes(parse_idx, path, "images") < 3 * 2 ** 20


def test_memory_is_the_array_itself(tmp_path):
    images = np.zeros((4000, 28, 28), np.uint8)  # 3.1 MB that deflates 1000x
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(images)))
    peak = peak_traced_bytes(parse_idx, path, "images")
    assert images.nbytes <= peak < images.nbytes + 1.5 * 2 ** 20  # plus a few 256 KiB read pieces


def test_small_files_may_compress_well_but_large_declared_sizes_may_not(tmp_path):
    labels = np.zeros(2_000_000, np.uint8)  # 2 MB of sorted labels deflate ~1000x: below the 16 MiB threshold
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    assert parse_idx(path, "labels").shape == (2_000_000,)
    path.write_bytes(gzip.compress(struct.pack(">IIII", 0x803, 30_000, 28, 28)))  # 23.5 MB declared, 40 bytes
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, "images")
    assert_data_error_names(excinfo, path, "100x", "refused unread")


def test_a_raw_file_is_checked_against_its_header_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "x"
    path.write_bytes(struct.pack(">IIII", 0x803, 100_000, 28, 28) + bytes(784))
    monkeypatch.setattr(np, "empty", lambda *a, **k: pytest.fail("allocated before the size was checked"))
    with pytest.raises(DataError) as excinfo:
        parse_idx(path, "images")
    assert_data_error_names(excinfo, path, "truncated", "78400000")


# ---------------------------------------------------------------------------
# load_mnist: cross-file checks


def test_count_mismatch_between_images_and_labels(synthetic_data_dir):
    labels = synthetic_digits(599, seed=1)[1]
    (synthetic_data_dir / TRAIN_LABELS).write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError) as excinfo:
        load_mnist(synthetic_data_dir, validation_size=100)
    message = str(excinfo.value)
    assert str(synthetic_data_dir / TRAIN_IMAGES) in message and str(synthetic_data_dir / TRAIN_LABELS) in message
    assert "600" in message and "599" in message


def test_images_that_are_not_28x28_are_refused(synthetic_data_dir):
    (synthetic_data_dir / TEST_IMAGES).write_bytes(gzip.compress(idx_bytes(np.zeros((200, 28, 27), np.uint8))))
    with pytest.raises(DataError) as excinfo:
        load_mnist(synthetic_data_dir, validation_size=100)
    message = str(excinfo.value)
    assert str(synthetic_data_dir / TEST_IMAGES) in message and "28x27" in message


def test_missing_file_names_it_and_suggests_download(synthetic_data_dir):
    (synthetic_data_dir / TEST_LABELS).unlink()
    with pytest.raises(DataError) as excinfo:
        load_mnist(synthetic_data_dir, validation_size=100)
    assert TEST_LABELS in str(excinfo.value) and "digitnet download" in str(excinfo.value)


def test_bad_file_inside_the_data_dir_is_named(synthetic_data_dir):
    (synthetic_data_dir / TRAIN_LABELS).write_bytes(b"\x1f\x8b garbage that is not deflate")
    with pytest.raises(DataError) as excinfo:
        load_mnist(synthetic_data_dir, validation_size=100)
    assert str(synthetic_data_dir / TRAIN_LABELS) in str(excinfo.value)


# ---------------------------------------------------------------------------
# Splits


def test_splits_are_first_n_minus_v_and_last_v(synthetic_data_dir):
    train_images, train_labels = synthetic_digits(600, seed=1)
    test_images, test_labels = synthetic_digits(200, seed=2)
    mnist = load_mnist(synthetic_data_dir, validation_size=150)
    assert (len(mnist.training), len(mnist.validation), len(mnist.test)) == (450, 150, 200)
    np.testing.assert_array_equal(mnist.training.images, train_images[:450].reshape(450, 784))
    np.testing.assert_array_equal(mnist.training.labels, train_labels[:450])
    np.testing.assert_array_equal(mnist.validation.images, train_images[450:].reshape(150, 784))
    np.testing.assert_array_equal(mnist.validation.labels, train_labels[450:])
    np.testing.assert_array_equal(mnist.test.images, test_images.reshape(200, 784))
    np.testing.assert_array_equal(mnist.test.labels, test_labels)
    assert mnist.split("validation") is mnist.validation and mnist.split("test") is mnist.test
    assert [s.name for s in (mnist.training, mnist.validation, mnist.test)] == ["training", "validation", "test"]


def test_default_validation_size_is_ten_thousand(tmp_path):
    assert data.DEFAULT_VALIDATION_SIZE == 10000
    write_mnist(tmp_path, n_train=10050, n_test=20)
    mnist = load_mnist(tmp_path)
    assert (len(mnist.training), len(mnist.validation), len(mnist.test)) == (50, 10000, 20)
    labels = synthetic_digits(10050, seed=1)[1]
    np.testing.assert_array_equal(mnist.training.labels, labels[:50])
    np.testing.assert_array_equal(mnist.validation.labels, labels[50:])


def test_validation_size_zero_gives_an_empty_validation_split(synthetic_data_dir):
    mnist = load_mnist(synthetic_data_dir, validation_size=0)
    assert len(mnist.training) == 600 and len(mnist.validation) == 0
    assert mnist.validation.images.shape == (0, 784)


@pytest.mark.parametrize("size", [-1, 600, 601])
def test_validation_size_out_of_range(synthetic_data_dir, size):
    with pytest.raises(DataError, match="validation size"):
        load_mnist(synthetic_data_dir, validation_size=size)


def test_raw_files_load_like_gz(tmp_path):
    gz = load_mnist(write_mnist(tmp_path / "gz", 300, 50), validation_size=100)
    raw = load_mnist(write_mnist(tmp_path / "raw", 300, 50, gz=False), validation_size=100)
    assert not list((tmp_path / "raw").glob("*.gz"))
    for name in ("training", "validation", "test"):
        np.testing.assert_array_equal(gz.split(name).images, raw.split(name).images)
        np.testing.assert_array_equal(gz.split(name).labels, raw.split(name).labels)


def test_float_images_are_float32_in_unit_range_and_raw_stays_uint8(synthetic_data_dir):
    mnist = load_mnist(synthetic_data_dir, validation_size=100)
    raw = mnist.training.images
    before = raw.copy()
    assert raw.dtype == np.uint8 and raw.shape == (500, 784)
    x = mnist.training.float_images()
    assert x.dtype == np.float32 and x.shape == raw.shape
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() == 1.0  # 255 maps to exactly 1 (the synthetic bars are 255)
    np.testing.assert_allclose(x, raw / 255.0, rtol=1e-6)
    assert mnist.training.images.dtype == np.uint8
    np.testing.assert_array_equal(mnist.training.images, before)
    assert mnist.validation.images.dtype == np.uint8 and mnist.test.images.dtype == np.uint8
    assert mnist.training.float_images(np.float64).dtype == np.float64


def test_every_grey_level_maps_into_unit_range():
    levels = np.arange(256, dtype=np.uint8)
    x = data.to_float(levels)
    assert x.dtype == np.float32
    assert x[0] == 0.0 and x[255] == 1.0 and np.all(np.diff(x) > 0)


# ---------------------------------------------------------------------------
# The data directory


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir() == Path("data")
    assert resolve_data_dir(None).resolve() == tmp_path / "data"
    monkeypatch.setenv("DIGITNET_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    monkeypatch.setenv("DIGITNET_DATA_DIR", "")
    assert resolve_data_dir() == Path("data")


def test_load_mnist_uses_the_environment_variable(tmp_path, monkeypatch):
    write_mnist(tmp_path / "from-env", 120, 30)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGITNET_DATA_DIR", str(tmp_path / "from-env"))
    assert len(load_mnist(validation_size=20).test) == 30


# ---------------------------------------------------------------------------
# The real MNIST (skipped when ../shared/mnist is absent)


def test_real_mnist_loads(real_mnist_dir):
    mnist = load_mnist(real_mnist_dir)
    assert (len(mnist.training), len(mnist.validation), len(mnist.test)) == (50000, 10000, 10000)
    for split in (mnist.training, mnist.validation, mnist.test):
        assert split.images.dtype == np.uint8 and split.images.shape == (len(split), 784)
        assert split.labels.dtype == np.uint8 and split.labels.shape == (len(split),)
        assert set(np.unique(split.labels)) == set(range(10))
    # Well-known facts about MNIST: the first training label is 5, the first test label 7.
    assert mnist.training.labels[0] == 5 and mnist.test.labels[0] == 7
    assert mnist.training.images.max() == 255 and mnist.training.images.min() == 0
