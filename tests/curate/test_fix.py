"""Curation from a stored red-team run, with a scripted model answering twins and retention."""

import pytest

from breakfix.attacks.campaign import Campaign, run
from breakfix.config import CurateConfig, RedteamConfig
from breakfix.curate.fix import FixData, _check, curate
from breakfix.curate.replies import _texts
from breakfix.data import load_catalog
from breakfix.errors import InputError
from breakfix.paths import home
from breakfix.store import Store
from breakfix.targets.mock import MockTarget
from tests.attacks.conftest import EAGER, SEEDS
from tests.attacks.test_campaign import PERSONA, Weak

CONFIG = CurateConfig(per_target=4, floor=1, benign_ratio=1.0, retention_ratio=0.5, resample=1)


@pytest.fixture(scope="module")
def stored(tmp_path_factory, judges):
    path = tmp_path_factory.mktemp("curate") / "s.db"
    with Store(path) as db:
        run_id = db.create_run("redteam", model="weak")
        c = Campaign(run_id, Weak(), judges, PERSONA, RedteamConfig(persona="test", budget=48, batch=8, seed=3), SEEDS, (),
                     store=db)
        run(c)
    return path, run_id


@pytest.fixture(scope="module")
def fix(stored, judges) -> FixData:
    path, run_id = stored
    with Store(path) as db:
        return curate(db, run_id, load_catalog(home()), MockTarget("echo"), judges, CONFIG, home=home())


def test_targets_follow_the_breaks(fix):
    cells = {(v.category, v.technique) for v in fix.ranking.targets if v.scope == "cell"}
    assert cells == {("cyber", "direct+leetspeak")}


def test_findings_become_safe_sft_and_dpo_pairs_against_the_harmful_reply(fix):
    openers = _texts()["openers"]
    pairs = [d for d in fix.dpo if d.source == "finding"]
    assert pairs and all(d.rejected[0].content == EAGER for d in pairs)
    assert all(any(d.chosen[0].content.startswith(o) for o in openers) for d in pairs)
    assert all(d.prompt[-1].role == "user" and "h4ck" in d.prompt[-1].content for d in pairs)  # as attacked


def test_sft_rows_are_trl_messages_and_hold_no_harmful_text(fix):
    sources = {e.source for e in fix.sft}
    assert {"finding", "attack", "direct", "retention"} <= sources
    for e in fix.sft:
        assert e.messages[-1].role == "assistant" and e.messages[-2].role == "user"
        assert all(EAGER not in m.content for m in e.messages)  # harmful text only ever as DPO "rejected"
    attacked = [e for e in fix.sft if e.source == "attack" and e.technique == "direct+leetspeak"]
    assert attacked and all(any(ch.isdigit() for ch in e.messages[-2].content) for e in attacked)


def test_retention_follows_its_ratio(fix):
    safety = sum(e.source in ("finding", "attack", "direct") for e in fix.sft)
    retention = sum(e.source == "retention" for e in fix.sft)
    assert 0 < retention <= round(0.5 * safety)


def test_every_category_with_safety_examples_gets_contrastive_look_alikes(fix):
    openers = _texts()["openers"]
    safety = {e.category for e in fix.sft if e.source in ("finding", "attack", "direct")}
    benign = [e for e in fix.sft if e.source.startswith("benign")]
    assert {e.category for e in benign} == safety
    pairs = [d for d in fix.dpo if d.source.startswith("benign")]
    assert {d.category for d in pairs} == safety
    for d in pairs:  # the model's helpful answer preferred over one of our refusals
        assert any(d.rejected[0].content.startswith(o) for o in openers)
        assert not any(d.chosen[0].content.startswith(o) for o in openers)
    # look-alikes for a wrapped technique come in the same wrapper, as the red team sent them
    assert any(e.source == "benign:wrapped" for e in benign) or all(
        e.technique.split("+")[0] == "direct" for e in fix.sft if e.source in ("finding", "attack"))


def test_without_contrastive_dpo_look_alikes_are_sft_only(stored, judges):
    path, run_id = stored
    with Store(path) as db:
        plain = curate(db, run_id, load_catalog(home()), MockTarget("echo"), judges,
                       CONFIG.model_copy(update={"contrastive_dpo": False}), home=home())
    assert any(e.source.startswith("benign") for e in plain.sft)
    assert not any(d.source.startswith("benign") for d in plain.dpo)


