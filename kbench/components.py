"""Every component's configuration, by component name: how scenario files, ``--config`` files and sweeps set it.

=========================  ==============================================  ==========================
component                  configuration                                   written as
=========================  ==============================================  ==========================
kube-apiserver             :class:`kbench.apiserver.config.KubeAPIServerConfig`    flags
kube-controller-manager    :class:`kbench.controllers.config.KubeControllerManagerConfiguration`  flags
kube-scheduler             :class:`kbench.scheduler.config.SchedulerConfig`       ``kind: KubeSchedulerConfiguration``
kubelet                    :class:`kbench.node.config.KubeletConfiguration`       ``kind: KubeletConfiguration``
kube-proxy                 :class:`kbench.proxy.config.KubeProxyConfiguration`    ``kind: KubeProxyConfiguration``
cloud-controller-manager   :class:`kbench.cloud.config.CloudControllerManagerConfiguration`  flags
=========================  ==============================================  ==========================

A scenario file sets flags in its ``cluster`` section, under the component's name, and component configs as
further documents::

    cluster:
      nodes: 100
      kube-controller-manager: {kube-api-qps: 100, kube-api-burst: 100}
    ---
    apiVersion: kubelet.config.k8s.io/v1beta1
    kind: KubeletConfiguration
    kubeAPIQPS: 100

A ``--config FILE`` holds the same: component-config documents, and flags as one plain mapping document keyed
by component name. A sweep sets one field as ``--param <component>.<field>=v1,v2`` (the field by its
manifest path, e.g. ``kubelet.nodeStatusUpdateFrequency``, or a flag's camelCase name, e.g.
``kube-controller-manager.kubeAPIQPS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kbench.apiserver.config import KubeAPIServerConfig
from kbench.cloud.config import ROUTE_FLAGS, CloudControllerManagerConfiguration
from kbench.componentconfig import ConfigError
from kbench.controllers.config import KUBEADM_FLAGS, KubeControllerManagerConfiguration
from kbench.node.config import KubeletConfiguration
from kbench.params import parse_values
from kbench.proxy.config import KubeProxyConfiguration
from kbench.scheduler.config import SchedulerConfig

CONFIGS: dict[str, Any] = {
    cls.component: cls
    for cls in (
        KubeAPIServerConfig,
        KubeControllerManagerConfiguration,
        SchedulerConfig,
        KubeletConfiguration,
        KubeProxyConfiguration,
        CloudControllerManagerConfiguration,
    )
}
"""Component name -> its configuration class."""
KINDS = {cls.kind: cls for cls in CONFIGS.values() if cls.kind}
"""Component-config kind -> class (components configured by a manifest)."""
FLAGGED = tuple(name for name, cls in CONFIGS.items() if not cls.kind)
"""Components configured by flags (set in a scenario's ``cluster`` section under their name)."""


POD_SUBNET = "10.0.0.0/8"
"""The cluster's pod network (kubeadm's ``networking.podSubnet``), from which node IPAM hands out each node's /24."""
INSTALLER_SETTINGS = {
    "kube-controller-manager": KUBEADM_FLAGS,
    "cloud-controller-manager": ROUTE_FLAGS,
    "kube-proxy": {"clusterCIDR": POD_SUBNET},
}
"""What a cluster's installer sets beyond upstream's defaults when the cluster has a pod subnet: kubeadm gives
kube-controller-manager (and a cloud-controller-manager) ``--allocate-node-cidrs`` and ``--cluster-cidr``, so node
IPAM hands out pod CIDRs and the route controller programs routes, and writes the subnet into the
KubeProxyConfiguration's ``clusterCIDR`` (cmd/kubeadm/app/componentconfigs/kubeproxy.go), so kube-proxy tells
pod traffic from the rest. Every other field is upstream's default."""


def defaults() -> dict[str, Any]:
    """Every component's configuration in a cluster nobody configured: upstream's defaults, with what its
    installer sets (:data:`INSTALLER_SETTINGS`)."""
    configs = {name: cls() for name, cls in CONFIGS.items()}
    for name, settings in INSTALLER_SETTINGS.items():
        configs[name] = configs[name].replace(settings, f"{name} (installer's settings)")
    return configs


def is_config_document(doc: Any) -> bool:
    """Whether a YAML document is a component configuration (a kind in :data:`KINDS`)."""
    return isinstance(doc, Mapping) and doc.get("kind") in KINDS


def from_documents(
    docs: Mapping[str, Mapping],
    flags: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    where: str = "config",
) -> dict[str, Any]:
    """Every component's configuration: ``base`` (default: upstream's defaults) with the component-config
    documents ``docs`` (``{label for errors: document}``) and the flag maps ``flags`` (``{component: {flag:
    value}}``, errors prefixed by ``where``) applied. A document replaces its component's configuration, as the
    component reads one file: fields it leaves out take upstream's defaults, or what the installer writes into
    the file (:data:`INSTALLER_SETTINGS`, as kubeadm fills ``clusterCIDR`` into a user's KubeProxyConfiguration)."""
    configs = dict(base or defaults())
    for label, doc in docs.items():
        cls = KINDS[doc["kind"]]
        parsed = cls.from_manifest(doc, f"{label}: {cls.kind}")
        unset = {k: v for k, v in INSTALLER_SETTINGS.get(cls.component, {}).items() if not _given(doc, k)}
        configs[cls.component] = parsed.replace(unset, f"{label}: {cls.kind}") if unset else parsed
    for component, given in (flags or {}).items():
        if component not in FLAGGED:
            raise ConfigError(
                f"{where}.{component}: not a component configured by flags; allowed: {', '.join(FLAGGED)} "
                "(the others take their component-config documents)"
            )
        if not isinstance(given, Mapping):
            raise ConfigError(f"{where}.{component}: expected a mapping of flags, e.g. {{kube-api-qps: 100}}")
        configs[component] = configs[component].replace(given, f"{where}.{component}")
    return configs


def _given(doc: Mapping, path: str) -> bool:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def load_file(path: str | Path, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The configuration in a ``--config`` file (multi-document YAML), over ``base``."""
    path = Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    manifests: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    for i, doc in enumerate(docs):
        if is_config_document(doc):
            manifests[f"{path}: document {i}"] = doc
        elif isinstance(doc, Mapping) and "kind" not in doc:
            flags.update(doc)
        else:
            kind = doc.get("kind") if isinstance(doc, Mapping) else type(doc).__name__
            raise ConfigError(
                f"{path}: document {i}: kind {kind!r} is not a component configuration; allowed: "
                f"{', '.join(KINDS)}, or a mapping of flags by component ({', '.join(FLAGGED)})"
            )
    return from_documents(manifests, flags, base, str(path))


def split_field(name: str) -> tuple[str, str]:
    """``"kube-controller-manager.kubeAPIQPS"`` -> (component, field); errors name the components."""
    component, dot, field = name.partition(".")
    if not dot or component not in CONFIGS:
        raise ConfigError(f"{name!r}: expected <component>.<field> with component one of {', '.join(CONFIGS)}")
    CONFIGS[component].lookup(field)
    return component, field


def apply_fields(configs: Mapping[str, Any], values: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """``configs`` with ``{"<component>.<field>": value}`` set (sweep parameters), each validated."""
    out = dict(configs)
    for component, fields in nest(values).items():
        out[component] = out[component].replace(fields, f"{where}.{component}")
    return out


def changed_fields(configs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"<component>.<field>": value}`` of every field that differs from :func:`defaults`."""
    changed, base = {}, defaults()
    for name, config in configs.items():
        default = base[name].values()
        changed.update({f"{name}.{path}": v for path, v in config.values().items() if default.get(path) != v})
    return changed


def select(component: str | None) -> list[str]:
    """``[component]``, or every component's name if none is given; an unknown one is an error listing them."""
    if component and component not in CONFIGS:
        raise ConfigError(f"unknown component {component!r}; allowed: {', '.join(CONFIGS)}")
    return [component] if component else list(CONFIGS)


def describe(component: str | None = None) -> str:
    """Every field of one component (or of all): name, flag, default (:func:`defaults`: upstream's, and the
    installer's flags), what is allowed, and the source."""
    lines, base = [], defaults()
    for name in select(component):
        cls = CONFIGS[name]
        lines.append(f"{name} ({cls.kind or 'flags'})")
        for path, (attr, meta) in cls.options().items():
            flag = f" --{meta.flag}" if meta.flag else ""
            default = meta.show(getattr(base[name], attr))
            lines.append(f"  {path}{flag}: {meta.help}; default {default!r}; {meta.allowed()}")
            lines.append(f"      source: {meta.source}")
    return "\n".join(lines)


def nest(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"<component>.<field>": value}`` -> ``{component: {field: value}}`` (what ``ClusterSpec(config=)``
    takes)."""
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        component, field = split_field(name)
        nested.setdefault(component, {})[field] = value
    return nested


def sweepable(configs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The fields of ``configs`` that differ from upstream's defaults, as sweep axes; an error if some change
    (e.g. a scheduler profile's plugins) is not a single field a sweep can carry."""
    fields = changed_fields(configs)
    if apply_fields(defaults(), fields) != dict(configs):
        raise ConfigError(
            f"{where}: sets more than single fields (e.g. KubeSchedulerConfiguration profiles); a sweep takes "
            "single fields (<component>.<field>); put the rest in a scenario file"
        )
    return fields


@dataclass(frozen=True)
class FieldParam:
    """A sweep parameter that is one component field, ``<component>.<field>``; its values stay as manifests
    write them (durations as ``"40s"``), checked by the field's own rule."""

    name: str

    def option(self) -> Any:
        """The field's :class:`kbench.componentconfig.Option`."""
        component, field = split_field(self.name)
        return CONFIGS[component].lookup(field)[1]

    def allowed(self) -> str:
        """What values the field allows."""
        return self.option().allowed()

    @property
    def help(self) -> str:
        """The field as figures label it: ``kube-controller-manager --kube-api-qps: QPS of ...``."""
        component, field = split_field(self.name)
        meta = self.option()
        return f"{component} {'--' + meta.flag if meta.flag else field}: {meta.help}"

    def describe(self) -> str:
        """One line for ``--help`` and error messages."""
        meta = self.option()
        return f"{self.name}: {meta.help} ({meta.allowed()})"

    def check(self, value: Any) -> Any:
        """``value`` validated by the field's rule, as manifests write it."""
        meta = self.option()
        if meta.kind is list:
            raise ConfigError(f"{self.name}: a list field cannot be a sweep axis; set it in a --config file")
        return meta.show(meta.check(value, self.name))

    def parse(self, text: str) -> list:
        """The comma-separated values of ``--param``, each checked."""
        return parse_values(self, text, ConfigError)
