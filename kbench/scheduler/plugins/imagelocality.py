"""ImageLocality (``plugins/imagelocality``): nodes that already hold the pod's images, scaled by their spread."""

from __future__ import annotations

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.interface import MAX_NODE_SCORE, Plugin
from kbench.scheduler.state import normalized_image_name

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
"""imagelocality.minThreshold."""
MAX_CONTAINER_THRESHOLD = 1000 * MB
"""imagelocality.maxContainerThreshold."""


class ImageLocality(Plugin):
    """Score: nodes that already hold the pod's images, scaled by how widely each image is spread."""

    name = "ImageLocality"
    points = ("score",)

    def score(self, ctx, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """calculatePriority(sumImageScores): the summed scaled sizes, clipped to the thresholds, as 0-100."""
        s = self.state
        containers = (*pod.init_containers, *pod.containers)
        sums = np.zeros(len(nodes), np.int64)
        for c in containers:
            image = normalized_image_name(c.image)
            if image not in s.images:
                continue
            size, count = s.images[image]
            scaled = int(float(size) * (float(count) / float(s.num_nodes)))
            sums += np.array([scaled if s.image_size(i, image) is not None else 0 for i in nodes.tolist()], np.int64)
        max_threshold = MAX_CONTAINER_THRESHOLD * len(containers)
        clipped = np.clip(sums, MIN_THRESHOLD, max(max_threshold, MIN_THRESHOLD))
        if max_threshold == MIN_THRESHOLD:
            return np.zeros(len(nodes), np.int64)
        return MAX_NODE_SCORE * (clipped - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)
