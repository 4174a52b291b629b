"""Go's ``sort.Sort`` (pattern-defeating quicksort, Go 1.19 ``src/sort/zsortinterface.go``).

etcd sorts range results with ``sort.Sort``, which is not stable: beyond 12
elements the order of equal elements depends on the algorithm's exact steps.
Debian's etcd 3.4.23 is built with Go 1.19, so this is that algorithm, step for
step, over a Python list and a ``less(x, y)`` function, to give equal elements
exactly the order a real etcd gives them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Less = Callable[[Any, Any], bool]
_MASK = (1 << 64) - 1
_UNKNOWN, _INCREASING, _DECREASING = 0, 1, 2


def go_sort(data: list, less: Less) -> None:
    """Sort ``data`` in place as Go's sort.Sort would, ``less`` being the Less of sort.Interface."""
    n = len(data)
    if n > 1:
        _pdqsort(data, less, 0, n, n.bit_length())


def _swap(d: list, i: int, j: int) -> None:
    d[i], d[j] = d[j], d[i]


def _insertion_sort(d, less, a, b):
    for i in range(a + 1, b):
        j = i
        while j > a and less(d[j], d[j - 1]):
            _swap(d, j, j - 1)
            j -= 1


def _sift_down(d, less, lo, hi, first):
    root = lo
    while True:
        child = 2 * root + 1
        if child >= hi:
            return
        if child + 1 < hi and less(d[first + child], d[first + child + 1]):
            child += 1
        if not less(d[first + root], d[first + child]):
            return
        _swap(d, first + root, first + child)
        root = child


def _heap_sort(d, less, a, b):
    first, hi = a, b - a
    for i in range((hi - 1) // 2, -1, -1):
        _sift_down(d, less, i, hi, first)
    for i in range(hi - 1, -1, -1):
        _swap(d, first, first + i)
        _sift_down(d, less, 0, i, first)


def _pdqsort(d, less, a, b, limit):
    was_balanced = was_partitioned = True
    while True:
        length = b - a
        if length <= 12:
            _insertion_sort(d, less, a, b)
            return
        if limit == 0:
            _heap_sort(d, less, a, b)
            return
        if not was_balanced:
            _break_patterns(d, a, b)
            limit -= 1
        pivot, hint = _choose_pivot(d, less, a, b)
        if hint == _DECREASING:
            _reverse_range(d, a, b)
            pivot = (b - 1) - (pivot - a)
            hint = _INCREASING
        if was_balanced and was_partitioned and hint == _INCREASING and _partial_insertion_sort(d, less, a, b):
            return
        if a > 0 and not less(d[a - 1], d[pivot]):
            a = _partition_equal(d, less, a, b, pivot)
            continue
        mid, was_partitioned = _partition(d, less, a, b, pivot)
        left, right = mid - a, b - mid
        threshold = length // 8
        if left < right:
            was_balanced = left >= threshold
            _pdqsort(d, less, a, mid, limit)
            a = mid + 1
        else:
            was_balanced = right >= threshold
            _pdqsort(d, less, mid + 1, b, limit)
            b = mid


def _partition(d, less, a, b, pivot):
    _swap(d, a, pivot)
    i, j = a + 1, b - 1
    while i <= j and less(d[i], d[a]):
        i += 1
    while i <= j and not less(d[j], d[a]):
        j -= 1
    if i > j:
        _swap(d, j, a)
        return j, True
    _swap(d, i, j)
    i, j = i + 1, j - 1
    while True:
        while i <= j and less(d[i], d[a]):
            i += 1
        while i <= j and not less(d[j], d[a]):
            j -= 1
        if i > j:
            break
        _swap(d, i, j)
        i, j = i + 1, j - 1
    _swap(d, j, a)
    return j, False


def _partition_equal(d, less, a, b, pivot):
    _swap(d, a, pivot)
    i, j = a + 1, b - 1
    while True:
        while i <= j and not less(d[a], d[i]):
            i += 1
        while i <= j and less(d[a], d[j]):
            j -= 1
        if i > j:
            return i
        _swap(d, i, j)
        i, j = i + 1, j - 1


def _partial_insertion_sort(d, less, a, b):
    i = a + 1
    for _ in range(5):  # maxSteps
        while i < b and not less(d[i], d[i - 1]):
            i += 1
        if i == b:
            return True
        if b - a < 50:  # shortestShifting
            return False
        _swap(d, i, i - 1)
        if i - a >= 2:
            for j in range(i - 1, 0, -1):
                if not less(d[j], d[j - 1]):
                    break
                _swap(d, j, j - 1)
        if b - i >= 2:
            for j in range(i + 1, b):
                if not less(d[j], d[j - 1]):
                    break
                _swap(d, j, j - 1)
    return False


def _break_patterns(d, a, b):
    length = b - a
    if length < 8:
        return
    state = length
    modulus = 1 << length.bit_length()
    for idx in range(a + (length // 4) * 2 - 1, a + (length // 4) * 2 + 2):
        state ^= (state << 13) & _MASK
        state ^= state >> 17
        state ^= (state << 5) & _MASK
        other = state & (modulus - 1)
        if other >= length:
            other -= length
        _swap(d, idx, a + other)


def _choose_pivot(d, less, a, b):
    n = b - a
    swaps = [0]
    i, j, k = a + n // 4, a + n // 4 * 2, a + n // 4 * 3
    if n >= 8:
        if n >= 50:  # shortestNinther: Tukey's ninther
            i = _median(d, less, i - 1, i, i + 1, swaps)
            j = _median(d, less, j - 1, j, j + 1, swaps)
            k = _median(d, less, k - 1, k, k + 1, swaps)
        j = _median(d, less, i, j, k, swaps)
    if swaps[0] == 0:
        return j, _INCREASING
    if swaps[0] == 12:  # maxSwaps
        return j, _DECREASING
    return j, _UNKNOWN


def _order2(d, less, a, b, swaps):
    if less(d[b], d[a]):
        swaps[0] += 1
        return b, a
    return a, b


def _median(d, less, a, b, c, swaps):
    a, b = _order2(d, less, a, b, swaps)
    b, c = _order2(d, less, b, c, swaps)
    a, b = _order2(d, less, a, b, swaps)
    return b


def _reverse_range(d, a, b):
    i, j = a, b - 1
    while i < j:
        _swap(d, i, j)
        i, j = i + 1, j - 1
