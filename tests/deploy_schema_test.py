#!/usr/bin/python3
"""Validates deploy/kubernetes/ against Kubernetes' own API schemas, and renders the kustomization.

Every object of every manifest (the Job files too, which kustomization.yaml leaves out) goes through
the OpenAPI schemas compiled into the npm package kubernetes-models (tests/deploy_schema/: the
pinned version, and validate.cjs, which also rejects fields no schema names). `kubectl kustomize
deploy/kubernetes` must render exactly the listed manifests, and what it renders must validate too.

Run by ctest (label deploy):
    deploy_schema_test.py SOURCE_DIR WORK_DIR
WORK_DIR receives the npm install (reused while the lock file is unchanged). Exits 77, which
ctest reports as skipped, when npm is missing or cannot install the package.
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

import yaml

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(__file__))
WORK = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "build")
K8S = os.path.join(ROOT, "deploy", "kubernetes")
SCHEMA_DIR = os.path.join(ROOT, "tests", "deploy_schema")
NPM_DIR = os.path.join(WORK, "deploy-schema-npm")
SKIPPED = 77


def install_validator():
    """npm ci of tests/deploy_schema into NPM_DIR; returns None or why it cannot."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return "npm/node are not installed (Debian packages nodejs and npm, from scripts/lib.sh)"
    with open(os.path.join(SCHEMA_DIR, "package-lock.json"), encoding="utf-8") as f:
        lock = f.read()
    stamp = os.path.join(NPM_DIR, "installed-lock.json")
    if os.path.exists(stamp) and open(stamp, encoding="utf-8").read() == lock:
        return None
    shutil.rmtree(NPM_DIR, ignore_errors=True)
    os.makedirs(NPM_DIR)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(SCHEMA_DIR, name), NPM_DIR)
    try:
        run = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                             cwd=NPM_DIR, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return "npm ci did not finish in 300 s"
    if run.returncode != 0:
        return f"npm ci failed: {(run.stderr or run.stdout).strip()[-2000:]}"
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(lock)
    return None


def validate(objects):
    """validate.cjs over `objects`: one {"kind", "name", "errors"} per object."""
    env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
    run = subprocess.run(["node", os.path.join(SCHEMA_DIR, "validate.cjs")], env=env,
                         input=json.dumps(objects), capture_output=True, text=True, timeout=120,
                         check=False)
    if run.returncode != 0:
        raise AssertionError(f"validate.cjs failed: {run.stderr.strip()}")
    return json.loads(run.stdout)


def manifests():
    """file name -> its objects, for every manifest (not kustomization.yaml)."""
    out = {}
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            with open(os.path.join(K8S, name), encoding="utf-8") as f:
                out[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return out


def identity(obj):
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def assert_valid(test, objects, where):
    results = validate(objects)
    test.assertEqual(len(results), len(objects))
    for obj, result in zip(objects, results):
        with test.subTest(file=where, object=identity(obj)):
            test.assertEqual(result["errors"], [], f"{where}: {identity(obj)}")


class Schemas(unittest.TestCase):

    def test_every_manifest_validates_against_the_kubernetes_schemas(self):
        files = manifests()
        for expected in ("deployment.yaml", "pdb.yaml", "hpa.yaml", "bench-job.yaml",
                         "bench-merge-job.yaml"):
            self.assertIn(expected, files)
        # One node process for all of them: starting node is most of the cost.
        everything = [(name, obj) for name, objects in files.items() for obj in objects]
        results = validate([obj for _, obj in everything])
        self.assertEqual(len(results), len(everything))
        for (name, obj), result in zip(everything, results):
            with self.subTest(file=name, object=identity(obj)):
                self.assertEqual(result["errors"], [], f"{name}: {identity(obj)}")

    def test_mistakes_the_schemas_must_catch_are_caught(self):
        # The validator is only worth its green if it fails on these.
        deployment = manifests()["deployment.yaml"][0]
        container = lambda d: d["spec"]["template"]["spec"]["containers"][0]  # noqa: E731
        cases = []

        def mutated(change, expect):
            doc = json.loads(json.dumps(deployment))
            change(doc)
            cases.append((doc, expect))

        mutated(lambda d: container(d).__setitem__("readinesProbe", container(d).pop(
            "readinessProbe")), "unknown field spec.template.spec.containers[0].readinesProbe")
        mutated(lambda d: d["spec"]["template"]["spec"].__setitem__(
            "terminationGracePeriodSeconds", "15"), "must be integer")
        mutated(lambda d: container(d).pop("name"), "required property name")
        mutated(lambda d: d["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
                .__setitem__("whenUnsatisfiable", "Sometimes"), "allowed values")
        mutated(lambda d: container(d).__setitem__("args", ["--progress", False]),
                "must be string")
        mutated(lambda d: d.__setitem__("kind", "Deploymnt"), "no schema")
        results = validate([doc for doc, _ in cases])
        for (_, expect), result in zip(cases, results):
            with self.subTest(expect=expect):
                self.assertTrue(any(expect in e for e in result["errors"]), result["errors"])


class Kustomize(unittest.TestCase):
    def test_kubectl_kustomize_renders_the_listed_manifests_and_they_validate(self):
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            self.skipTest("kubectl is not installed (Debian package kubernetes-client)")
        run = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True,
                             timeout=120, check=False)
        self.assertEqual(run.returncode, 0, run.stderr)
        rendered = [d for d in yaml.safe_load_all(run.stdout) if d is not None]
        with open(os.path.join(K8S, "kustomization.yaml"), encoding="utf-8") as f:
            listed = yaml.safe_load(f)["resources"]
        files = manifests()
        expected = {identity(o): o for name in listed for o in files[name]}
        self.assertEqual(sorted(identity(o) for o in rendered), sorted(expected))
        for obj in rendered:
            with self.subTest(object=identity(obj)):
                self.assertEqual(obj, expected[identity(obj)], "kustomize changed the object")
        assert_valid(self, rendered, "kubectl kustomize")

    def test_the_benchmark_jobs_are_not_deployed_with_the_server(self):
        with open(os.path.join(K8S, "kustomization.yaml"), encoding="utf-8") as f:
            listed = yaml.safe_load(f)["resources"]
        self.assertNotIn("bench-job.yaml", listed)
        self.assertNotIn("bench-merge-job.yaml", listed)


if __name__ == "__main__":
    problem = install_validator()
    if problem is not None:
        print(f"SKIPPED: cannot install the schema validator: {problem}", flush=True)
        sys.exit(SKIPPED)
    result = unittest.main(argv=sys.argv[:1], verbosity=2, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
