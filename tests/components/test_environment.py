"""Provenance: what `environment()` records, collected once per process without starting a process,
and the git commit and dirty flag read from `.git` files, checked against git itself."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch

import dlcli
from dlcli.components import environment as provenance
from dlcli.components.environment import config_repository, environment
from dlcli.components.repository import find_repository, read_state, repository_state

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
KEYS = {"dlcli_version", "python_version", "platform", "host", "torch_version", "numpy_version", "cpu",
        "cpu_count", "torch_threads", "gpu", "git", "command"}


def git(folder: Path, *args: str) -> str:
    """git with a fixed identity and no user or system config."""
    environment_variables = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
                             "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                             "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(["git", *args], cwd=folder, env=environment_variables, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository with one commit: train.yaml and src/model.py tracked."""
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "train.yaml").write_text("optim: {lr: 0.1}\n")
    (root / "src" / "model.py").write_text("WIDTH = 8\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def state(folder: Path) -> dict:
    """Read now (repository_state remembers each repository for the process)."""
    return read_state(find_repository(folder))


def git_says_dirty(folder: Path) -> bool:
    return bool(git(folder, "status", "--porcelain", "--untracked-files=no"))


# ---- environment() ---------------------------------------------------------------------------------


def test_environment_records_versions_machine_and_command():
    found = environment()
    assert set(found) == KEYS
    assert found["dlcli_version"] == dlcli.__version__
    assert found["python_version"] == platform.python_version()
    assert found["torch_version"] == torch.__version__ and found["numpy_version"] == numpy.__version__
    assert found["command"] == sys.argv
    assert isinstance(found["cpu"], str) and found["cpu"]
    assert isinstance(found["torch_threads"], int) and found["torch_threads"] >= 1
    if torch.cuda.is_available():
        assert found["gpu"]["name"] == torch.cuda.get_device_name() and found["gpu"]["memory_gib"] > 0
    else:
        assert found["gpu"] is None


def test_environment_is_collected_once_per_process_and_starts_no_process(monkeypatch):
    calls = []
    real_cpu_model = provenance.cpu_model
    monkeypatch.setattr(provenance, "cpu_model", lambda: calls.append(1) or real_cpu_model())

    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(os, "system", no_process)
    environment.cache_clear()
    try:
        first = environment()
        assert environment() is first and environment() is first
        assert len(calls) == 1
    finally:
        environment.cache_clear()


@needs_git
def test_environment_names_the_working_directorys_repository(repo, monkeypatch):
    monkeypatch.chdir(repo / "src")
    environment.cache_clear()
    try:
        found = environment()["git"]
    finally:
        environment.cache_clear()
    assert found["commit"] == git(repo, "rev-parse", "HEAD") and found["root"] == str(repo.resolve())
    assert found["dirty"] is False and found["branch"] == "main"


# ---- git, read from .git ---------------------------------------------------------------------------


@needs_git
def test_commit_is_what_git_rev_parse_says(repo):
    assert state(repo)["commit"] == git(repo, "rev-parse", "HEAD")
    (repo / "src" / "model.py").write_text("WIDTH = 16\n")
    git(repo, "commit", "-q", "-am", "wider")
    assert state(repo / "src")["commit"] == git(repo, "rev-parse", "HEAD")
    git(repo, "pack-refs", "--all")  # the branch now lives in packed-refs only
    git(repo, "gc", "-q")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert state(repo) == {"root": str(repo.resolve()), "commit": git(repo, "rev-parse", "HEAD"),
                           "branch": "main", "dirty": False}
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    assert state(repo)["commit"] == git(repo, "rev-parse", "HEAD") and state(repo)["branch"] is None


@needs_git
@pytest.mark.parametrize("index_version", ["2", "3", "4"])
def test_dirty_flag_follows_changes_to_tracked_files_as_git_status_does(repo, index_version):
    git(repo, "update-index", "--index-version", index_version)
    tracked = repo / "src" / "model.py"
    steps = [
        ("committed", lambda: None, False),
        ("untracked file", lambda: (repo / "notes.txt").write_text("x\n"), False),
        ("same size, new content", lambda: tracked.write_text("WIDTH = 9\n"), True),
        ("content restored", lambda: tracked.write_text("WIDTH = 8\n"), False),
        ("changed and staged", lambda: (tracked.write_text("WIDTH = 32\n"), git(repo, "add", "src")), True),
        ("committed again", lambda: git(repo, "commit", "-q", "-m", "32"), False),
        ("file removed", lambda: tracked.unlink(), True),
        ("checked out", lambda: git(repo, "checkout", "-q", "--", "src"), False),
        ("made executable", lambda: tracked.chmod(0o755), True),
    ]
    for label, change, dirty in steps:
        change()
        assert git_says_dirty(repo) is dirty, label  # the test's own premise
        assert state(repo)["dirty"] is dirty, label


@needs_git
def test_a_linked_worktree_reads_its_own_head(repo, tmp_path):
    git(repo, "branch", "other")
    git(repo, "worktree", "add", "-q", str(tmp_path / "other"), "other")
    (tmp_path / "other" / "train.yaml").write_text("optim: {lr: 0.2}\n")
    found = state(tmp_path / "other")
    assert found["commit"] == git(tmp_path / "other", "rev-parse", "HEAD") and found["branch"] == "other"
    assert found["dirty"] is True and state(repo)["dirty"] is False


@needs_git
def test_state_is_read_once_per_repository(repo):
    first = repository_state(repo)
    (repo / "train.yaml").write_text("optim: {lr: 0.5}\n")
    assert state(repo)["dirty"] is True
    assert repository_state(repo / "src") == first and first["dirty"] is False


@needs_git
def test_config_repository_is_the_repository_holding_the_config_file(repo, tmp_path):
    assert config_repository(repo / "train.yaml")["commit"] == git(repo, "rev-parse", "HEAD")
    outside = tmp_path / "loose"
    outside.mkdir()
    (outside / "train.yaml").write_text("{}\n")
    if find_repository(outside) is None:  # the temporary folder is in no repository
        assert config_repository(outside / "train.yaml") == {}
