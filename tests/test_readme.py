"""The README's headline quotes a real run: every number in it appears in the committed sample report."""

import importlib.util
import re

from tests.conftest import ROOT

NUMBER = re.compile(r"[+-]?\d+\.\d+")


def test_every_number_the_readme_headline_quotes_is_in_the_sample_report():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- headline:start -->", 1)[1].split("<!-- headline:end -->", 1)[0]
    report = (ROOT / "results" / "sample" / "default" / "report.md").read_text()
    quoted = NUMBER.findall(block)
    assert len(quoted) >= 10  # the verdict and accuracy tables are there
    in_report = set(NUMBER.findall(report))
    missing = [n for n in quoted if n not in in_report and n.lstrip("+") not in in_report]
    assert missing == []
    sha = re.search(r"at commit `(\w+)`", block).group(1)
    assert f"bench at git {sha}" in report
    assert (ROOT / "results" / "sample" / "default" / "cells.csv").exists()


def test_every_number_the_readme_ladder_block_quotes_is_in_the_sample_ladder_report():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- ladder:start -->", 1)[1].split("<!-- ladder:end -->", 1)[0]
    report = (ROOT / "results" / "sample" / "ladder" / "report.md").read_text()
    quoted = NUMBER.findall(block)
    assert len(quoted) >= 40  # the matrix (7 rungs x 6 columns) is there
    in_report = set(NUMBER.findall(report))
    assert [n for n in quoted if n not in in_report and n.lstrip("+") not in in_report] == []
    sha = re.search(r"at commit `(\w+)`", block).group(1)
    assert f"bench at git {sha}" in report
    assert (
        "ositive control" in block
        and (ROOT / "results" / "sample" / "ladder" / "plots" / "ladder_effects.png").exists()
    )


def test_the_readme_opens_with_the_answer_generated_from_the_sample_report():
    """The first lines after the title are update_sample's answer line for the shipped sample, word for word:
    the words and numbers a newcomer reads first are the sample report's verdict."""
    spec = importlib.util.spec_from_file_location("update_sample", ROOT / "scripts" / "update_sample.py")
    update_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_sample)
    readme = (ROOT / "README.md").read_text()
    first = readme.split("\n\n", 2)[1].strip()  # the paragraph right after '# bench'
    start, end = update_sample.ANSWER
    assert first.startswith(start) and first.endswith(end)
    report = (ROOT / "results" / "sample" / "default" / "report.md").read_text()
    answer = update_sample.answer_line(report)
    assert first == "\n".join([start, answer, end])
    # the line names an outcome word and an interval for each end of the labeled fractions
    assert len(re.findall(r"\*\*(helps|hurts|equivalent|inconclusive)\*\*", answer)) >= 2
