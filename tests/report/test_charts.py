"""The report's charts and sections without a browser: heatmap margins follow the labels and a
colour scale is drawn, known 95% intervals become error bars, the harm target comes from the
recipe, and before/after compares with the checkpoint the loop kept."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from breakfix.bench.scorecard import Scorecard
from breakfix.cli import app
from breakfix.config import CycleConfig
from breakfix.policy import Headline
from breakfix.report import RoundView, _before_after, _target_figures
from breakfix.report.svg import heatmap, lines, text_width, tradeoff
from breakfix.stats import Rate
from breakfix.store import Store

SVG = "{http://www.w3.org/2000/svg}"
SMOKE = Path(__file__).parents[2] / "recipes" / "smoke.yaml"


def test_heatmap_margins_make_room_for_the_longest_labels_and_a_colour_scale_is_drawn():
    rows, columns = ["violent_crime_and_weapons_of_mass_harm", "fraud"], ["template+base64+rot13+leetspeak", "pair"]
    root = ET.fromstring(heatmap(rows, columns, {(rows[0], "pair"): (3, 4), ("fraud", columns[0]): (0, 2)}, "t"))
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {int(width)} {int(height)}"
    first_cell = min(float(r.get("x")) for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None)
    assert first_cell >= text_width(rows[0], 11)  # the row label fits left of the grid
    column = next(t for t in root.iter(f"{SVG}text") if t.text == columns[0])
    reach = text_width(columns[0], 10) * 0.707
    assert float(column.get("y")) >= reach and float(column.get("x")) + reach <= width  # the turned label stays inside
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert {"0%", "50%", "100%", "not tried"} <= set(labels) and any("attack success" in (t or "") for t in labels)


def test_a_short_label_heatmap_stays_compact():
    root = ET.fromstring(heatmap(["a"], ["b"], {("a", "b"): (1, 1)}, "t"))
    assert float(root.get("width")) < 600


def bars(svg_text):
    return [p.get("d") for p in ET.fromstring(svg_text).iter(f"{SVG}path") if p.get("class") == "ci"]


def test_rates_with_a_known_interval_are_drawn_with_error_bars_around_the_point():
    svg_text = lines({"all": [40.0, 10.0], "x": [20.0, None]}, ["base", "round 1"], "t",
                     intervals={"all": [(30.0, 50.0), None], "x": [(10.0, 35.0), (1.0, 2.0)]})
    (first, second) = bars(svg_text)  # None interval and None value draw nothing
    root = ET.fromstring(svg_text)
    point = next(root.iter(f"{SVG}circle"))
    ys = [float(v) for v in re.findall(r"V([\d.]+)", first)] + [float(v) for v in re.findall(r"M[\d.]+,([\d.]+)V", first)]
    assert min(ys) < float(point.get("cy")) < max(ys)
    assert bars(lines({"all": [40.0]}, ["base"], "t")) == []


def test_the_tradeoff_chart_draws_both_intervals_of_a_point():
    svg_text = tradeoff([("base", 10.0, 40.0)], "t", intervals=[((5.0, 20.0), (30.0, 55.0))])
    horizontal, vertical = bars(svg_text)
    assert "H" in horizontal and "V" in vertical


def rate(value):
    return Rate(n=100, k=100 * value, value=value, low=max(0, value - 0.05), high=min(1, value + 0.05))


def view(round_, harmful, promoted=None, run_id=None):
    card = Scorecard.model_construct(run_id=run_id or f"r{round_}")
    return RoundView(round=round_, card=card, figures=Headline(harmful=rate(harmful), vprr=None, capability=None),
                     promoted=promoted)


def test_the_harm_target_is_the_recipes_stop_target_not_a_fixed_drop():
    config = CycleConfig.model_validate({"stop": {"target_harmful_rate": 0.2}})
    (target,) = _target_figures([view(0, 0.5), view(1, 0.15, True)], config)
    assert target["target"] == "<= 20%" and target["met"] and "70% below base" in target["measured"]
    (missed,) = _target_figures([view(0, 0.5), view(1, 0.15, True)], CycleConfig.model_validate({"stop": {"target_harmful_rate": 0.1}}))
    assert missed["target"] == "<= 10%" and not missed["met"]


class FakeStore:
    def __init__(self, by_run):
        self.by_run = by_run

    def conversations(self, run_id):
        return self.by_run[run_id]


def answer(text, severity):
    return SimpleNamespace(purpose="eval:harm_single_turn", item_id="i1", meta={"severity": severity},
                           messages=[SimpleNamespace(role="user", content="q"), SimpleNamespace(role="assistant", content=text)])


def test_before_after_uses_the_last_promoted_round_and_says_when_none_was():
    config = CycleConfig.model_validate({"stop": {"harmful": ["harm_single_turn.dr1"]}})
    store = FakeStore({"r0": [answer("bad", 3)], "r1": [answer("kept", 0)], "r2": [answer("discarded", 0)]})
    shown = _before_after(store, [view(0, 0.5), view(1, 0.3, True), view(2, 0.1, False)], config, show_harmful=True)
    assert shown["round"] == 1 and [t["after"] for t in shown["items"]] == ["kept"]
    none = _before_after(store, [view(0, 0.5), view(1, 0.1, False)], config, show_harmful=True)
    assert none == {"round": None, "items": []}


def test_the_report_of_a_run_that_promoted_nothing_says_so(tmp_path):
    store = tmp_path / "s.db"
    result = CliRunner().invoke(app, ["run", "--config", str(SMOKE), "--model", "mock:refuse", "--store", str(store)])
    assert result.exit_code == 0, result.output
    with Store(store) as db:
        (run,) = [r for r in db.runs() if r.kind == "cycle"]
    text = (tmp_path / run.id / "report.html").read_text()
    assert 'id="before-after-none"' in text and "&gt;= 75%" not in text
