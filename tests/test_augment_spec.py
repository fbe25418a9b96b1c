"""The --augment language: text to an Augmentation and back, and what a bad one is told."""

import pytest

from digitnet.augment_spec import Augmentation, AugmentError, parse


@pytest.mark.parametrize("spec, expected", [
    ("shift=2", Augmentation(shift=2)),
    ("2", Augmentation(shift=2)),
    (3, Augmentation(shift=3)),
    ("0", Augmentation()), ("", Augmentation()), ("none", Augmentation()), (0, Augmentation()),
    ("elastic=34:4", Augmentation(elastic_alpha=34, elastic_sigma=4)),
    ("affine=15:0.15", Augmentation(affine_degrees=15, affine_scale=0.15)),
    (" shift=1, elastic=8:3 ,affine=10:0.1", Augmentation(1, 8, 3, 10, 0.1)),
])
def test_the_augment_language(spec, expected):
    assert parse(spec) == expected
    assert parse(str(expected)) == expected  # the canonical text reads back


@pytest.mark.parametrize("spec, words", [
    ("shift=5", "shift must be"), ("shift=1.5", "shift must be"), ("elastic=34", "ALPHA:SIGMA"),
    ("elastic=34:0", "sigma"), ("elastic=-1:4", "alpha"), ("affine=100:0.1", "degrees"),
    ("affine=10:0.9", "scale"), ("blur=3", "unknown distortion"), ("shift=a", "not a number"),
    ("shift=1,shift=2", "twice"), ("elastic=34:4,elastic=10:4", "elastic is given twice"),
    ("affine=10:0.1, affine=5:0.1", "affine is given twice"), ("elastic", "NAME=VALUE"), ("elastic=nan:4", "finite"),
])
def test_bad_specifications_say_what_is_wrong(spec, words):
    with pytest.raises(AugmentError, match=words):
        parse(spec)

