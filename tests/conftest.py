from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    return Path(os.environ.get("MCUQ_MODELS", ROOT.parent / "shared" / "models"))


def have_shared_models() -> bool:
    return (models_dir() / "mlperf_tiny").is_dir()


@pytest.fixture(scope="session")
def shared_models() -> Path:
    d = models_dir()
    if not have_shared_models():
        pytest.skip(f"shared models not found at {d} (set MCUQ_MODELS)")
    return d


_NEEDS_MODELS = pytest.StashKey[int]()


def shared_models_line(config: pytest.Config) -> str:
    """The one line that opens every session: where the shared models are looked for, and what their absence costs.

    The count is of the collected tests that request ``shared_models`` (directly or through another fixture).
    """
    d = models_dir()
    source = "MCUQ_MODELS" if "MCUQ_MODELS" in os.environ else "default; MCUQ_MODELS overrides"
    if have_shared_models():
        return f"shared models: {d} ({source})"
    n = config.stash.get(_NEEDS_MODELS, 0)
    return (
        f"shared models: not found at {d} ({source}): {n} test(s) will skip; "
        "set MCUQ_MODELS=/path/to/shared/models to run them"
    )


@pytest.hookimpl(trylast=True)  # after -k/-m deselection
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_NEEDS_MODELS] = sum("shared_models" in getattr(i, "fixturenames", ()) for i in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    # After collection, so that the count is known; the report header is written before collection.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(shared_models_line(session.config))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ instead of comparing with them",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True under ``pytest --update-golden``: golden-file tests write what they would compare."""
    return bool(request.config.getoption("--update-golden"))


def have_arm_toolchain() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


# Tests build the generated C with -fsanitize=address,undefined unless a test says otherwise.
os.environ.setdefault("MCUQ_SANITIZE", "1")
