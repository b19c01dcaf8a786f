"""The README's Python API example runs as written (with mock targets), and `import breakfix`
stays light."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    block = re.search(r"<!-- python-api-example.*?-->\n```python\n(.*?)```", text, re.S)
    assert block, "README lost its Python API example"
    monkeypatch.chdir(tmp_path)
    exec(compile(block[1], "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert "1.0" in printed and "8 0" in printed
    assert (tmp_path / "runs.db").exists()


def test_import_breakfix_loads_no_heavy_library():
    code = "import sys, breakfix; print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
    import breakfix

    assert set(breakfix.__all__) == {"load_target", "evaluate", "redteam", "run_loop"}
