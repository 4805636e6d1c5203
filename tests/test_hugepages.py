"""paymember.hugepages: the re-exec that turns on glibc's huge pages for malloc."""

from __future__ import annotations

import os
import subprocess
import sys

from paymember.hugepages import TUNABLE, _glibc, _thp_available, huge_page_env

SHOW = ("from paymember.hugepages import reexec_with_huge_pages as r; r(); import os; "
        "print(os.environ.get('GLIBC_TUNABLES'))")


def test_env_adds_the_tunable_once() -> None:
    env = huge_page_env({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": f"{TUNABLE}=1"}
    assert huge_page_env(env) is None  # set: no second re-exec


def test_env_keeps_other_tunables_and_respects_a_given_value() -> None:
    env = huge_page_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env is not None
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}=1"
    assert huge_page_env({"GLIBC_TUNABLES": f"{TUNABLE}=0"}) is None


def test_env_nothing_to_do() -> None:
    assert huge_page_env({"PAYMEMBER_HUGEPAGES": "0"}) is None
    assert huge_page_env({}, glibc=False) is None
    assert huge_page_env({}, thp=False) is None


def test_thp_mode_file(tmp_path) -> None:
    f = tmp_path / "enabled"
    f.write_text("always madvise [never]\n")
    assert not _thp_available(str(f))
    f.write_text("always [madvise] never\n")
    assert _thp_available(str(f))
    assert not _thp_available(str(tmp_path / "missing"))


def _run(extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | extra
    return subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_reexec_sets_the_tunable_in_a_real_process() -> None:
    expect = f"{TUNABLE}=1" if _glibc() and _thp_available() else "None"
    assert _run({}) == expect
    assert _run({"PAYMEMBER_HUGEPAGES": "0"}) == "None"