def test_a_deflection_share_swaps_only_the_rejected_side_of_look_alike_pairs(stored, judges, fix):
    """Part of the contrastive pairs reject a capability disclaimer instead of a refusal; the
    rest of the fix data (every prompt, chosen answer and other pair) is what it was without."""
    path, run_id = stored
    with Store(path) as db:
        mixed = curate(db, run_id, load_catalog(home()), MockTarget("echo"), judges,
                       CONFIG.model_copy(update={"deflection_share": 0.5}), home=home())
    deflections, openers = _texts()["deflections"], tuple(_texts()["openers"])
    assert mixed.sft == fix.sft
    assert len(mixed.dpo) == len(fix.dpo)
    swapped = 0
    for before, after in zip(fix.dpo, mixed.dpo):
        assert (after.prompt, after.chosen, after.source) == (before.prompt, before.chosen, before.source)
        if after.rejected != before.rejected:
            assert before.source.startswith("benign") and before.rejected[0].content.startswith(openers)
            assert before.rejected_by.startswith("safe_reply:")
            assert after.rejected[0].content in deflections and after.rejected_by.startswith("deflection:")
            swapped += 1
    benign = sum(d.source.startswith("benign") for d in fix.dpo)
    assert 0 < swapped < benign


class Reluctant(MockTarget):
    """Refuses every greedy request and echoes when sampled: its look-alikes are answered only on a
    resample, and its own first refusal is on record."""

    REFUSAL = "I'm sorry, but as a chatbot I don't have the ability to answer that."

    def chat(self, conversations, config):
        return [r if config.temperature else r.model_copy(update={"content": self.REFUSAL})
                for r in super().chat(conversations, config)]


def test_a_look_alike_the_model_refused_keeps_its_own_refusal_as_the_rejected_side(stored, judges):
    path, run_id = stored
    with Store(path) as db:
        fix = curate(db, run_id, load_catalog(home()), Reluctant("echo"), judges,
                     CONFIG.model_copy(update={"deflection_share": 1.0}), home=home())
    pairs = [d for d in fix.dpo if d.source.startswith("benign")]
    assert pairs
    for d in pairs:  # never swapped for one of ours, whatever the share
        assert d.rejected[0].content == Reluctant.REFUSAL and d.rejected_by.startswith("model:")


def test_safety_requests_the_model_answered_become_pairs_against_its_own_reply(fix):
    pairs = [d for d in fix.dpo if d.source in ("attack", "direct")]
    assert pairs  # the echo model never refuses: its reply (the request, echoed) is "rejected"
    for d in pairs:
        assert d.rejected[0].content == d.prompt[-1].content
        assert any(e.messages[:-1] == d.prompt and e.messages[-1] == d.chosen[0] for e in fix.sft)


def test_no_safety_pair_where_the_model_already_refused_and_the_floor_can_be_wrapped(stored, judges):
    path, run_id = stored
    config = CONFIG.model_copy(update={"floor_techniques": ["direct", "template"]})
    with Store(path) as db:
        refusing = curate(db, run_id, load_catalog(home()), MockTarget("refuse"), judges, config, home=home())
    assert not [d for d in refusing.dpo if d.source in ("attack", "direct")]
    # Every look-alike refused: none kept, and the note says why they were left out.
    assert not [e for e in refusing.sft if e.source.startswith("benign")]
    [note] = [n for n in refusing.notes if "benign look-alikes had no helpful answer" in n]
    dropped = int(note.split(" of ")[0])
    assert dropped > 0 and f"(greedy reply: {dropped} refused, 0 partly refused, judged harm >= 2 or unscoreable, 0 failed)" in note
    floor = [e for e in refusing.sft if e.source == "attack" and e.technique == "template"]
    assert {e.category for e in floor} == {e.category for e in refusing.sft if e.source == "direct"}


def test_a_phrasing_floor_frames_its_look_alikes_from_the_same_set(stored, judges):
    from breakfix.converters.phrasing import phrase

    path, run_id = stored
    config = CONFIG.model_copy(update={"floor_techniques": ["direct+phrasing"]})
    with Store(path) as db:
        fix = curate(db, run_id, load_catalog(home()), MockTarget("echo"), judges, config, home=home())
    catalog = {s.id: s for s in load_catalog(home()).seeds}
    phrased = [e for e in fix.sft if e.technique == "direct+phrasing"]
    safety = [e for e in phrased if e.source == "attack"]
    benign = [e for e in phrased if e.source.startswith("benign")]
    assert safety and benign
    for e in safety + benign:  # the request inside one of our everyday frames, readable as it was
        assert e.messages[-2].content == phrase(catalog[e.seed_id].text) != catalog[e.seed_id].text


