"""`Judges`/`load_judges` live in breakfix.judges.joint; the old import path still works."""


def test_old_import_path_is_the_same_object():
    from breakfix.attacks import Judges, load_judges
    from breakfix.judges import joint

    assert Judges is joint.Judges and load_judges is joint.load_judges

