"""Build the IDX and checkpoint seed corpora and regression inputs (raw bytes, committed).

    python -m tests.fuzz.make_regressions [--mnist /work/shared/mnist]

Each regression file is one root cause from issue 21 (or a finding of the fuzzer); the tests in
tests/test_data.py and tests/test_checkpoint.py assert the message each one gets.  The page_png
ones (issue 23) are each a way of being almost the page's PNG, which page_png must hand to Pillow.  The files are
deterministic: rebuilding them gives the same bytes (gzip and zip timestamps are fixed).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATE = (2026, 1, 1, 0, 0, 0)


# ---------------------------------------------------------------------------
# IDX


def idx(magic: int, shape: tuple[int, ...], data: bytes = b"") -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape) + data


def idx_regressions() -> dict[str, bytes]:
    one_image = idx(0x803, (1, 28, 28), bytes(784))
    return {
        # 16 bytes from the issue: count 0 and two dimensions whose product wraps int64 (ValueError in reshape)
        "idx-zero-dimension": bytes.fromhex("00000803 00000000 ffffffff ffffff1c"),
        "idx-zero-labels": idx(0x801, (0,)),
        "idx-product-overflows-int64": idx(0x803, (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)),
        # a 16 MiB tail of zeros after one image: was inflated whole before the sizes were compared
        "idx-gzip-bomb-trailing": gzip.compress(one_image + bytes(16 << 20), compresslevel=9, mtime=0),
        # the header claims 2 GB in a 40-byte .gz: refused before inflating anything
        "idx-gzip-declares-2GB": gzip.compress(idx(0x803, (2_700_000, 28, 28)), mtime=0),
        "idx-raw-declares-more-than-held": idx(0x803, (100, 28, 28), bytes(784)),
        "idx-gzip-truncated-stream": gzip.compress(one_image, mtime=0)[:-12],
    }


def idx_corpus(mnist: Path | None) -> dict[str, bytes]:
    """Small real files: the first test images and labels (raw and .gz), else synthetic ones."""
    if mnist and (mnist / "t10k-images-idx3-ubyte.gz").is_file():
        images = np.frombuffer(gzip.decompress((mnist / "t10k-images-idx3-ubyte.gz").read_bytes()), np.uint8, 
                               offset=16).reshape(-1, 28, 28)[:12]
        labels = np.frombuffer(gzip.decompress((mnist / "t10k-labels-idx1-ubyte.gz").read_bytes()), np.uint8,
                               offset=8)[:60]
    else:
        rng = np.random.default_rng(0)
        images, labels = rng.integers(0, 256, (12, 28, 28), np.uint8), rng.integers(0, 10, 60, np.uint8)
    image_file = idx(0x803, images.shape, images.tobytes())
    label_file = idx(0x801, labels.shape, labels.tobytes())
    return {"t10k-images-12": image_file, "t10k-images-12.gz": gzip.compress(image_file, mtime=0),
            "t10k-labels-60": label_file, "t10k-labels-60.gz": gzip.compress(label_file, mtime=0),
            "images-2x3x4": idx(0x803, (2, 3, 4), bytes(range(24)))}


# ---------------------------------------------------------------------------
# Checkpoints


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_raw(header: str, data: bytes = b"", version: int = 1) -> bytes:
    """A .npy member with a hand-written header (no padding checks: numpy does not need them)."""
    h = header.encode("latin1")
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


def metadata(sizes=(4, 3, 2), **changes) -> dict:
    meta = {"format_version": 2, "sizes": list(sizes), "activation": "sigmoid", "cost": "quadratic",
            "dtype": "float32", "epochs_completed": 1,
            "history": [{"epoch": 1, "training_cost": 0.5, "validation_accuracy": 0.5, "seconds": 0.1,
                         "learning_rate": 3.0, "cost_source": "sgd"}],
            "hyperparameters": {"hidden_sizes": list(sizes[1:-1]), "epochs": 1, "learning_rate": 3.0}}
    meta.update(changes)
    return meta


def layers(sizes=(4, 3, 2), prefix: str = "", dtype=np.float32, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        arrays[f"{prefix}w{l}"] = rng.standard_normal((n_out, n_in)).astype(dtype)
        arrays[f"{prefix}b{l}"] = rng.standard_normal(n_out).astype(dtype)
    return arrays


def npz(members: dict[str, bytes | np.ndarray], deflate: bool = False) -> bytes:
    """A zip of .npy members (arrays are saved; bytes are written as they are), fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, value in members.items():
            info = zipfile.ZipInfo(name if name.endswith((".npy", ".txt")) else name + ".npy", DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            z.writestr(info, value if isinstance(value, bytes) else npy(value))
    return buf.getvalue()


def checkpoint(meta: dict | None = None, arrays: dict | None = None, deflate: bool = False, **extra) -> bytes:
    members = {"metadata": np.array(json.dumps(meta if meta is not None else metadata()))}
    members.update(arrays if arrays is not None else layers())
    members.update(extra)
    return npz(members, deflate)


def patch_central(data: bytes, name: bytes, offset: int, value: int, local_offset: int | None = None) -> bytes:
    """Set a 2-byte field of ``name``'s central directory entry (and of its local header)."""
    out = bytearray(data)
    central = out.find(b"PK\x01\x02" + b"\x00" * 0)  # first central entry, then search by name
    while central != -1:
        length = struct.unpack_from("<H", out, central + 28)[0]
        if bytes(out[central + 46: central + 46 + length]) == name:
            struct.pack_into("<H", out, central + offset, value)
            if local_offset is not None:
                local = struct.unpack_from("<I", out, central + 42)[0]
                struct.pack_into("<H", out, local + local_offset, value)
            return bytes(out)
        central = out.find(b"PK\x01\x02", central + 4)
    raise ValueError(name)


def deep_json(depth: int) -> str:
    return '{"format_version": 2, "x": ' + "[" * depth + "]" * depth + "}"


def checkpoint_regressions() -> dict[str, bytes]:
    plain = checkpoint()
    huge = npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 66666), }\n")
    w0_deflated = checkpoint(deflate=True)
    start = w0_deflated.find(b"w0.npy") + len("w0.npy")  # the first member after metadata: its data begins here
    corrupt = bytearray(w0_deflated)
    corrupt[start: start + 4] = b"\xff\xff\xff\xff"  # deflate block type 3 (reserved): zlib.error
    bomb_meta = metadata(sizes=(2048, 2048, 2))
    overflow = layers(dtype=np.float64)
    overflow["w1"][0, 0] = 1e300  # finite as float64, inf as the model's float32
    return {
        "npz-cost-is-a-list": checkpoint(metadata(cost=["quadratic"])),
        "npz-cost-is-an-object": checkpoint(metadata(cost={"name": "quadratic"})),
        "npz-metadata-nested-100000-deep": checkpoint(arrays={}, deflate=True,
                                                       **{"metadata": np.array(deep_json(100_000))}),
        "npz-metadata-nested-40-deep": checkpoint(metadata(state={"x": json.loads("[" * 40 + "]" * 40)})),
        "npz-member-without-npy-magic": checkpoint(arrays=dict(layers(), w0=b"not an npy array at all")),
        "npz-unicode-above-10ffff": npz({"metadata": npy_raw("{'descr': '<U1', 'fortran_order': False, "
                                                             "'shape': (), }\n", struct.pack("<I", 0x110000))}),
        "npz-declared-50GiB": npz({"metadata": np.array(json.dumps(metadata())), "w0": huge}),
        "npz-npy-header-syntax-error": checkpoint(arrays=dict(layers(), w0=npy_raw(
            "{'descr': 'f4,(', 'fortran_order': False, 'shape': (3, 4), }\n", bytes(48)))),
        "npz-npy-header-token-error": checkpoint(arrays=dict(layers(), w0=npy_raw("{(", bytes(48)))),
        "npz-zip-version-9.9": patch_central(plain, b"w0.npy", 6, 99),
        "npz-zip-method-99": patch_central(plain, b"w0.npy", 10, 99, local_offset=8),
        "npz-zip-encrypted": patch_central(plain, b"w0.npy", 8, 0x1, local_offset=6),
        "npz-zip-patched-data-flag": patch_central(plain, b"w0.npy", 8, 0x20, local_offset=6),
        "npz-corrupt-deflate": bytes(corrupt),
        # 16 MiB of zeros declared as a matching 2048x2048 float32 w0, deflated to 16 KB
        "npz-deflate-bomb": checkpoint(bomb_meta, arrays={"w0": np.zeros((2048, 2048), np.float32)}, deflate=True),
        "npz-weight-overflows-float32": checkpoint(arrays=overflow),
        "npz-history-cost-is-text": checkpoint(metadata(history=[{"epoch": 1, "training_cost": "low"}])),
        "npz-huge-integer-accuracy": checkpoint(metadata(test_accuracy=10 ** 400)),
        "npz-setting-of-wrong-type": checkpoint(metadata(hyperparameters={"epochs": "many"})),
        # found by the fuzzer: "\ud800" in the JSON is a lone surrogate that `digitnet info` could not print
        "npz-metadata-lone-surrogate": checkpoint(metadata(dataset="\ud800")),
        "npz-resume-state-of-wrong-type": checkpoint(metadata(state={"epochs_completed": "1"})),
        "npz-unexpected-member": checkpoint(arrays=dict(layers(), w7=np.zeros(3, np.float32))),
        "npz-object-array": checkpoint(arrays=dict(layers(), w0=npy_raw(
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", b"\x80\x04N."))),
    }


def checkpoint_corpus() -> dict[str, bytes]:
    """Real checkpoints as ``checkpoint.save`` writes them (small networks), and the variants it reads."""
    import tempfile

    from digitnet import checkpoint as ckpt
    from digitnet.network import Network

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, sizes, kwargs in (("784-5-10-best", (784, 5, 10), {"best": True}),
                                    ("4-3-2", (4, 3, 2), {}),
                                    ("4-3-3-2-momentum-float64", (4, 3, 3, 2),
                                     {"velocities": True, "dtype": "float64"}),
                                    ("3-2-log-likelihood", (3, 2), {"cost": "log-likelihood"})):
            net = Network(list(sizes), cost=kwargs.get("cost", "quadratic"), rng=np.random.default_rng(0),
                          dtype=kwargs.get("dtype", "float32"))
            best = Network(list(sizes), rng=np.random.default_rng(1)) if kwargs.get("best") else None
            velocities = ([w * 0.1 for w in net.weights], [b * 0.1 for b in net.biases]) \
                if kwargs.get("velocities") else None
            path = ckpt.save(Path(tmp) / "m.npz", net, metadata(sizes)
                             | {"cost": net.cost.name}, best_network=best, velocities=velocities)
            out[name + ".npz"] = path.read_bytes()
    out["4-3-2-version-1.npz"] = checkpoint(metadata(format_version=1))
    out["4-3-2-deflated.npz"] = checkpoint(deflate=True)
    return out


# ---------------------------------------------------------------------------
# The page's PNG (digitnet/images/page_png.py)


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) if crc is None else crc)


def page_png(grey: np.ndarray, filters: np.ndarray | None = None, header: tuple = (8, 0, 0, 0, 0),
             size: tuple[int, int] | None = None, stream: bytes | None = None, extra: bytes = b"") -> bytes:
    """A PNG as static/png.js writes it (every row filter 0, zlib level 6), or changed in one way:
    the rows' filter bytes, IHDR's last five fields or its size, the deflate stream, chunks before IEND."""
    height, width = grey.shape
    rows = np.zeros((height, width + 1), np.uint8)
    rows[:, 1:] = grey
    if filters is not None:
        rows[:, 0] = filters
    width, height = size or (width, height)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">II", width, height) + bytes(header))
            + png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6) if stream is None else stream)
            + extra + png_chunk(b"IEND", b""))


