#!/usr/bin/python3
"""deploy/seccomp/multireactor-io_uring.json is what scripts/make-seccomp-profile makes of the
installed runtime default profile (regenerated and compared; skipped where the default is not
installed), and it allows the three io_uring calls with nothing denying them. The default itself
must deny them: that is the reason the file exists (deploy/seccomp/README.md).

Run by ctest (label deploy):
    seccomp_profile_test.py SOURCE_DIR
"""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(__file__))
SCRIPT = os.path.join(ROOT, "scripts", "make-seccomp-profile")
PROFILE = os.path.join(ROOT, "deploy", "seccomp", "multireactor-io_uring.json")
RUNTIME_DEFAULT = "/usr/share/containers/seccomp.json"
IO_URING_CALLS = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
ALLOW = "SCMP_ACT_ALLOW"


def load_generator():
    """scripts/make-seccomp-profile as a module (it has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("make_seccomp_profile", SCRIPT)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def unconditional_allows(profile):
    """Calls a rule allows whatever their arguments, on every architecture and kernel."""
    allowed = set()
    for rule in profile["syscalls"]:
        if rule["action"] == ALLOW and not rule.get("args") and not rule.get("includes") \
                and not rule.get("excludes"):
            allowed |= set(rule["names"])
    return allowed


def denied_by_a_rule(profile):
    return {n for rule in profile["syscalls"] if rule["action"] != ALLOW for n in rule["names"]}


class Profile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(PROFILE, encoding="utf-8") as f:
            cls.text = f.read()
        cls.profile = json.loads(cls.text)

    def test_it_allows_the_io_uring_calls_and_no_rule_denies_them(self):
        self.assertLessEqual(IO_URING_CALLS, unconditional_allows(self.profile))
        self.assertEqual(IO_URING_CALLS & denied_by_a_rule(self.profile), set())

    def test_it_still_denies_by_default_on_the_runtimes_architectures(self):
        self.assertNotEqual(self.profile["defaultAction"], ALLOW)
        arches = {a["architecture"] for a in self.profile["archMap"]}
        self.assertLessEqual({"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"}, arches)
        # What the default denies stays denied (a few of the calls containers never get).
        for call in ("kexec_load", "init_module", "open_by_handle_at"):
            self.assertNotIn(call, unconditional_allows(self.profile), call)

    def test_it_is_the_installed_default_plus_io_uring(self):
        if not os.path.exists(RUNTIME_DEFAULT):
            self.skipTest(f"{RUNTIME_DEFAULT} is not installed (Debian package "
                          "golang-github-containers-common, in scripts/lib.sh)")
        with tempfile.TemporaryDirectory() as scratch:
            output = os.path.join(scratch, "profile.json")
            run = subprocess.run([sys.executable, SCRIPT, "--default", RUNTIME_DEFAULT, "--output",
                                  output], capture_output=True, text=True, timeout=60, check=False)
            self.assertEqual(run.returncode, 0, run.stderr)
            with open(output, encoding="utf-8") as f:
                regenerated = f.read()
        self.assertEqual(regenerated, self.text,
                         "deploy/seccomp/multireactor-io_uring.json is stale: run "
                         "scripts/make-seccomp-profile and review the diff")

    def test_the_installed_default_denies_io_uring(self):
        if not os.path.exists(RUNTIME_DEFAULT):
            self.skipTest(f"{RUNTIME_DEFAULT} is not installed")
        with open(RUNTIME_DEFAULT, encoding="utf-8") as f:
            default = json.load(f)
        self.assertNotEqual(default["defaultAction"], ALLOW)
        self.assertEqual(IO_URING_CALLS & unconditional_allows(default), set(),
                         "the runtime default allows io_uring now: README and profile are stale")


class Generator(unittest.TestCase):
    """make-seccomp-profile on made-up defaults (no containers-common needed)."""

    def setUp(self):
        self.generator = load_generator()

    def test_a_rule_denying_io_uring_keeps_its_other_calls(self):
        default = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["io_uring_setup", "kexec_load"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 1},
            {"names": ["io_uring_enter"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": ALLOW},
        ]}
        made = self.generator.with_io_uring(default)
        self.assertEqual(made["syscalls"][0]["names"], ["kexec_load"])
        self.assertEqual(made["syscalls"][1]["names"], ["read"])
        self.assertEqual(len(made["syscalls"]), 3, "the emptied rule is dropped, one rule added")
        self.assertLessEqual(IO_URING_CALLS, unconditional_allows(made))
        self.assertEqual(denied_by_a_rule(made), {"kexec_load"})
        self.assertEqual(default["syscalls"][0]["names"], ["io_uring_setup", "kexec_load"],
                         "the input is left alone")

    def test_everything_else_is_kept_as_it_was(self):
        default = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [{"names": ["read"], "action": ALLOW, "args": []}]}
        made = self.generator.with_io_uring(default)
        self.assertEqual({k: v for k, v in made.items() if k != "syscalls"},
                         {k: v for k, v in default.items() if k != "syscalls"})
        self.assertEqual(made["syscalls"][:-1], default["syscalls"])
        self.assertEqual(json.loads(self.generator.render(made)), made)


if __name__ == "__main__":
    result = unittest.main(argv=sys.argv[:1], verbosity=2, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
