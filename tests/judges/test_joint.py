"""`Judges`/`load_judges` live in breakfix.judges.joint; the old import path still works and
importing attacks does not load every judge."""

import subprocess
import sys


def test_old_import_path_is_the_same_object():
    from breakfix.attacks import Judges, load_judges
    from breakfix.judges import joint

    assert Judges is joint.Judges and load_judges is joint.load_judges


def test_importing_attacks_does_not_load_the_judges():
    code = "import sys, breakfix.attacks; print('breakfix.judges.harm' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
