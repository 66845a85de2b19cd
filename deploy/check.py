#!/usr/bin/env python3
"""Syntax and shape checks of the deployment files (run by .ci/run)."""
import pathlib, sys, yaml, configparser

root = pathlib.Path(__file__).parent
compose = yaml.safe_load((root / "compose.yaml").read_text())
assert {"postgres", "paygate-1", "paygate-2", "lb"} <= set(compose["services"]), compose["services"].keys()
docs = [d for d in yaml.safe_load_all((root / "k8s" / "paygate.yaml").read_text()) if d]
kinds = {d["kind"] for d in docs}
assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= kinds, kinds
for d in docs:
    assert d.get("apiVersion") and d.get("metadata", {}).get("name"), d
    if d["kind"] == "Deployment":
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
unit = configparser.ConfigParser(strict=False)
unit.read(root / "paygate.service")
assert unit["Service"]["ExecStart"].endswith("paygate serve")
assert "FROM" in (root / "Dockerfile").read_text()
print("deploy files ok")
