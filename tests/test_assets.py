import base64
import hashlib
import json
import zipfile

import pytest

from breakfix import assets
from breakfix.assets import Wheel, data_dir, ensure_wheel, verify_wheel
from breakfix.errors import AssetError


def make_wheel(path, files):
    """A minimal wheel with a RECORD carrying sha256 of each file, as pip builds them."""
    record = []
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        zf.writestr("fake-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def wheelhouse(tmp_path, monkeypatch):
    house = tmp_path / "house"
    house.mkdir()
    monkeypatch.setenv("BREAKFIX_WHEELHOUSE", str(house))
    sha = make_wheel(house / "fake-1.0-py3-none-any.whl",
                     {"fake/data/a.json": b'{"x": 1}', "fake/data/b.txt": b"bee", "fake/code.py": b"print()"})
    wheel = Wheel(name="fake", version="1.0", file="fake-1.0-py3-none-any.whl", sha256=sha,
                  licence="MIT", extract=("fake/data/*",))
    return house, wheel


def test_extracts_only_the_listed_files_and_is_idempotent(tmp_path, wheelhouse):
    house, wheel = wheelhouse
    home = tmp_path / "home"
    out = ensure_wheel(wheel, home)
    assert out == data_dir(wheel, home)
    assert (out / "fake/data/a.json").read_bytes() == b'{"x": 1}'
    assert not (out / "fake/code.py").exists()
    assert json.loads((out / "manifest.json").read_text())["licence"] == "MIT"
    (house / wheel.file).unlink()  # a second call must not need the wheel again
    assert ensure_wheel(wheel, home) == out
    assert verify_wheel(wheel, home) == []


def test_hash_mismatch_is_an_error_and_leaves_nothing_behind(tmp_path, wheelhouse):
    _, wheel = wheelhouse
    home = tmp_path / "home"
    wrong = Wheel(**{**wheel.__dict__, "sha256": "0" * 64})
    with pytest.raises(AssetError, match="does not match the pinned"):
        ensure_wheel(wrong, home)
    assert not data_dir(wrong, home).exists()
    assert not list((home / "data").glob(".tmp-*"))


def test_truncated_wheel_is_rejected(tmp_path, wheelhouse):
    house, wheel = wheelhouse
    path = house / wheel.file
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(AssetError, match="corrupt or truncated"):
        ensure_wheel(wheel, tmp_path / "home")


def test_stale_temp_dirs_from_a_killed_run_are_cleaned(tmp_path, wheelhouse):
    _, wheel = wheelhouse
    home = tmp_path / "home"
    stale = home / "data" / ".tmp-killed"
    (stale / "files").mkdir(parents=True)
    ensure_wheel(wheel, home)
    assert not stale.exists()


def test_verify_detects_a_changed_file(tmp_path, wheelhouse):
    _, wheel = wheelhouse
    out = ensure_wheel(wheel, tmp_path / "home")
    (out / "fake/data/b.txt").write_bytes(b"tampered")
    assert verify_wheel(wheel, tmp_path / "home") == ["fake/data/b.txt"]


def test_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("BREAKFIX_WHEELHOUSE", raising=False)
    missing = Wheel(name="breakfix-no-such-package-xyz", version="9.9.9", file="none.whl",
                    sha256="0" * 64, licence="-", extract=("*",))
    with pytest.raises(AssetError, match="could not download breakfix-no-such-package-xyz==9.9.9"):
        ensure_wheel(missing, tmp_path / "home")


def test_every_pinned_wheel_has_a_full_sha256():
    for wheel in assets.pinned_wheels().values():
        assert len(wheel.sha256) == 64 and int(wheel.sha256, 16) >= 0
        assert wheel.file.startswith(wheel.name.replace("-", "_")) and wheel.extract and wheel.licence


@pytest.mark.slow
def test_the_embedded_model_in_the_cache_matches_its_recorded_hash():
    from breakfix.paths import home

    path = assets.ensure_embedded_model(home())
    assert (path / "model.safetensors").is_file()
    assert assets.verify_embedded_model(home())