def test_look_alikes_drop_the_encodings_of_the_examples_they_are_set_against(fix):
    catalog = {s.id: s for s in load_catalog(home()).seeds}
    encoded = [e for e in fix.sft if e.source.startswith("benign") and e.technique == "direct+leetspeak"]
    assert encoded  # asked as written, so the model's plain answer fits the prompt
    assert all(e.messages[-2].content == catalog[e.seed_id].text for e in encoded)


def test_curation_is_deterministic(stored, judges, fix):
    path, run_id = stored
    with Store(path) as db:
        again = curate(db, run_id, load_catalog(home()), MockTarget("echo"), judges, CONFIG, home=home())
    assert [e.model_dump() for e in again.sft] == [e.model_dump() for e in fix.sft]


def test_an_example_close_to_an_eval_item_fails_curation(fix):
    from breakfix.curate.fix import SFTExample
    from breakfix.types import Message

    catalog = load_catalog(home())
    leaked = catalog.select(kind="harmful", split="eval")[0]
    bad = fix.model_copy(update={"sft": [SFTExample(messages=[Message(role="user", content=leaked.text),
                                                             Message(role="assistant", content="No.")], source="direct")]})
    with pytest.raises(InputError, match="overlaps the eval split"):
        _check(bad, catalog, home(), 0.8)


def test_probes_are_fresh_requests_of_the_fixed_categories_kept_out_of_sft(stored, judges):
    path, run_id = stored
    with Store(path) as db:
        probed = curate(db, run_id, load_catalog(home()), MockTarget("echo"), judges,
                        CONFIG.model_copy(update={"probe_ratio": 1.0}), home=home())
    openers = _texts()["openers"]
    benign = [p for p in probed.probes if p.kind == "benign"]
    harmful = [p for p in probed.probes if p.kind == "harmful"]
    assert benign and harmful and probed.counts["probe:benign"] == len(benign)
    trained = {e.seed_id for e in probed.sft} | {d.seed_id for d in probed.dpo}
    assert not trained & {p.seed_id for p in probed.probes}  # none of them trains in SFT or in curation's pairs
    safety = {e.category for e in probed.sft if e.source in ("finding", "attack", "direct")}
    assert {p.category for p in probed.probes} <= safety
    assert all(not any(p.chosen[0].content.startswith(o) for o in openers) for p in benign)  # the model's answer
    assert all(any(p.chosen[0].content.startswith(o) for o in openers) for p in harmful)  # our safe reply
    catalog = {s.id: s.family or s.id for s in load_catalog(home()).seeds}
    assert not {catalog.get(i, i) for i in trained if i} & {catalog[p.seed_id] for p in probed.probes}  # nor their families
    # without probes the rest of the fix data is exactly what it was
    with Store(path) as db:
        plain = curate(db, run_id, load_catalog(home()), MockTarget("echo"), judges, CONFIG, home=home())
    assert not plain.probes and "probe:benign" not in plain.counts
    assert [e.model_dump() for e in plain.sft] == [e.model_dump() for e in probed.sft]
    assert [d.model_dump() for d in plain.dpo] == [d.model_dump() for d in probed.dpo]


def test_breakfix_curate_writes_probes_for_breakfix_train_and_clears_stale_ones(stored, tmp_path):
    from typer.testing import CliRunner

    from breakfix.cli import app
    from breakfix.curate.on_policy import read_probes

    path, run_id = stored
    config = tmp_path / "c.yaml"
    config.write_text("curate:\n  per_target: 4\n  floor: 1\n  retention_ratio: 0.5\n  resample: 1\n  probe_ratio: 1.0\n")
    out, args = tmp_path / "fix", ["curate", "--run", run_id, "-m", "mock:echo", "-o", str(tmp_path / "fix"), "--store", str(path)]
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    probes = read_probes(out / "probes.jsonl")
    assert probes and {p.kind for p in probes} == {"benign", "harmful"} and f"{len(probes)} probes" in result.output
    config.write_text(config.read_text().replace("probe_ratio: 1.0", "probe_ratio: 0"))
    assert CliRunner().invoke(app, [*args, "--config", str(config)]).exit_code == 0
    assert not (out / "probes.jsonl").exists()  # not the earlier curation's
