"""Root CA certificate publisher (pkg/controller/certificates/rootcacertpublisher/publisher.go, v1.35).

Every namespace gets the ConfigMap ``kube-root-ca.crt`` holding the cluster's CA bundle (``ca.crt``), which the
ServiceAccount admission plugin's projected volume mounts in every pod: created when a namespace is added (or updated
while active), created again when it is deleted, put back when its data or description annotation is changed. Its
informers are kube-controller-manager's shared ConfigMap and Namespace informers (all namespaces); one worker
(``sac.Run(ctx, 1)``) on its own client (``ClientOrDie("root-ca-cert-publisher")``), both in
cmd/kube-controller-manager/app/certificates.go startRootCACertificatePublisherController.
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.apiserver.objects import APIError
from kbench.controllers.base import Controller, Manager

ROOT_CA_CERT_CONFIGMAP_NAME = "kube-root-ca.crt"
"""publisher.go RootCACertConfigMapName."""
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the "
    "internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes "
    "clusters."
)
"""publisher.go DescriptionAnnotation and Description: the annotation every published ConfigMap carries."""
ROOT_CA = "-----BEGIN CERTIFICATE-----\n" + "\n".join(["A" * 64] * 17) + "\nAAAA\n-----END CERTIFICATE-----\n"
"""The CA bundle published (the kube-apiserver's CA from ``--root-ca-file`` or the client's CAData): a placeholder of
the length of a PEM-encoded self-signed 2048-bit RSA CA certificate as kubeadm makes (about 1.1 KB), so the
ConfigMap's size is real."""


class RootCACertPublisher(Controller):
    """Publisher: the ``kube-root-ca.crt`` ConfigMap of every namespace."""

    name = "root-ca-certificate-publisher-controller"
    client_name = "root-ca-cert-publisher"

    def __init__(self, manager: Manager, root_ca: str = ROOT_CA) -> None:
        super().__init__(manager)
        self.root_ca = root_ca
        self.configmaps = self.watch("configmaps", on_update=self._configmap_updated, on_delete=self._configmap_deleted)
        self.namespaces = self.watch("namespaces", on_add=self.enqueue, on_update=self._namespace_updated)

    def start(self) -> None:
        """Run: wait for the ConfigMap informer to sync (WaitForNamedCacheSync "crt configmap"), then the worker."""

        def run():
            yield self.configmaps.synced
            if not self.stopped:
                super(RootCACertPublisher, self).start()

        self.stopped = False
        self.engine.process(run(), name=f"{self.name}-sync")

    def _configmap_updated(self, old: Mapping, new: Mapping) -> None:
        """configMapUpdated: a change to the published ConfigMap queues its namespace."""
        self._configmap_deleted(new)

    def _configmap_deleted(self, cm: Mapping) -> None:
        """configMapDeleted: the published ConfigMap is gone, so its namespace is synced again."""
        if cm["metadata"]["name"] == ROOT_CA_CERT_CONFIGMAP_NAME:
            self.queue.add(cm["metadata"]["namespace"])

    def _namespace_updated(self, old: Mapping, new: Mapping) -> None:
        """namespaceUpdated: an active namespace is synced (a terminating one is not)."""
        if new.get("status", {}).get("phase") == "Active":
            self.queue.add(new["metadata"]["name"])

    def data(self) -> dict:
        """The ConfigMap's data."""
        return {"ca.crt": self.root_ca}

    def sync(self, key):
        """syncNamespace: create the ConfigMap if the informer has none; update one whose data or description
        differs. A create refused because the namespace is gone or terminating is not retried."""
        current = self.configmaps.cache.get(f"{key}/{ROOT_CA_CERT_CONFIGMAP_NAME}")
        if current is None:
            body = {
                "metadata": {
                    "name": ROOT_CA_CERT_CONFIGMAP_NAME,
                    "namespace": key,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                },
                "data": self.data(),
            }
            try:
                yield self.client.call("create", "configmaps", namespace=key, body=body)
            except APIError as err:
                if err.code == 404 or (err.code == 403 and "being terminated" in err.message):
                    return  # NotFound, or NamespaceTerminatingCause
                raise
            return
        annotations = current["metadata"].get("annotations") or {}
        if current.get("data") == self.data() and annotations.get(DESCRIPTION_ANNOTATION):
            return
        body = self.copy(current)
        body["data"] = self.data()
        body["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
        yield self.client.call("update", "configmaps", namespace=key, body=body)
