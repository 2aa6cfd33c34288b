// Package deploy holds extapi's deployment files — Prometheus configuration and alerts, the
// Grafana dashboard and its provisioning, Kubernetes manifests — and, in its tests, the checks
// that keep them in step with the series package metrics registers and with the Dockerfile and
// docker-compose.yml at the repository root. It has no code of its own.
package deploy
