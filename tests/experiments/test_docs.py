"""The generated docs: regenerating every page from docs/records gives byte-identical files, and
README's results summary is the generated one."""
from experiments import docs


def test_committed_docs_are_exactly_what_the_records_make(capsys):
    assert docs.regenerate(check=True) == 0, capsys.readouterr().out


def test_readme_summary_numbers_come_from_the_summaries():
    with open(docs.README) as fh:
        text = fh.read()
    block = text.split(docs.SUMMARY_BEGIN, 1)[1].split(docs.SUMMARY_END, 1)[0]
    assert "grsn vs rnn on 3m:" in block and block.count("[") >= 10
