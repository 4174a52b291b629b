"""The driver's pods: made from a template they share, which no pod made from it changes."""

from __future__ import annotations

import copy
import json

from kbench.node.probes import ANNOTATION
from kbench.scenarios.steps import PAUSE_POD, Driver


def test_pods_share_their_template_and_leave_it_as_it_was():
    template = {
        "metadata": {"labels": {"app": "web"}, "annotations": {"team": "a"}},
        "spec": {"containers": [{"name": "c", "image": "img"}]},
    }
    before = copy.deepcopy(template)
    one = Driver._pod(template, {"startupSeconds": 3}, "ns", "pod-1")
    two = Driver._pod(template, None, "other", "pod-2")
    assert template == before  # the template's metadata and annotations were copied before being set
    assert one["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"team": "a", ANNOTATION: json.dumps({"startupSeconds": 3})},
        "name": "pod-1",
        "namespace": "ns",
    }
    assert two["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"team": "a"},
        "name": "pod-2",
        "namespace": "other",
    }
    assert one["spec"] is two["spec"] is template["spec"]  # shared: a body is never changed once sent
    assert list(one) == ["metadata", "spec", "apiVersion", "kind"]  # the key order a JSON copy of it had
    default = Driver._pod(None, None, "ns", "p")
    assert default["spec"] is PAUSE_POD["spec"] and PAUSE_POD["metadata"] == {"labels": {"group": "density"}}
