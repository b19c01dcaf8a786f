"""`breakfix gate`: the loop's refusal gate for any local model, from the command line."""

import pytest
from typer.testing import CliRunner

from breakfix.cli import app

runner = CliRunner()


def test_a_flag_rate_outside_its_range_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["gate", "--model", "smollm2-135m", "--rate", "0.6", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "--rate 0.6" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_a_model_that_is_not_local_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["gate", "--model", "mock:refuse", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "local Hugging Face model" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_gate_writes_a_gated_model_per_rate_that_loads_with_its_gate(tmp_path):
    from breakfix.targets import load_target

    result = runner.invoke(app, ["gate", "--model", "smollm2-135m", "--rate", "0.05,0.2", "--prompts", "60",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "gate@0.05: threshold" in result.output and "gate@0.2: threshold" in result.output
    low, high = (load_target(f"hf:{tmp_path / f'gate-{r}'}") for r in ("0.05", "0.2"))
    assert low.gate.threshold > high.gate.threshold and low.gate.flag_rate <= 0.05
