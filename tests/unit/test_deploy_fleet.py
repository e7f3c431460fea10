"""deploy/kubernetes (kustomize) and deploy/compose.yaml, checked offline: every manifest against the Kubernetes
schemas (kubernetes-validate ships them), the fleet's essentials (3 replicas, probes, drain, resources, non-root
read-only root filesystem, PDB, the ConfigMap mounted where --config points), and the Compose file parsed."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from gateway.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "compose.yaml"
K8S_VERSION = "1.30.0"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomized(base: Path) -> list[dict]:
    k = yaml.safe_load((base / "kustomization.yaml").read_text())
    out = []
    for res in k["resources"]:
        assert (base / res).exists(), f"{base / res} is listed in the kustomization but missing"
        out += _docs(base / res)
    for gen in k.get("configMapGenerator", []):
        data = {}
        for f in gen["files"]:
            assert (base / f).exists(), f
            data[Path(f).name] = (base / f).read_text()
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    for gen in k.get("secretGenerator", []):
        out.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": gen["name"]},
                    "stringData": dict(x.split("=", 1) for x in gen["literals"])})
    return out


def _all_manifests() -> list[tuple[str, dict]]:
    docs = [("kubernetes", d) for d in _kustomized(K8S)]
    docs += [("examples", d) for d in _kustomized(K8S / "examples")]
    docs += [("secret.example", d) for d in _docs(K8S / "secret.example.yaml")]
    return docs


@pytest.mark.parametrize("where,doc", _all_manifests(), ids=lambda x: x if isinstance(x, str) else x["kind"])
def test_every_manifest_matches_the_kubernetes_schema(where, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _by_kind(kind: str) -> dict:
    (doc,) = [d for d in _kustomized(K8S) if d["kind"] == kind]
    return doc


def test_deployment_is_a_fleet_that_drains_and_runs_locked_down():
    dep = _by_kind("Deployment")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert spec["replicas"] == 3 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "preStop" in c["lifecycle"] and pod["terminationGracePeriodSeconds"] > 30 + 10  # drain + graceful timeout
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    # Writable paths exist despite the read-only root: /tmp (metrics of the workers, scratch state).
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts["/tmp"] == "tmp"
    env = {e["name"]: e for e in c["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"]["value"].startswith("/tmp/")
    assert env["GATEWAY_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert c["envFrom"][0]["secretRef"]["name"] == "llm-gateway-secrets"
    # The routes come from the ConfigMap, mounted (not subPath: subPath mounts never see updates) where --config
    # points, so the kubelet's symlink swap reaches the running pods and hot reload picks it up.
    config = c["args"][c["args"].index("--config") + 1]
    mount = next(m for m in c["volumeMounts"] if config.startswith(m["mountPath"] + "/"))
    assert "subPath" not in mount
    vol = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cm = _by_kind("ConfigMap")
    assert vol["configMap"]["name"] == cm["metadata"]["name"] and Path(config).name in cm["data"]
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert k["configMapGenerator"][0]["options"]["disableNameSuffixHash"] is True


def test_service_and_pdb_select_the_gateway_pods():
    labels = _by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        doc = _by_kind(kind)
        sel = doc["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        assert sel.items() <= labels.items(), kind
    assert _by_kind("PodDisruptionBudget")["spec"]["minAvailable"] == 2


def test_the_configmap_routes_are_a_valid_fleet_config(monkeypatch, tmp_path):
    for name, value in {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y", "REDIS_URL": "redis://redis:6379/0",
                        "DATABASE_URL": "postgresql://gateway:pw@postgres:5432/gateway",
                        "GATEWAY_ADMIN_KEY_SHA256": "0" * 64, "GATEWAY_SESSION_SECRET": "s" * 32}.items():
        monkeypatch.setenv(name, value)
    cfg = load_config(K8S / "gateway.yaml")
    assert cfg.state.backend == "redis" and cfg.store.backend == "postgres" and cfg.admin.session_secret


def test_compose_runs_two_gateways_with_redis_postgres_prometheus_and_grafana(monkeypatch):
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    gateways = [n for n in services if n.startswith("gateway-")]
    assert len(gateways) == 2 and {"redis", "postgres", "prometheus", "grafana"} <= set(services)
    for name in gateways:
        s = services[name]
        assert s["read_only"] is True and "--workers" in s["command"]
        env = s["environment"]
        assert env["GATEWAY_REPLICA"] == name and env["REDIS_URL"].startswith("redis://redis:")
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert set(s["depends_on"]) == {"redis", "postgres"}
    # Every mounted file exists, relative to deploy/.
    for s in services.values():
        for v in s.get("volumes", []):
            src = v.split(":", 1)[0]
            if src.startswith("."):
                assert (COMPOSE.parent / src).exists(), src
    prom = yaml.safe_load((COMPOSE.parent / "compose" / "prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(t.split(":")[0] for t in targets) == sorted(gateways)
    grafana_mounts = " ".join(services["grafana"]["volumes"])
    assert "gateway-dashboard.json" in grafana_mounts and "provisioning/datasources" in grafana_mounts
