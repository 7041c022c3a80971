#!/usr/bin/python3
"""The benchmark command lines that deploy/ ships run as written: the echo-bench arguments of
deploy/kubernetes/bench-job.yaml (one run per Job index) and of each client of the compose
`bench` profile, against an echo-server on loopback, each writing its report where the merge
looks for it; then the merge's own arguments (bench-merge-job.yaml, the compose bench-merge)
over those reports, when echo-bench has its `merge` subcommand.

Only what a cluster or compose supplies is substituted: the Service variables and the Job index
(the kubelet expands them), the server's port, the report folder (the volume), and --duration
and --warmup, shortened so the test is brief. Every other argument is passed as the file has it.

Run by ctest (label deploy):
    deploy_bench_test.py ECHO_SERVER_PATH ECHO_BENCH_PATH SOURCE_DIR
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

ECHO_SERVER = sys.argv[1] if len(sys.argv) > 1 else "build/echo-server"
ECHO_BENCH = sys.argv[2] if len(sys.argv) > 2 else "build/echo-bench"
ROOT = sys.argv[3] if len(sys.argv) > 3 else os.path.dirname(os.path.dirname(__file__))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
SHORT = {"--duration": "1", "--warmup": "0"}


def load(path, kind=None):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    return next(d for d in docs if kind is None or d.get("kind") == kind)


def shortened(args):
    """args with the values of --duration and --warmup replaced by SHORT's."""
    out = list(args)
    for i, word in enumerate(out[:-1]):
        if word in SHORT:
            out[i + 1] = SHORT[word]
    return out


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("MR_")}


def wait_for_port(process, timeout_s=30):
    """The echo port from echo-server's "listening on" line on stderr (None if it never comes).
    Reads the descriptor itself: select() on a buffered reader misses lines already buffered."""
    fd = process.stderr.fileno()
    deadline = time.monotonic() + timeout_s
    text = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        text += chunk
        match = re.search(rb"listening on [0-9.]+:(\d+)", text)
        if match:
            return match.group(1).decode()
    sys.stderr.write(text.decode(errors="replace"))
    return None


class EchoServer:
    """echo-server on 127.0.0.1 with a kernel-chosen port, stopped with SIGTERM."""

    def __enter__(self):
        self.process = subprocess.Popen(
            [ECHO_SERVER, "--bind", "127.0.0.1", "--port", "0", "--admin_port", "0",
             "--workers", "2"], env=clean_env(), stderr=subprocess.PIPE, text=True)
        self.port = wait_for_port(self.process)
        if self.port is not None:
            return self
        self.__exit__(None, None, None)
        raise AssertionError("echo-server did not report its port")

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stderr.close()


def run_bench(argv):
    """Runs an echo-bench command line from deploy/ (its binary: the one under test)."""
    return subprocess.run([ECHO_BENCH, *argv[1:]], env=clean_env(), capture_output=True,
                          text=True, timeout=120, check=False)


def in_folder(args, mount, folder):
    return [a.replace(mount + "/", folder + "/") for a in args]


class BenchCommandLines(unittest.TestCase):
    """Runs every client command line once (setUpClass), then checks the reports and merges."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="mr-bench-results-")
        cls.runs = {"job": [], "compose": []}  # (argv, completed process, report path)
        job = load(os.path.join(K8S, "bench-job.yaml"), "Job")
        container = job["spec"]["template"]["spec"]["containers"][0]
        cls.job_mount = container["volumeMounts"][0]["mountPath"]
        cls.job_folder = os.path.join(cls.folder, "job")
        os.makedirs(cls.job_folder)
        with open(os.path.join(DEPLOY, "compose.yaml"), encoding="utf-8") as f:
            cls.services = yaml.safe_load(f)["services"]
        cls.compose_folder = os.path.join(cls.folder, "compose")
        os.makedirs(cls.compose_folder)
        clients = sorted(n for n in cls.services if n.startswith("bench-") and n != "bench-merge")
        with EchoServer() as server:
            for index in range(job["spec"]["completions"]):
                variables = {"MULTIREACTOR_SERVICE_HOST": "127.0.0.1",
                             "MULTIREACTOR_SERVICE_PORT_ECHO": server.port,
                             "JOB_COMPLETION_INDEX": str(index)}
                args = [re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], a)
                        for a in container["args"]]
                argv = container["command"] + shortened(
                    in_folder(args, cls.job_mount, cls.job_folder))
                path = os.path.join(cls.job_folder, f"bench-{index}.json")
                cls.runs["job"].append((argv, run_bench(argv), path))
            for name in clients:
                client = cls.services[name]
                mount = client["volumes"][0].split(":")[1]
                entry = [server.port if (i > 0 and client["entrypoint"][i - 1] == "--port") else a
                         for i, a in enumerate(client["entrypoint"])]
                argv = shortened(in_folder(entry + client["command"], mount, cls.compose_folder))
                path = argv[argv.index("--json") + 1]
                cls.runs["compose"].append((argv, run_bench(argv), path))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.folder, ignore_errors=True)

    def check_runs(self, which):
        reports = []
        self.assertGreater(len(self.runs[which]), 1)
        for argv, run, path in self.runs[which]:
            with self.subTest(argv=argv):
                self.assertEqual(run.returncode, 0, f"{argv}\n{run.stdout}{run.stderr}")
                self.assertTrue(os.path.exists(path), f"no report at {path}")
                with open(path, encoding="utf-8") as f:
                    report = json.load(f)
                self.assertTrue(report["clean"], report)
                self.assertGreater(report["totals"]["messages_received"], 0)
                reports.append(report)
        return reports

    def check_merge(self, which, argv, merged_path):
        reports = self.check_runs(which)
        help_text = subprocess.run([ECHO_BENCH, "--help"], capture_output=True, text=True,
                                   timeout=30, check=False).stdout
        if "merge" not in help_text:
            self.skipTest("echo-bench has no `merge` subcommand yet (issue 13); the runs "
                          "themselves are checked by the other tests")
        run = run_bench(argv)
        self.assertEqual(run.returncode, 0, f"{argv}\n{run.stdout}{run.stderr}")
        with open(merged_path, encoding="utf-8") as f:
            merged = json.load(f)
        self.assertEqual(merged["totals"]["messages_received"],
                         sum(r["totals"]["messages_received"] for r in reports))

    def test_each_index_of_the_job_runs_and_writes_its_report(self):
        self.check_runs("job")

    def test_each_compose_bench_client_runs_and_writes_its_report(self):
        self.check_runs("compose")

    def test_the_merge_job_combines_every_report_of_the_job(self):
        merge = load(os.path.join(K8S, "bench-merge-job.yaml"), "Job")
        container = merge["spec"]["template"]["spec"]["containers"][0]
        argv = container["command"] + in_folder(container["args"], self.job_mount,
                                                self.job_folder)
        self.check_merge("job", argv, os.path.join(self.job_folder, "merged.json"))

    def test_the_compose_merge_combines_every_client_report(self):
        merge = self.services["bench-merge"]
        mount = merge["volumes"][0].split(":")[1]
        argv = merge["entrypoint"] + in_folder(merge["command"], mount, self.compose_folder)
        self.check_merge("compose", argv, os.path.join(self.compose_folder, "merged.json"))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
