import pytest

from breakfix.types import JudgeInput, user


@pytest.fixture(scope="session")
def home():
    from breakfix.paths import home

    return home()


@pytest.fixture(scope="session")
def refusal(home):
    from breakfix.judges import load_judge

    return load_judge("refusal", home)


@pytest.fixture(scope="session")
def harm(home):
    from breakfix.judges import load_judge

    return load_judge("harm", home)


def ask(prompt, response, **kw):
    return JudgeInput(conversation=user(prompt), response=response, **kw)
