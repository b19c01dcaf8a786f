"""The paired upper bound the loop's choice on dev uses."""

import pytest

from breakfix.stats import paired_upper


def test_the_upper_bound_of_a_paired_rise_sits_above_it_by_the_discordant_noise():
    # 16 newly refused and none fewer of 178: +9.0 points, its one-sided 90% bound +11.7
    assert paired_upper(0, 16, 178, 0.9) == pytest.approx(0.1174, abs=1e-4)
    assert paired_upper(0, 16, 178, 0.95) > paired_upper(0, 16, 178, 0.9) > 16 / 178
    # The same net change over more discordant items is less certain.
    assert paired_upper(10, 26, 178, 0.9) > paired_upper(0, 16, 178, 0.9)
    # A fall has a bound below zero when it is clear, and nothing discordant is exactly no change.
    assert paired_upper(20, 0, 178, 0.9) < 0 and paired_upper(0, 0, 178, 0.9) == 0


def test_no_items_or_a_lower_than_half_confidence_is_an_error():
    with pytest.raises(ValueError):
        paired_upper(0, 0, 0, 0.9)
    with pytest.raises(ValueError):
        paired_upper(0, 3, 50, 0.3)
