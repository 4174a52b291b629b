"""The FGD paper's scheduler plugins as Numba kernels over :class:`~kbench.gpushare.arrays.State`, one file each.

Every score kernel has the signature ``score(s, n, pod) -> (score, gpu)``: the plugin's raw score of node ``n``
for ``pod`` (a :class:`~kbench.gpushare.arrays.Pod`) and, for plugins that choose the GPU of a sharing pod
themselves, the device they would pick (-1 otherwise). :mod:`~kbench.gpushare.reference` holds the plain
Python mirror of the same Go code that the tests hold the kernels to.
"""
