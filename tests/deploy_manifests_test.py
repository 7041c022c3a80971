#!/usr/bin/python3
"""Validates deploy/: every YAML file parses, and the Kubernetes and compose files agree with the
server configuration they ship (probe ports and paths, grace period, CPU limit, scrape target) and
with each other (the PDB, the autoscaler and the spread select the server's pods; the benchmark
Job and compose profile reach the echo port and hand every report to the merge).
Kubernetes' own schemas are checked by deploy_schema_test.py.

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
# Manifests that kustomization.yaml leaves out on purpose (a benchmark is a run, not the service).
BENCH_FILES = ("bench-job.yaml", "bench-merge-job.yaml")
NOT_DEPLOYED = ("kustomization.yaml",) + BENCH_FILES
# echo-server's own guard beyond shutdown_timeout_ms against a stuck worker (drain_then_stop).
DRAIN_GUARD_MS = 2000


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
                         "kubernetes/metrics-service.yaml", "kubernetes/networkpolicy.yaml",
                         "kubernetes/pdb.yaml", "kubernetes/hpa.yaml",
                         "kubernetes/bench-job.yaml", "kubernetes/bench-merge-job.yaml"):
            self.assertIn(expected, names)


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        docs = []
        for name in sorted(os.listdir(K8S)):
            if name.endswith(".yaml") and name not in NOT_DEPLOYED:
                docs += load_all(os.path.join(K8S, name))
        cls.configmap = by_kind(docs, "ConfigMap")
        cls.deployment = by_kind(docs, "Deployment")
        services = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Service"}
        if sorted(services) != ["multireactor", "multireactor-metrics"]:
            raise AssertionError(f"expected the echo and metrics Services: {sorted(services)}")
        cls.service = services["multireactor"]
        cls.metrics_service = services["multireactor-metrics"]
        cls.policy = by_kind(docs, "NetworkPolicy")
        cls.pdb = by_kind(docs, "PodDisruptionBudget")
        cls.hpa = by_kind(docs, "HorizontalPodAutoscaler")
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

    def pre_stop_ms(self):
        """The preStop sleep: the kubelet's sleep action (the image has no `sleep` to exec)."""
        pre_stop = self.container.get("lifecycle", {}).get("preStop", {})
        self.assertNotIn("exec", pre_stop, "the image has no shell or tools to exec")
        return int(pre_stop.get("sleep", {}).get("seconds", 0)) * 1000

    def test_grace_period_outlasts_the_pre_stop_sleep_and_the_drain(self):
        grace_ms = self.pod["spec"]["terminationGracePeriodSeconds"] * 1000
        self.assertGreater(self.pre_stop_ms(), 0, "the pod must leave the Service before SIGTERM")
        self.assertGreater(grace_ms, self.pre_stop_ms() + int(self.config["shutdown_timeout_ms"])
                           + DRAIN_GUARD_MS)

    def test_probes_are_http_and_liveness_outlasts_a_drain(self):
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(set(self.container[probe]) & {"exec", "grpc"}, set(), probe)
        live = self.container["livenessProbe"]
        window_ms = live["periodSeconds"] * live.get("failureThreshold", 3) * 1000
        self.assertGreater(window_ms, int(self.config["shutdown_timeout_ms"]) + DRAIN_GUARD_MS)
        # /healthz answers 503 after its 1 s wait for the workers: the probe must wait longer.
        self.assertGreater(live.get("timeoutSeconds", 1), 1)

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

    def test_kustomization_lists_every_manifest_but_the_benchmark(self):
        kustomization = load_all(os.path.join(K8S, "kustomization.yaml"))[0]
        manifests = sorted(n for n in os.listdir(K8S)
                           if n.endswith(".yaml") and n not in NOT_DEPLOYED)
        self.assertEqual(sorted(kustomization["resources"]), manifests)
        for name in ("networkpolicy.yaml", "pdb.yaml", "hpa.yaml"):
            self.assertIn(name, manifests)

    def selects_the_server_pods(self, selector):
        labels = self.pod["metadata"]["labels"]
        self.assertTrue(selector["matchLabels"])
        for key, value in selector["matchLabels"].items():
            self.assertEqual(labels.get(key), value)

    def test_disruption_budget_lets_one_pod_go_at_a_time(self):
        spec = self.pdb["spec"]
        self.selects_the_server_pods(spec["selector"])
        self.assertEqual(spec.get("maxUnavailable"), 1)
        rollout = self.deployment["spec"]["strategy"]["rollingUpdate"]
        self.assertEqual(rollout["maxUnavailable"], 0, "a rollout keeps every replica serving")

    def test_replicas_are_spread_across_nodes(self):
        spread = self.pod["spec"]["topologySpreadConstraints"]
        by_key = {c["topologyKey"]: c for c in spread}
        node = by_key["kubernetes.io/hostname"]
        self.assertEqual(node["whenUnsatisfiable"], "DoNotSchedule")
        self.assertEqual(node["maxSkew"], 1)
        self.assertEqual(node.get("nodeTaintsPolicy"), "Honor", "a cordoned node must not count")
        for constraint in spread:
            self.selects_the_server_pods(constraint["labelSelector"])

    def test_autoscaler_owns_the_replica_count_and_scales_on_cpu(self):
        spec = self.hpa["spec"]
        target = spec["scaleTargetRef"]
        self.assertEqual((target["kind"], target["name"]),
                         ("Deployment", self.deployment["metadata"]["name"]))
        self.assertNotIn("replicas", self.deployment["spec"],
                         "kubectl apply would reset the autoscaler's count")
        (metric,) = spec["metrics"]
        self.assertEqual(metric["resource"]["name"], "cpu")
        self.assertIn("cpu", self.container["resources"]["requests"], "utilization needs it")
        self.assertGreaterEqual(spec["minReplicas"], 2, "the PDB needs a second pod to evict one")
        self.assertGreater(spec["maxReplicas"], spec["minReplicas"])


