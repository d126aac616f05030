"""Hypothesis profiles for every property test (tests/property/, the API fuzzing).

    ci    the default, in `make test`: derandomized (the same examples on every run and
          every machine, so a red build is never a coin toss) and bounded so that all the
          property tests together stay well under a minute on a busy 2-core machine.
    fuzz  `HYPOTHESIS_PROFILE=fuzz`: 30x the examples from a fresh random seed each run, so
          every fuzz run explores inputs no earlier run tried; a failure is saved in the
          example database (.hypothesis/) and replayed first next time, and its reproduction
          blob is printed.

Usage: ``load_profile()`` once (tests/conftest.py does, for every test); CI and FUZZ name the two.
"""

from __future__ import annotations

import os

from hypothesis import settings

CI = "ci"
FUZZ = "fuzz"
CI_MAX_EXAMPLES = 100
FUZZ_MAX_EXAMPLES = 30 * CI_MAX_EXAMPLES

# The machine is shared and noisy: a per-example deadline would fail on load, not on bugs.
settings.register_profile(
    CI,
    derandomize=True,
    database=None,  # derandomized: there is nothing new to remember between runs
    max_examples=CI_MAX_EXAMPLES,
    deadline=None,
    print_blob=True,
)
settings.register_profile(
    FUZZ,
    derandomize=False,
    max_examples=FUZZ_MAX_EXAMPLES,
    deadline=None,
    print_blob=True,
)


def load_profile() -> str:
    """Load the profile named by HYPOTHESIS_PROFILE (default "ci"); return its name."""
    name = os.environ.get("HYPOTHESIS_PROFILE", CI)
    if name not in (CI, FUZZ):
        raise ValueError(f"HYPOTHESIS_PROFILE must be {CI!r} or {FUZZ!r}, not {name!r}")
    settings.load_profile(name)
    return name
