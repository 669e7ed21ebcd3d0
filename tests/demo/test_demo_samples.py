"""Finding and framing the sample logs for the demo (pure, no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.demo import samples
from streams.errors import EsatrackError
from streams.settings import load_settings
from streams.stack import pipeline
from streams.stack.process import is_service


def test_octet_counting_counts_bytes_not_characters() -> None:
    """The frame length is the byte length of the line, whatever it holds."""
    assert samples.octet_counted(b"Info: x") == b"7 Info: x"
    assert samples.octet_counted("é 1".encode()) == b"4 \xc3\xa9 1"


def test_lines_are_kept_as_stored_without_endings_or_blanks(tmp_path: Path) -> None:
    """Blank lines are skipped; CRLF endings go; the bytes of a line are kept as they are."""
    (tmp_path / "esa-text").mkdir()
    (tmp_path / "esa-text" / "a.log").write_bytes(b"one \xff\r\n\n  \ntwo\n")
    (tmp_path / "wsa").mkdir()
    (tmp_path / "wsa" / "w.log").write_bytes(b"not mail\n")
    files = samples.sample_files(tmp_path)
    assert [f.name for f in files] == ["a.log"]
    assert list(samples.read_lines(files)) == [b"one \xff", b"two"]


def test_no_samples_is_a_clear_error(tmp_path: Path) -> None:
    """An empty folder names what was expected and the option to use."""
    with pytest.raises(EsatrackError, match="--samples"):
        samples.sample_files(tmp_path)


def test_samples_are_found_above_the_start(tmp_path: Path) -> None:
    """shared/samples is found from any folder below the one that holds it."""
    (tmp_path / "shared" / "samples").mkdir(parents=True)
    deep = tmp_path / "main" / "streams"
    deep.mkdir(parents=True)
    assert samples.default_samples_dir(deep) == tmp_path / "shared" / "samples"
    assert samples.default_samples_dir(Path("/")) in (None, Path("/shared/samples"))


def test_pipeline_services_are_recognisable_and_use_their_own_ports(tmp_path: Path) -> None:
    """Each pipeline process runs its own subcommand, knows its home, and has its own port."""
    settings = load_settings(stack_dir=tmp_path, metrics_port=20000)
    ports = set()
    for factory, command in ((pipeline.worker, "worker"), (pipeline.indexer, "indexer"),
                             (pipeline.receiver, "receive")):
        svc = factory(settings)
        argv = svc.prepare(Path("/usr/bin/java"), lambda _m: None)
        assert argv[argv.index("streams.cli") + 1] == command
        assert is_service(argv, svc.files)
        assert svc.home == tmp_path / svc.name
        ports.add(svc.env["ESATRACK_METRICS_PORT"])
    assert ports == {"20000", "20001", "20002"}
