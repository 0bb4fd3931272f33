"""Tests of filmgenre.preview.qmd: reading a Quarto document (cells, options, inline
expressions, cross references) before anything runs."""

import textwrap
from pathlib import Path

import pytest

from filmgenre.preview import qmd


def test_duplicate_label_is_reported():
    text = "```{python}\n#| label: fig-a\n1\n```\n\n```{python}\n#| label: fig-a\n2\n```\n\n@fig-a\n"
    check = qmd.check_references(text)
    assert check.duplicates == ["fig-a"] and not check.ok


def test_parse_qmd_cells_options_and_fences():
    doc = qmd.parse_qmd(Path("x.qmd"), text=textwrap.dedent("""\
        ---
        title: T
        ---

        Text `{python} a` here.

        ````markdown
        ```{python}
        not_a_cell()
        ```
        ````

        ```{python}
        #| label: fig-x
        #| fig-cap: "A: caption"
        #| echo: false
        plot()
        ```
        """))
    kinds = [c.kind for c in doc.cells]
    assert kinds == ["markdown", "code"]
    assert "not_a_cell()" in doc.cells[0].source
    code = doc.cells[1]
    assert code.options == {"label": "fig-x", "fig-cap": "A: caption", "echo": False}
    assert code.code == "plot()" and code.line == 13
    assert qmd.inline_expressions(doc.cells[0].source) == ["a"]
    assert doc.meta["title"] == "T"


def test_cell_options_are_yaml():
    doc = qmd.parse_qmd(Path("x.qmd"), text=textwrap.dedent("""\
        ```{python}
        #| label: tbl-a
        #| tbl-cap: "Scores, by model"
        #| warning: false
        #| fig-subcap:
        #|   - one
        #|   - two
        x = 1
        ```
        """))
    (cell,) = doc.cells
    assert cell.options == {"label": "tbl-a", "tbl-cap": "Scores, by model", "warning": False,
                            "fig-subcap": ["one", "two"]}
    assert cell.code == "x = 1" and cell.source.startswith("#| label: tbl-a")
    with pytest.raises(qmd.RenderError, match="line 1"):
        qmd.parse_qmd(Path("x.qmd"), text="```{python}\n#| label: [unclosed\n1\n```\n")
