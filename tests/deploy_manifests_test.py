#!/usr/bin/python3
"""Validates deploy/: every YAML file parses, and the Kubernetes and compose files agree with the
server configuration they ship (probe ports and paths, grace period, CPU limit, scrape target).

The configuration is read by echo-server itself (`--check-config`), so the checks use the same
parser and defaults as the server. Run by ctest:
    deploy_manifests_test.py ECHO_SERVER_PATH SOURCE_DIR
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

ECHO_SERVER = sys.argv[1] if len(sys.argv) > 1 else "build/echo-server"
ROOT = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.dirname(__file__))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def effective_config(text):
    """The server's view of a config file's text: name -> value, after defaults."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MR_")}
        run = subprocess.run([ECHO_SERVER, "--config", path, "--check-config"], env=env,
                             capture_output=True, text=True, timeout=30, check=False)
    finally:
        os.unlink(path)
    if run.returncode != 0:
        raise AssertionError(f"echo-server --check-config rejected it: {run.stderr.strip()}")
    values = {}
    for line in run.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            values[name] = value
    return values


def cpu_quantity(text):
    """Kubernetes CPU quantity ("2", "1500m", 0.5) -> CPUs as a float."""
    text = str(text)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def by_kind(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind}, found {len(found)}")
    return found[0]


class EveryFileParses(unittest.TestCase):
    def test_all_yaml_under_deploy_parses(self):
        names = []
        for folder, _, files in os.walk(DEPLOY):
            for name in files:
                if name.endswith((".yaml", ".yml")):
                    path = os.path.join(folder, name)
                    with self.subTest(path=path):
                        self.assertTrue(load_all(path), f"{path} is empty")
                    names.append(os.path.relpath(path, DEPLOY))
        for expected in ("compose.yaml", "prometheus.yml", "kubernetes/configmap.yaml",
                         "kubernetes/deployment.yaml", "kubernetes/service.yaml",
                         "kubernetes/metrics-service.yaml", "kubernetes/networkpolicy.yaml"):
            self.assertIn(expected, names)


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        docs = []
        for name in sorted(os.listdir(K8S)):
            if name.endswith(".yaml") and name != "kustomization.yaml":
                docs += load_all(os.path.join(K8S, name))
        cls.configmap = by_kind(docs, "ConfigMap")
        cls.deployment = by_kind(docs, "Deployment")
        services = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Service"}
        if sorted(services) != ["multireactor", "multireactor-metrics"]:
            raise AssertionError(f"expected the echo and metrics Services: {sorted(services)}")
        cls.service = services["multireactor"]
        cls.metrics_service = services["multireactor-metrics"]
        cls.policy = by_kind(docs, "NetworkPolicy")
        cls.config = effective_config(cls.configmap["data"]["server.conf"])
        cls.pod = cls.deployment["spec"]["template"]
        cls.container = cls.pod["spec"]["containers"][0]

    def port_number(self, port):
        """A probe's or Service's port: a number or the name of a container port."""
        if isinstance(port, int):
            return port
        named = {p["name"]: p["containerPort"] for p in self.container["ports"] if "name" in p}
        self.assertIn(port, named, f"no container port named {port}")
        return named[port]

    def test_probes_use_the_admin_port_and_paths_of_the_config(self):
        admin_port = int(self.config["admin_port"])
        self.assertNotEqual(admin_port, 0, "the admin listener must be on for the probes")
        self.assertEqual(self.config["admin_bind"], "0.0.0.0", "kubelet probes the pod IP")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            with self.subTest(probe=probe):
                get = self.container[probe]["httpGet"]
                self.assertEqual(get["path"], path)
                self.assertEqual(self.port_number(get["port"]), admin_port)

    def test_container_ports_match_the_config(self):
        ports = {p["containerPort"] for p in self.container["ports"]}
        self.assertIn(int(self.config["port"]), ports)
        self.assertIn(int(self.config["admin_port"]), ports)
        self.assertEqual(self.config["bind"], "0.0.0.0")

    def test_grace_period_outlasts_the_drain(self):
        grace_ms = self.pod["spec"]["terminationGracePeriodSeconds"] * 1000
        pre_stop_ms = 0
        command = self.container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get(
            "command", [])
        if command[:1] == ["sleep"]:
            pre_stop_ms = int(float(command[1]) * 1000)
        self.assertGreater(grace_ms, int(self.config["shutdown_timeout_ms"]) + pre_stop_ms)

    def test_cpu_limit_matches_the_worker_count(self):
        limit = math.ceil(cpu_quantity(self.container["resources"]["limits"]["cpu"]))
        workers = int(self.config["workers"])
        if workers != 0:  # 0 follows the CPU quota by itself
            self.assertEqual(limit, workers)
        self.assertIn("memory", self.container["resources"]["limits"])

    def test_config_map_is_mounted_where_the_image_reads_it(self):
        mount = next(m for m in self.container["volumeMounts"] if m["name"] == "config")
        self.assertEqual(mount["mountPath"], "/etc/multireactor")
        volume = next(v for v in self.pod["spec"]["volumes"] if v["name"] == "config")
        self.assertEqual(volume["configMap"]["name"], self.configmap["metadata"]["name"])

    def test_prometheus_annotations_point_at_the_admin_port(self):
        notes = self.pod["metadata"]["annotations"]
        self.assertEqual(notes["prometheus.io/scrape"], "true")
        self.assertEqual(int(notes["prometheus.io/port"]), int(self.config["admin_port"]))
        self.assertEqual(notes["prometheus.io/path"], "/metrics")

    def test_runs_as_a_non_root_user(self):
        security = self.pod["spec"]["securityContext"]
        self.assertTrue(security["runAsNonRoot"])
        self.assertNotEqual(security["runAsUser"], 0)

    def test_service_selects_the_pods_and_reaches_the_echo_port(self):
        labels = self.pod["metadata"]["labels"]
        for key, value in self.service["spec"]["selector"].items():
            self.assertEqual(labels.get(key), value)
        self.assertEqual(self.deployment["spec"]["selector"]["matchLabels"],
                         self.service["spec"]["selector"])
        targets = {self.port_number(p["targetPort"]) for p in self.service["spec"]["ports"]}
        self.assertIn(int(self.config["port"]), targets)

    def test_the_echo_service_does_not_publish_the_admin_port(self):
        targets = {self.port_number(p["targetPort"]) for p in self.service["spec"]["ports"]}
        self.assertEqual(targets, {int(self.config["port"])})

    def test_the_metrics_service_reaches_only_the_admin_port_of_every_pod(self):
        spec = self.metrics_service["spec"]
        self.assertEqual(spec["selector"], self.deployment["spec"]["selector"]["matchLabels"])
        targets = {self.port_number(p["targetPort"]) for p in spec["ports"]}
        self.assertEqual(targets, {int(self.config["admin_port"])})
        self.assertEqual(spec.get("clusterIP"), "None", "headless: a scrape per pod")

    def test_network_policy_admits_echo_from_anywhere_and_admin_only_from_monitoring(self):
        spec = self.policy["spec"]
        labels = self.pod["metadata"]["labels"]
        for key, value in spec["podSelector"]["matchLabels"].items():
            self.assertEqual(labels.get(key), value)
        self.assertEqual(spec["policyTypes"], ["Ingress"])
        echo, admin = int(self.config["port"]), int(self.config["admin_port"])
        opened = {}  # port -> list of "from" lists of the rules that admit it
        for rule in spec["ingress"]:
            self.assertIn("ports", rule, "a rule without ports admits every port")
            for port in rule["ports"]:
                opened.setdefault(self.port_number(port["port"]), []).append(rule.get("from"))
        self.assertEqual(set(opened), {echo, admin}, "no other port is admitted")
        self.assertIn(None, opened[echo], "the echo port is open to anyone")
        for sources in opened[admin]:
            self.assertEqual(sources, [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "monitoring"}}}])

    def test_kustomization_lists_every_manifest(self):
        kustomization = load_all(os.path.join(K8S, "kustomization.yaml"))[0]
        manifests = sorted(n for n in os.listdir(K8S)
                           if n.endswith(".yaml") and n != "kustomization.yaml")
        self.assertEqual(sorted(kustomization["resources"]), manifests)
        self.assertIn("networkpolicy.yaml", manifests)


