"""The conformance kit over the backend named by ``--hal-backend`` (collected by ``plugin``)."""

from __future__ import annotations

import pytest

from hal_workflow.testing.conformance import ConformanceSuite


class TestHalBackend(ConformanceSuite):
    """:class:`ConformanceSuite` with its spec and knobs taken from the command line."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _hal_cli_options(cls, request: pytest.FixtureRequest) -> None:
        config = request.config
        if not hasattr(config, "_hal_backend_spec"):
            pytest.skip("run with --hal-backend SPEC")
        cls.backend_spec = config._hal_backend_spec
        for name, value in config._hal_knobs.items():
            if not hasattr(ConformanceSuite, name) or name.startswith("_"):
                raise pytest.UsageError(f"--hal-knob: ConformanceSuite has no knob {name!r}")
            setattr(cls, name, value)