def page_png_corpus() -> dict[str, bytes]:
    rng = np.random.default_rng(23)
    strokes = np.full((64, 64), 255, np.uint8)
    strokes[10:54, 28:36] = 22
    strokes[10:18, 16:40] = 22
    return {"page-64-strokes.png": page_png(strokes), "page-28-noise.png": page_png(rng.integers(0, 256, (28, 28), np.uint8)),
            "page-9x200-one-row-band.png": page_png(np.full((9, 200), 200, np.uint8))}


def page_png_regressions() -> dict[str, bytes]:
    grey = np.full((40, 40), 255, np.uint8)
    grey[8:32, 18:22] = 22
    good = page_png(grey)
    one_filtered = np.zeros(40, np.uint8)
    one_filtered[30] = 2  # "Up" on row 30: found only after the first rows were inflated
    return {
        "page-png-row-30-filtered": page_png(grey, filters=one_filtered),
        "page-png-interlaced": page_png(grey, header=(8, 0, 0, 0, 1)),
        "page-png-16-bit": page_png(grey, header=(16, 0, 0, 0, 0)),
        "page-png-bad-ihdr-crc": good[:29] + bytes([good[29] ^ 1]) + good[30:],
        "page-png-bad-idat-crc": good[:-16] + bytes([good[-16] ^ 1]) + good[-15:],
        "page-png-bytes-after-iend": good + b"\0",
        "page-png-truncated-stream": page_png(grey, stream=zlib.compress(bytes(41 * 40))[:-6]),
        "page-png-stream-too-long": page_png(grey, stream=zlib.compress(bytes(41 * 41))),
        "page-png-stream-then-garbage": page_png(grey, stream=zlib.compress(bytes(41 * 40)) + b"xyz"),
        # 512 x 512 declared, a stream of 64 MB of zeros: inflating stops after 262,656 bytes
        "page-png-deflate-bomb": page_png(grey, size=(512, 512), stream=zlib.compress(bytes(64 << 20), 9)),
        "page-png-side-513": page_png(np.zeros((1, 513), np.uint8)),
        "page-png-text-chunk": page_png(grey, extra=png_chunk(b"tEXt", b"Comment\0hello")),
        # an orientation (6: turned) in an eXIf chunk: Pillow's path must apply it
        "page-png-exif-orientation": page_png(grey, extra=png_chunk(
            b"eXIf", b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", type=Path, default=Path("/work/shared/mnist"))
    args = parser.parse_args()
    for folder, files in ((HERE / "regressions" / "idx", idx_regressions()),
                          (HERE / "corpus" / "idx", idx_corpus(args.mnist)),
                          (HERE / "regressions" / "checkpoint", checkpoint_regressions()),
                          (HERE / "corpus" / "checkpoint", checkpoint_corpus()),
                          (HERE / "regressions" / "page_png", page_png_regressions()),
                          (HERE / "corpus" / "page_png", page_png_corpus()),
                          (HERE / "corpus" / "image", {"page-64-strokes.png": page_png_corpus()["page-64-strokes.png"]})):
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
            print(f"{len(data):>9,}  {(folder / name).relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main()
