"""Progress: a bar with rate and ETA on a terminal, plain lines otherwise, nothing for JSON."""

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


def test_plain_lines_when_stderr_is_not_a_terminal() -> None:
    redirected = io.StringIO()
    with Progress("rebuilding", total=1000, stream=redirected) as bar:
        start = bar._started
        bar.advance(50, now=start + 0.5)  # under a tenth, under a second: nothing yet
        assert redirected.getvalue() == ""
        bar.advance(100, now=start + 1.5)  # a tenth done: a line
        bar.advance(10, now=start + 1.6)  # the same tenth: none
        bar.advance(100, now=start + 1.7)  # the next tenth, but within a second: none
        bar.advance(0, now=start + 7.0)  # five seconds on: a line whatever the count
        bar.advance(740, now=start + 7.1)
    lines = redirected.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert "\r" not in redirected.getvalue() and "\x1b" not in redirected.getvalue()
    assert lines[0].startswith("rebuilding  15%  150/1,000 events  100 events/s  ETA 0:09")
    assert "26%  260/1,000 events" in lines[1] and "ETA" in lines[1]
    # The last line when done: everything, the rate, the time it took.
    assert "100%  1,000/1,000 events" in lines[2] and "elapsed" in lines[2]


def test_lines_every_few_seconds_without_a_total() -> None:
    redirected = io.StringIO()
    bar = Progress("projecting", stream=redirected)
    bar.advance(10, now=bar._started + 4.0)
    bar.advance(10, now=bar._started + 5.5)
    bar.advance(10, now=bar._started + 9.0)
    bar.advance(10, now=bar._started + 11.0)
    assert [line.split("  ")[1] for line in redirected.getvalue().splitlines()] == [
        "20 events",
        "40 events",
    ]


def test_nothing_is_written_when_disabled_for_json() -> None:
    redirected = io.StringIO()
    with Progress("rebuilding", total=10, stream=redirected, enabled=False) as bar:
        bar.advance(5, now=bar._started + 60)
        bar.advance(5, now=bar._started + 120)
    assert redirected.getvalue() == ""


def test_a_run_that_did_nothing_says_nothing() -> None:
    redirected = io.StringIO()
    with Progress("projecting", stream=redirected):
        pass
    assert redirected.getvalue() == ""
