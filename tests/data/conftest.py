import pytest


@pytest.fixture(scope="session")
def home():
    from breakfix.paths import home

    return home()


@pytest.fixture(scope="session")
def catalog(home):
    """The default catalog (built by `breakfix assets`; cached, so about a second here)."""
    from breakfix.data import load_catalog

    return load_catalog(home)
