"""digitnet.cli.errors: how the library's errors reach the user (the exit codes themselves: test_cli_conventions)."""

from digitnet.cli.errors import _users_path


def test_errors_name_the_users_file_not_the_temporary_one():
    assert _users_path("/a/b/.model.npz.k3j_x9.part") == "/a/b/model.npz"
    assert _users_path("/a/b/.hidden") == "/a/b/.hidden"
