"""The HTML report renders in a real browser without console errors, is self-contained, and
redacts harmful completions unless asked."""

from pathlib import Path

from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store
from tests.report.conftest import ARTIFACTS, open_in_chromium

SMOKE = Path(__file__).parents[2] / "recipes" / "smoke.yaml"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_the_report_of_a_loop_renders_in_chromium_without_console_errors(tmp_path):
    store = tmp_path / "s.db"
    assert invoke("run", "--config", SMOKE, "--model", "mock:refuse", "--store", store).exit_code == 0
    with Store(store) as db:
        (run,) = [r for r in db.runs() if r.kind == "cycle"]
    html = tmp_path / "out" / "report.html"
    result = invoke("report", run.id, "-o", html, "--store", store)
    assert result.exit_code == 0, result.output
    text = html.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dom, console = open_in_chromium(html, ARTIFACTS / "report-mock.png")
    assert console == []
    assert 'data-rendered="ok"' in dom and "Round by round" in dom and "nothing to fix" in dom
    assert (ARTIFACTS / "report-mock.png").stat().st_size > 10_000