class Compose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.compose = load_all(os.path.join(DEPLOY, "compose.yaml"))[0]
        cls.server = cls.compose["services"]["echo-server"]
        mounts = [v.split(":") for v in cls.server["volumes"]]
        source = next(m[0] for m in mounts if m[1] == "/etc/multireactor/server.conf")
        with open(os.path.join(DEPLOY, source), encoding="utf-8") as f:
            cls.config = effective_config(f.read())

    def test_prometheus_scrapes_the_admin_port_of_the_server(self):
        prometheus = load_all(os.path.join(DEPLOY, "prometheus.yml"))[0]
        targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"]
                   for t in c["targets"]]
        self.assertIn(f"echo-server:{self.config['admin_port']}", targets)
        self.assertEqual(self.config["admin_bind"], "0.0.0.0", "Prometheus is another container")
        self.assertIn("./prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                      self.compose["services"]["prometheus"]["volumes"])

    def test_published_ports_match_the_config(self):
        published = {str(p).rsplit(":", 1)[-1] for p in self.server["ports"]}
        self.assertIn(self.config["port"], published)
        self.assertIn(self.config["admin_port"], published)

    def test_stop_grace_period_outlasts_the_drain(self):
        grace = self.server["stop_grace_period"]
        self.assertTrue(grace.endswith("s") and grace[:-1].isdigit(), grace)
        self.assertGreater(int(grace[:-1]) * 1000, int(self.config["shutdown_timeout_ms"]))

    def test_prometheus_config_passes_promtool(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is not installed (Debian package prometheus)")
        run = subprocess.run([promtool, "check", "config", os.path.join(DEPLOY, "prometheus.yml")],
                             capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
