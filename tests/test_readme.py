"""The README's code example runs as printed (documentation that rots is worse than none)."""
import contextlib
import io
import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_geomlib_in_one_screen_runs():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## geomlib in one screen"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue()
    assert "True" in printed and "False" not in printed  # every pair converged
    D = torch.tensor([[float(v) for v in re.findall(r"\d+\.\d+", row)] for row in printed.splitlines()[-6:]])
    assert D.shape == (6, 6)
    torch.testing.assert_close(D, D.T)
