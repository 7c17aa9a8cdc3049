"""The conformance kit over the backend named by ``--hal-backend`` (collected by ``plugin``)."""

from __future__ import annotations

import pytest

from hal_workflow.testing.conformance import KNOBS, ConformanceSuite
from hal_workflow.testing.plugin import KNOBS_KEY, SPEC_KEY


class TestHalBackend(ConformanceSuite):
    """:class:`ConformanceSuite` with its spec and knobs taken from the command line."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _hal_cli_options(cls, request: pytest.FixtureRequest) -> None:
        stash = request.config.stash
        if SPEC_KEY not in stash:
            pytest.skip("run with --hal-backend SPEC")
        cls.backend_spec = stash[SPEC_KEY]
        for name, value in stash[KNOBS_KEY].items():
            if name not in KNOBS:
                raise pytest.UsageError(
                    f"--hal-knob: ConformanceSuite has no knob {name!r}; knobs: {', '.join(KNOBS)}"
                )
            setattr(cls, name, value)
