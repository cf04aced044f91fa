"""edgekit.files: a written file is whole or absent, never left behind half-done, and has the permissions a
plain open() would give it."""

import os

import pytest

from edgekit.files import atomic_path, write_atomic


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path):
    return os.stat(path).st_mode & 0o777


def test_write_atomic_writes_bytes_and_text(tmp_path):
    assert write_atomic(tmp_path / "a.bin", b"\x00\xffdata") == str(tmp_path / "a.bin")
    assert write_atomic(str(tmp_path / "b.txt"), "caf\u00e9\n") == str(tmp_path / "b.txt")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xffdata"
    assert (tmp_path / "b.txt").read_bytes() == "caf\u00e9\n".encode("utf-8")
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.txt"]


def test_files_get_the_umask_permissions_not_owner_only(tmp_path, umask):
    written = write_atomic(tmp_path / "model.tflite", b"model")
    with atomic_path(tmp_path / "picture.png") as temporary:
        with open(temporary, "wb") as f:
            f.write(b"picture")
    assert mode(written) == mode(tmp_path / "picture.png") == 0o666 & ~umask


def test_an_existing_file_is_replaced_whole(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("a much longer old content than the new one\n")
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["labels.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(path, 42)  # neither bytes nor text: fails at the write
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.tflite"]


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_block_that_raises_midway_keeps_the_old_file_and_leaves_nothing(tmp_path, error):
    path = tmp_path / "stats.npz"
    path.write_bytes(b"old")
    with pytest.raises(error):
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as f:
                f.write(b"half")
            raise error()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["stats.npz"]


def test_the_temporary_is_hidden_beside_the_target_with_its_extension(tmp_path):
    """Pillow and OpenCV pick the format by the extension, and numpy's savez appends .npz when missing."""
    path = tmp_path / "stats-key.npz"
    with atomic_path(path) as first, atomic_path(path) as second:
        for temporary in (first, second):
            assert os.path.dirname(temporary) == str(tmp_path)
            assert os.path.basename(temporary).startswith(".") and temporary.endswith(".npz")
            with open(temporary, "w") as f:
                f.write(temporary)
        assert first != second  # two writers of one file never share a temporary
    assert path.read_text() == first  # the last to finish wins, whole
    assert os.listdir(tmp_path) == ["stats-key.npz"]


def test_a_missing_folder_fails_without_writing(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "a.txt", "x")
    assert os.listdir(tmp_path) == []
