"""Movies: reading frame stacks, global drift correction and even/odd frame sums.

The even and odd frame sums of one movie carry the same signal with independent shot noise: they
are the real Noise2Noise pairs (as in cryoCARE and Topaz-Denoise).
"""

from cryoden.movies.alignment import estimate_global_drift, shift_image
from cryoden.movies.frames import EvenOddSums, even_odd_sums, iter_movie_frames, read_gain

__all__ = [
    "EvenOddSums",
    "estimate_global_drift",
    "even_odd_sums",
    "iter_movie_frames",
    "read_gain",
    "shift_image",
]
