"""Turn an arbitrary picture of one digit into a 28x28 MNIST-style input: pure numpy + Pillow.

MNIST's own recipe (LeCun et al.): the NIST digits were size-normalised to fit
a 20x20 box keeping their aspect ratio, anti-aliased (so edges are grey), and
placed in a 28x28 field so that their centre of mass sits at the centre.  The
ink is white (1.0) on black (0.0).  A user's picture is usually nothing like
that -- dark ink on paper, a photo with noise and uneven light, a transparent
drawing-app export -- so before MNIST's steps we first find the ink.  One
module per stage:

    decode.py      open_image, open_picture, to_float_channels, composite: a file to float pixels,
                   transparency flattened
    paper.py       fit_paper, ink_is_dark, ink_signal, denoise, paper_noise, threshold_ink: ink versus paper
    ink.py         shrink_for_detection, find_ink (paper.py's steps, then keep_digit), crop_to_ink, refine,
                   digit_groups: where the digit is
    normalise.py   normalise_strokes, fit_to_box, centre_by_mass: MNIST's normalisation
    verdict.py     judge: whether the ink looks like a digit at all (a dot, an X, a line, a scribble do not)
    pipeline.py    preprocess, preprocess_with_notes, preprocess_with_verdict, load_image: the stages in order
    bits.py        as_bits: a boolean map as one integer, for erosions by shifts (stroke width, blob depth)
    errors.py      ImageError, the one error (a one-line message)

Callers need only the names exported here; each step is importable from its
module.  Nothing here prints.
"""

from digitnet.images.decode import open_image, open_picture
from digitnet.images.errors import ImageError
from digitnet.images.pipeline import load_image, preprocess, preprocess_with_notes, preprocess_with_verdict
from digitnet.images.verdict import Verdict

__all__ = ["ImageError", "Verdict", "load_image", "open_image", "open_picture", "preprocess",
           "preprocess_with_notes", "preprocess_with_verdict"]
