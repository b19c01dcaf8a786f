from breakfix.judges import load_judge
from breakfix.types import JudgeInput, user

CONTEXT = ("Larkfield Library opens at 9 am on weekdays and at 10 am on Saturdays. It is closed on Sundays. "
           "Members can borrow up to eight books for three weeks. The library café sells soup and sandwiches.")


def test_supported_answers_score_low_and_invented_ones_high(home):
    judge = load_judge("groundedness", home)
    question = user("When does the library open and how many books can I borrow?")
    grounded, invented, none = judge.score([
        JudgeInput(conversation=question, response="It opens at 9 am on weekdays and 10 am on Saturdays, and members can borrow up to eight books.", context=CONTEXT),
        JudgeInput(conversation=question, response="It opens at 6 am every day including Sundays, you can borrow 40 books for a year, and the café serves sushi.", context=CONTEXT),
        JudgeInput(conversation=question, response="It opens at 9 am."),
    ])
    assert grounded.value <= 1 and invented.value >= 3
    assert grounded.kind == "ungroundedness" and 0 <= invented.value <= 4
    assert none.unscoreable and "no context" in none.reason
