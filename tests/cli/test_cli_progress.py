"""The progress bar: rate and ETA on a terminal, silence otherwise."""

from __future__ import annotations

import io

from chronik._progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_shows_percentage_rate_and_eta_on_a_terminal() -> None:
    terminal = FakeTerminal()
    with Progress("rebuilding", total=1000, stream=terminal) as bar:
        bar.advance(250)
        text = bar.render(now=bar._started + 5.0)
    assert "25%" in text
    assert "250/1,000 events" in text
    assert "50 events/s" in text
    assert "ETA 0:15" in text
    assert terminal.getvalue().endswith("\n")
    assert "rebuilding" in terminal.getvalue()


def test_unknown_total_shows_count_and_elapsed() -> None:
    bar = Progress("projecting", stream=FakeTerminal())
    bar.advance(3000)
    text = bar.render(now=bar._started + 2.0)
    assert "3,000 events" in text and "1.5k events/s" in text and "elapsed 0:02" in text


def test_nothing_is_written_when_stderr_is_not_a_terminal() -> None:
    redirected = io.StringIO()
    with Progress("rebuilding", total=10, stream=redirected) as bar:
        bar.advance(10)
    assert redirected.getvalue() == ""
