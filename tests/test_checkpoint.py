"""Checkpoints: exact round trips, refusal of anything unsafe or malformed, atomic writes."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest

from digitnet import checkpoint
from digitnet.checkpoint import FORMAT_VERSION, CheckpointError, load, save
from digitnet.network import Network


def make_network(sizes=(784, 12, 10), seed=0, cost="quadratic", dtype="float32") -> Network:
    return Network(list(sizes), cost=cost, rng=np.random.default_rng(seed), dtype=dtype)


METADATA = {
    "hyperparameters": {"hidden_sizes": [12], "learning_rate": 3.0, "batch_size": 10},
    "epochs_completed": 2,
    "history": [{"epoch": 1, "training_cost": 0.5, "validation_accuracy": 0.8},
                {"epoch": 2, "training_cost": 0.25, "validation_accuracy": None}],
    "note": "ünïcödé ✓",
}


def assert_same_network(a: Network, b: Network):
    assert a.sizes == b.sizes and a.cost is b.cost and a.dtype == b.dtype
    assert len(a.weights) == len(b.weights) and len(a.biases) == len(b.biases)
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def arrays_of(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def write_npz(path, arrays: dict):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@pytest.fixture
def saved(tmp_path):
    return save(tmp_path / "model.npz", make_network(), METADATA)


# ---------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_round_trip_is_exact(tmp_path, dtype, cost):
    network = make_network((784, 16, 7, 10), seed=3, cost=cost, dtype=dtype)
    best = make_network((784, 16, 7, 10), seed=4, cost=cost, dtype=dtype)
    path = save(tmp_path / "m.npz", network, METADATA, best_network=best)
    ckpt = load(path)
    assert_same_network(ckpt.network, network)
    assert_same_network(ckpt.best_network, best)
    for key, value in METADATA.items():
        assert ckpt.metadata[key] == value
    assert ckpt.metadata["format_version"] == FORMAT_VERSION
    assert ckpt.metadata["sizes"] == [784, 16, 7, 10]
    assert ckpt.metadata["cost"] == cost and ckpt.metadata["dtype"] == dtype
    assert ckpt.history == METADATA["history"]
    assert ckpt.path == path
    # The loaded network computes exactly what the saved one did.
    x = np.random.default_rng(0).random((5, 784))
    np.testing.assert_array_equal(ckpt.network.feedforward(x), network.feedforward(x))


def test_without_best_network(saved):
    ckpt = load(saved)
    assert ckpt.best_network is None
    assert not any(key.startswith("best_") for key in arrays_of(saved))


def test_save_does_not_change_the_callers_metadata(tmp_path):
    metadata = {"epochs_completed": 1}
    save(tmp_path / "m.npz", make_network(), metadata)
    assert metadata == {"epochs_completed": 1}


def test_file_is_plain_arrays_readable_without_pickle(tmp_path):
    path = save(tmp_path / "m.npz", make_network(), METADATA, best_network=make_network(seed=1))
    arrays = arrays_of(path)  # allow_pickle=False: would raise on any object array
    assert set(arrays) == {"w0", "b0", "w1", "b1", "best_w0", "best_b0", "best_w1", "best_b1", "metadata"}
    assert all(a.dtype.kind in "fU" for a in arrays.values())
    assert json.loads(str(arrays["metadata"][()]))["epochs_completed"] == 2
    assert arrays["w0"].shape == (12, 784) and arrays["b0"].shape == (12,)


def test_load_never_unpickles_nor_hands_the_file_to_numpy_load(saved, monkeypatch):
    # The loader reads the zip and the .npy headers itself (bounded); numpy.load and pickle are never reached.
    def forbidden(*args, **kwargs):
        raise AssertionError("called")

    for owner, name in ((np, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(owner, name, forbidden)
    assert load(saved).network.sizes == [784, 12, 10]


def test_loads_a_checkpoint_given_as_str(saved):
    assert load(str(saved)).network.sizes == [784, 12, 10]


# ---------------------------------------------------------------------------
# Refusals: each is one CheckpointError naming the file


def refuse(path, *words):
    with pytest.raises(CheckpointError) as excinfo:
        load(path)
    message = str(excinfo.value)
    assert str(path) in message, message
    for word in words:
        assert word.lower() in message.lower(), message
    return message


def test_pickled_object_array_inside_the_npz_is_refused(saved, tmp_path):
    arrays = arrays_of(saved)
    arrays["w0"] = np.array([{"evil": "object"}], dtype=object)
    path = write_npz(tmp_path / "evil.npz", arrays)
    refuse(path, "pickle")


def test_pickled_object_as_metadata_is_refused(saved, tmp_path):
    arrays = arrays_of(saved)
    arrays["metadata"] = np.array(dict(METADATA), dtype=object)
    refuse(write_npz(tmp_path / "evil.npz", arrays), "pickle")


def test_a_plain_pickle_file_is_refused_without_running_it(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Boom()))
    refuse(path, "pickle")
    assert not (tmp_path / "ran").exists()


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a checkpoint at all\n" * 20)
    message = refuse(path, "not a valid")
    assert "allow_pickle" not in message  # numpy's advice to unpickle is not for the user


def test_garbage_with_a_zip_signature(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    refuse(path)


def test_a_zip_that_is_not_an_npz(tmp_path):
    import zipfile

    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    refuse(path)


def test_truncated_checkpoint(saved):
    content = saved.read_bytes()
    saved.write_bytes(content[: len(content) // 2])
    refuse(saved)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    refuse(path)


def test_missing_file(tmp_path):
    refuse(tmp_path / "absent.npz", "no such file")


def test_a_directory(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    refuse(tmp_path / "dir.npz", "folder")


def test_a_bare_npy_array(tmp_path):
    path = tmp_path / "model.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((10, 784), np.float32))
    refuse(path, ".npy")


def test_missing_metadata(saved, tmp_path):
    arrays = arrays_of(saved)
    del arrays["metadata"]
    refuse(write_npz(tmp_path / "m.npz", arrays), "metadata")


@pytest.mark.parametrize("bad", [np.array("{not json"), np.array('["a", "list"]'),
                                 np.array([1.0, 2.0]), np.array(["{}", "{}"])])
def test_bad_metadata(saved, tmp_path, bad):
    arrays = arrays_of(saved)
    arrays["metadata"] = bad
    refuse(write_npz(tmp_path / "m.npz", arrays), "metadata")


def rewrite_metadata(saved, tmp_path, **changes):
    arrays = arrays_of(saved)
    metadata = json.loads(str(arrays["metadata"][()]))
    for key, value in changes.items():
        if value is ...:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    arrays["metadata"] = np.array(json.dumps(metadata))
    return write_npz(tmp_path / "m.npz", arrays)


@pytest.mark.parametrize("version", [3, 0, "1", "2", True, None, ...])
def test_unknown_format_version(saved, tmp_path, version):
    refuse(rewrite_metadata(saved, tmp_path, format_version=version), "format version")


@pytest.mark.parametrize("sizes", [[784], [784, 0, 10], [784, "12", 10], "784-12-10", [784, 12.0, 10], ...])
def test_bad_sizes(saved, tmp_path, sizes):
    refuse(rewrite_metadata(saved, tmp_path, sizes=sizes), "sizes")


def test_unknown_cost_and_activation(saved, tmp_path):
    refuse(rewrite_metadata(saved, tmp_path, cost="hinge"), "cost")
    refuse(rewrite_metadata(saved, tmp_path, activation="relu"), "activation")


def test_bad_history(saved, tmp_path):
    refuse(rewrite_metadata(saved, tmp_path, history=[1, 2]), "history")


def test_sizes_inconsistent_with_the_arrays(saved, tmp_path):
    refuse(rewrite_metadata(saved, tmp_path, sizes=[784, 13, 10]), "shape")


def test_wrong_shape_array(saved, tmp_path):
    arrays = arrays_of(saved)
    arrays["w1"] = np.zeros((10, 11), np.float32)
    refuse(write_npz(tmp_path / "m.npz", arrays), "w1", "shape")


def test_bias_with_wrong_shape(saved, tmp_path):
    arrays = arrays_of(saved)
    arrays["b0"] = arrays["b0"].reshape(12, 1)
    refuse(write_npz(tmp_path / "m.npz", arrays), "b0", "shape")


@pytest.mark.parametrize("key", ["w0", "b1"])
def test_missing_array(saved, tmp_path, key):
    arrays = arrays_of(saved)
    del arrays[key]
    refuse(write_npz(tmp_path / "m.npz", arrays), key, "missing")


def test_incomplete_best_network(tmp_path):
    path = save(tmp_path / "m.npz", make_network(), METADATA, best_network=make_network(seed=1))
    arrays = arrays_of(path)
    del arrays["best_b1"]
    refuse(write_npz(tmp_path / "broken.npz", arrays), "best_b1")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_path, value):
    network = make_network()
    network.weights[1][3, 4] = value
    path = save(tmp_path / "m.npz", network, METADATA)
    refuse(path, "w1", "nan")


def test_non_finite_best_weights(tmp_path):
    best = make_network(seed=1)
    best.biases[0][0] = np.nan
    refuse(save(tmp_path / "m.npz", make_network(), METADATA, best_network=best), "best_b0")


def test_integer_weights(saved, tmp_path):
    arrays = arrays_of(saved)
    arrays["w0"] = arrays["w0"].astype(np.int64)
    refuse(write_npz(tmp_path / "m.npz", arrays), "w0", "dtype")


# ---------------------------------------------------------------------------
# Atomic writes and permissions


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "model.npz")


def test_failed_save_keeps_the_previous_checkpoint_and_leaves_no_temp_file(saved, monkeypatch):
    before = saved.read_bytes()
    real_savez = np.savez

    def savez_then_fail(file, *args, **kwargs):
        buffer = io.BytesIO()
        real_savez(buffer, *args, **kwargs)
        file.write(buffer.getvalue()[:1000])  # a partial file on disk...
        file.flush()
        raise OSError(28, "No space left on device")  # ...then the disk fills up

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="(?i)no space"):
        save(saved, make_network(seed=9), {"epochs_completed": 3})
    assert saved.read_bytes() == before
    assert leftovers(saved.parent) == []
    assert load(saved).metadata["epochs_completed"] == 2


def test_interrupted_save_keeps_the_previous_checkpoint(saved, monkeypatch):
    before = saved.read_bytes()

    def interrupted(file, *args, **kwargs):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(saved, make_network(seed=9), {"epochs_completed": 3})
    assert saved.read_bytes() == before
    assert leftovers(saved.parent) == []


def test_first_save_failing_leaves_nothing(tmp_path, monkeypatch):
    def fail(file, *args, **kwargs):
        file.write(b"partial")
        raise OSError(5, "I/O error")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError):
        save(tmp_path / "model.npz", make_network(), METADATA)
    assert list(tmp_path.iterdir()) == []


def test_successful_save_replaces_the_file_and_leaves_no_temp_file(saved):
    save(saved, make_network(seed=5), {"epochs_completed": 7})
    assert leftovers(saved.parent) == []
    ckpt = load(saved)
    assert ckpt.metadata["epochs_completed"] == 7
    assert_same_network(ckpt.network, make_network(seed=5))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_checkpoint_has_normal_permissions(tmp_path, umask_022):
    path = save(tmp_path / "m.npz", make_network(), METADATA)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o644, oct(mode)
    # An overwrite keeps normal permissions too (mkstemp's temp files are 0600).
    save(path, make_network(seed=1), METADATA)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = save(tmp_path / "m.npz", make_network(), METADATA)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_into_a_missing_folder_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        save(tmp_path / "no" / "such" / "m.npz", make_network(), METADATA)


def test_module_constants():
    assert checkpoint.FORMAT_VERSION == 2 and checkpoint.ACTIVATION == "sigmoid"
    assert checkpoint.READABLE_VERSIONS == (1, 2)


def test_version_1_checkpoints_are_still_read(saved, tmp_path):
    old = load(rewrite_metadata(saved, tmp_path, format_version=1))
    assert old.velocities is None
    np.testing.assert_array_equal(old.network.weights[0], load(saved).network.weights[0])


def test_checkpoints_from_before_the_augment_language_still_load(saved, tmp_path):
    """--augment was a shift in pixels (an int) before it was a spec; such files load and resume as shift=N."""
    from digitnet.config import TrainConfig

    hyper = dict(json.loads(str(arrays_of(saved)["metadata"][()])).get("hyperparameters") or {}, augment=2)
    old = load(rewrite_metadata(saved, tmp_path, hyperparameters=hyper))
    assert old.metadata["hyperparameters"]["augment"] == 2
    assert TrainConfig.from_dict(old.metadata["hyperparameters"]).augment == "shift=2"
    with pytest.raises(CheckpointError):
        load(rewrite_metadata(saved, tmp_path, hyperparameters=dict(hyper, augment=-1)))


def test_momentum_velocities_round_trip(tmp_path):
    network = make_network()
    velocities = ([np.full_like(w, 0.25) for w in network.weights], [np.full_like(b, -0.5) for b in network.biases])
    ckpt = load(save(tmp_path / "m.npz", network, METADATA, velocities=velocities))
    for saved_v, loaded_v in zip(velocities[0] + velocities[1], ckpt.velocities[0] + ckpt.velocities[1]):
        np.testing.assert_array_equal(saved_v, loaded_v)
    assert load(save(tmp_path / "n.npz", network, METADATA)).velocities is None


def test_weights_chooses_the_best_epoch_when_kept_and_says_which():
    from digitnet.checkpoint import Checkpoint, digit_reader_problem

    last, best = Network([784, 5, 10], rng=np.random.default_rng(1)), Network([784, 5, 10], rng=np.random.default_rng(2))
    assert Checkpoint(last, {}, best).weights("best") == (best, "best")
    assert Checkpoint(last, {}, best).weights("last") == (last, "last")
    assert Checkpoint(last, {}).weights("best") == (last, "last")
    assert digit_reader_problem(last, "m.npz") is None
    assert digit_reader_problem(Network([4, 3, 2]), "m.npz") == (
        "m.npz: a 4-3-2 network cannot read 28x28 digits (it needs 784 inputs and 10 outputs)")


# ---------------------------------------------------------------------------
# Bad files from issue 21 and the fuzzer: each one CheckpointError, in bounded memory

REGRESSIONS = Path(__file__).parent / "fuzz" / "regressions" / "checkpoint"
# Each regression input (tests/fuzz/make_regressions.py builds them), what escaped before, and the words
# of its one message now.
REFUSED = {
    "npz-cost-is-a-list": ("TypeError", "unknown cost ['quadratic']"),
    "npz-cost-is-an-object": ("TypeError", "unknown cost {'name'"),
    "npz-metadata-nested-100000-deep": ("RecursionError", "nests deeper than 32"),
    "npz-metadata-nested-40-deep": ("", "nests deeper than 32"),
    "npz-member-without-npy-magic": ("AttributeError", "'w0' is not a .npy array"),
    "npz-unicode-above-10ffff": ("SystemError", "metadata is not valid unicode"),
    "npz-declared-50GiB": ("MemoryError", "53,332,800,000 bytes", "more than this reader accepts"),
    "npz-npy-header-syntax-error": ("SyntaxError", "'w0' has a malformed .npy header"),
    "npz-npy-header-token-error": ("TokenError", "'w0' has a malformed .npy header"),
    "npz-zip-version-9.9": ("NotImplementedError", "zip file version 9.9"),
    "npz-zip-method-99": ("NotImplementedError", "compression method 99", "only stored and deflated"),
    "npz-zip-encrypted": ("RuntimeError", "w0.npy is encrypted"),
    "npz-zip-patched-data-flag": ("NotImplementedError", "unsupported zip features", "0x0020"),
    "npz-corrupt-deflate": ("zlib.error", "invalid block type"),
    "npz-deflate-bomb": ("", "would inflate to 16,778,884 bytes", "refused unread"),
    "npz-weight-overflows-float32": ("loaded as inf", "'w1' holds nan or infinite values (as float32)"),
    "npz-history-cost-is-text": ("info: ValueError", "'history'", "wrong type"),
    "npz-huge-integer-accuracy": ("info: OverflowError", "'test_accuracy' must be a number"),
    "npz-setting-of-wrong-type": ("info: TypeError", "setting 'epochs' has the wrong type"),
    "npz-unexpected-member": ("ignored", "unexpected array 'w7'"),
    "npz-metadata-lone-surrogate": ("info: UnicodeEncodeError", "not unicode", "lone surrogate"),
    "npz-resume-state-of-wrong-type": ("train --resume: TypeError", "'state.epochs_completed' must be a whole"),
    "npz-object-array": ("", "pickled python objects"),
}


def test_every_regression_input_has_its_message_here():
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_regression_inputs_are_refused_with_one_message(tmp_path, name):
    path = tmp_path / "bad.npz"
    path.write_bytes((REGRESSIONS / name).read_bytes())
    message = refuse(path, *REFUSED[name][1:])
    assert "\n" not in message and len(message) < 300 + len(str(path))


def traced_peak(function, *args) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        function(*args)
    except CheckpointError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("name", ["npz-deflate-bomb", "npz-declared-50GiB", "npz-metadata-nested-100000-deep"])
def test_bombs_cost_no_memory(tmp_path, name):
    # Before: the deflate bomb inflated 16 MiB (1.9 GB for the 1.9 MB file), the 189-byte file
    # asked numpy for 49.7 GiB.  Now both are refused from the zip directory and the .npy header.
    path = tmp_path / "bad.npz"
    path.write_bytes((REGRESSIONS / name).read_bytes())
    assert traced_peak(load, path) < 4 * 2 ** 20


def test_memory_is_about_the_arrays_themselves(tmp_path):
    network = make_network((784, 300, 10))
    path = save(tmp_path / "m.npz", network, METADATA)
    arrays = sum(a.nbytes for a in network.weights + network.biases)
    assert traced_peak(load, path) < arrays + 2 * 2 ** 20  # plus one 1 MiB read piece and the metadata


def test_compressed_fortran_big_endian_and_float16_arrays_load_as_numpy_reads_them(saved, tmp_path):
    arrays = arrays_of(saved)
    arrays["w0"] = np.asfortranarray(arrays["w0"])
    arrays["w1"] = arrays["w1"].astype(">f8")
    arrays["b1"] = arrays["b1"].astype(np.float16)
    path = tmp_path / "c.npz"
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    ckpt = load(path)
    for key, got in (("w0", ckpt.network.weights[0]), ("b0", ckpt.network.biases[0]),
                     ("w1", ckpt.network.weights[1]), ("b1", ckpt.network.biases[1])):
        np.testing.assert_array_equal(got, arrays[key].astype(np.float32))
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.flags.writeable


def test_a_member_whose_crc_does_not_match_is_refused(saved):
    content = bytearray(saved.read_bytes())
    at = content.find(b"w1.npy") + 200  # inside w1's data, after its local header and .npy header
    content[at] ^= 0xFF
    saved.write_bytes(bytes(content))
    refuse(saved, "crc")


def test_an_incomplete_momentum_set_is_refused(tmp_path):
    network = make_network()
    velocities = ([np.zeros_like(w) for w in network.weights], [np.zeros_like(b) for b in network.biases])
    arrays = arrays_of(save(tmp_path / "m.npz", network, METADATA, velocities=velocities))
    del arrays["velocity_w0"]
    refuse(write_npz(tmp_path / "v.npz", arrays), "velocity_w0", "missing")


@pytest.mark.parametrize("field, value", [("best_epoch", "3"), ("epochs_completed", -1), ("versions", {"numpy": 2}),
                                          ("dtype", ["float32"]), ("hyperparameters", []),
                                          ("history", [{"epoch": 1, "validation_accuracy": [0.5]}]),
                                          ("state", {"epochs_completed": "2"}), ("state", {"rng_state": {"state": 1}})])
def test_metadata_fields_are_typed(saved, tmp_path, field, value):
    refuse(rewrite_metadata(saved, tmp_path, **{field: value}), repr(field).strip("'"))


def test_metadata_a_run_writes_is_accepted(saved, tmp_path):
    # nulls where runs write them, settings this digitnet does not know (shown as text), a real RNG state
    path = rewrite_metadata(saved, tmp_path, best_epoch=None, stopped=None, test_accuracy=None,
                            hyperparameters={"seed": None, "epochs": 3, "learning_rate": 3, "future_option": "x"},
                            state={"rng_state": np.random.default_rng(7).bit_generator.state, "stopped": ""})
    assert load(path).metadata["hyperparameters"]["future_option"] == "x"


def small_png(path):
    from PIL import Image

    Image.new("L", (28, 28), 255).save(path)
    return path


@pytest.mark.parametrize("name", ["npz-cost-is-a-list", "npz-declared-50GiB", "npz-unicode-above-10ffff",
                                  "npz-zip-encrypted", "npz-deflate-bomb", "npz-huge-integer-accuracy"])
def test_the_commands_say_one_line_and_exit_1(tmp_path, name):
    from click.testing import CliRunner

    from digitnet.cli import main

    model = tmp_path / "bad.npz"
    model.write_bytes((REGRESSIONS / name).read_bytes())
    image = small_png(tmp_path / "x.png")
    for args in (["info", model], ["evaluate", "-m", model, "--data-dir", tmp_path], ["predict", "-m", model, image]):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and str(model) in lines[0] and "Traceback" not in result.output, result.output