class BenchJob(unittest.TestCase):
    """bench-job.yaml runs N echo-bench pods against the echo Service; bench-merge-job.yaml
    merges exactly the N reports they write."""

    @classmethod
    def setUpClass(cls):
        docs = load_all(os.path.join(K8S, "bench-job.yaml"))
        cls.claim = by_kind(docs, "PersistentVolumeClaim")
        cls.job = by_kind(docs, "Job")
        cls.merge = by_kind(load_all(os.path.join(K8S, "bench-merge-job.yaml")), "Job")
        cls.service = next(d for d in load_all(os.path.join(K8S, "service.yaml"))
                           if d["kind"] == "Service")
        cls.deployment = load_all(os.path.join(K8S, "deployment.yaml"))[0]
        cls.bench = cls.job["spec"]["template"]["spec"]["containers"][0]

    @staticmethod
    def option(args, name):
        return args[args.index(name) + 1]

    def test_an_indexed_job_runs_all_its_pods_at_once(self):
        spec = self.job["spec"]
        self.assertEqual(spec["completionMode"], "Indexed")
        self.assertEqual(spec["parallelism"], spec["completions"])
        self.assertGreater(spec["completions"], 1)
        self.assertEqual(self.bench["command"], ["/usr/local/bin/echo-bench"])

    def test_each_pod_targets_the_echo_service(self):
        # Service links: <NAME>_SERVICE_HOST and <NAME>_SERVICE_PORT_<PORT NAME>.
        prefix = self.service["metadata"]["name"].upper().replace("-", "_")
        (port,) = self.service["spec"]["ports"]
        args = self.bench["args"]
        self.assertEqual(self.option(args, "--host"), f"$({prefix}_SERVICE_HOST)")
        self.assertEqual(self.option(args, "--port"),
                         f"$({prefix}_SERVICE_PORT_{port['name'].upper()})")
        self.assertNotEqual(self.job["spec"]["template"]["spec"].get("enableServiceLinks"), False)

    def test_the_bench_pods_are_not_echo_endpoints(self):
        labels = self.job["spec"]["template"]["metadata"]["labels"]
        selector = self.service["spec"]["selector"]
        self.assertFalse(all(labels.get(k) == v for k, v in selector.items()))

    def test_the_merge_reads_every_report_the_pods_write(self):
        report = self.option(self.bench["args"], "--json")
        self.assertIn("$(JOB_COMPLETION_INDEX)", report)
        expected = [report.replace("$(JOB_COMPLETION_INDEX)", str(i))
                    for i in range(self.job["spec"]["completions"])]
        args = self.merge["spec"]["template"]["spec"]["containers"][0]["args"]
        self.assertEqual(args[0], "merge")
        inputs = args[1:args.index("--json")]
        self.assertEqual(inputs, expected)
        self.assertNotIn(self.option(args, "--json"), expected)

    def test_both_jobs_mount_the_claim_where_the_reports_are(self):
        for job in (self.job, self.merge):
            pod = job["spec"]["template"]["spec"]
            with self.subTest(job=job["metadata"]["name"]):
                (volume,) = pod["volumes"]
                self.assertEqual(volume["persistentVolumeClaim"]["claimName"],
                                 self.claim["metadata"]["name"])
                (mount,) = pod["containers"][0]["volumeMounts"]
                self.assertEqual(mount["name"], volume["name"])
                for arg in pod["containers"][0]["args"]:
                    if arg.endswith(".json"):
                        self.assertTrue(arg.startswith(mount["mountPath"] + "/"), arg)
                self.assertEqual(pod["securityContext"]["runAsUser"],
                                 self.deployment["spec"]["template"]["spec"]["securityContext"][
                                     "runAsUser"])
                self.assertIn("fsGroup", pod["securityContext"], "the volume must be writable")
        self.assertIn("ReadWriteMany", self.claim["spec"]["accessModes"],
                      "the pods run on different nodes")

    def test_a_failed_run_is_not_retried_into_the_merge(self):
        self.assertEqual(self.job["spec"]["backoffLimit"], 0)
        self.assertEqual(self.job["spec"]["template"]["spec"]["restartPolicy"], "Never")


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

    def test_bench_profile_runs_clients_against_the_server_and_merges_every_report(self):
        services = self.compose["services"]
        clients = sorted(n for n in services if n.startswith("bench-") and n != "bench-merge")
        self.assertGreater(len(clients), 1)
        reports = []
        for name in clients:
            client = services[name]
            with self.subTest(client=name):
                self.assertEqual(client["profiles"], ["bench"])
                self.assertEqual(client["network_mode"], "service:echo-server")
                entry = client["entrypoint"]
                self.assertEqual(entry[0], "/usr/local/bin/echo-bench")
                self.assertEqual(entry[entry.index("--host") + 1], "127.0.0.1")
                self.assertEqual(entry[entry.index("--port") + 1], self.config["port"])
                self.assertTrue(all(isinstance(word, str) for word in entry + client["command"]))
                reports.append(client["command"][client["command"].index("--json") + 1])
        self.assertEqual(len(set(reports)), len(reports), "each client writes its own report")
        merge = services["bench-merge"]
        self.assertEqual(merge["profiles"], ["bench"])
        command = merge["command"]
        self.assertEqual(command[0], "merge")
        self.assertEqual(command[1:command.index("--json")], reports)
        self.assertEqual(sorted(merge["depends_on"]), clients)
        for name in clients:
            self.assertEqual(merge["depends_on"][name]["condition"],
                             "service_completed_successfully")
        self.assertNotIn("profiles", self.server, "the server runs without the profile too")

    def test_prometheus_config_passes_promtool(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is not installed (Debian package prometheus)")
        run = subprocess.run([promtool, "check", "config", os.path.join(DEPLOY, "prometheus.yml")],
                             capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
