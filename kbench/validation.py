"""kbench beside published measurements: the experiments of ``data/validation/``, each run and compared.

An experiment file names what was measured (a ClusterLoader2 run, a KEP's figures, a blog's benchmark), the
published figures with their sources, and the preset that reproduces its configuration (a scenario in
``data/presets/``, or a built-in scenario with arguments). Each row is one published percentile, marked
``out-of-sample`` or ``fitted: <the unit cost fitted to it>``; ``data/validation/README.md`` is the schema.
``kbench validate`` runs the experiments through the ``validation`` sweep (so ``--jobs``, ``--dask`` and
``--resume`` work as for any sweep) and prints experiment | metric | published | kbench | ratio | within
tolerance.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from kbench.metrics.slis import COLUMNS

QUANTILES = ("p50", "p90", "p99", "max")
OUT_OF_SAMPLE = "out-of-sample"
TABLE_COLUMNS = [
    "experiment",
    "metric",
    "unit",
    "published",
    "kbench",
    "ratio",
    "tolerance",
    "within",
    "role",
    "source",
    "known_gap",
]


def validation_dir() -> Path:
    """Where experiment files live: ``$KBENCH_VALIDATION`` or the checkout's ``data/validation``."""
    return Path(os.environ.get("KBENCH_VALIDATION", Path(__file__).resolve().parents[1] / "data" / "validation"))


class ValidationError(ValueError):
    """An experiment file that does not follow the schema; the message names the file and the field."""


@dataclass(frozen=True)
class Row:
    """One published figure: which kbench figure it is compared with (an SLI row and quantile of a scenario run, or
    a result column of one point of a sweep), and how closely."""

    published: float
    unit: str
    source: str
    role: str
    tolerance: float
    sli: str | None = None
    metric: str | None = None
    quantile: str | None = None
    verb: str | None = None
    resource: str | None = None
    scope: str | None = None
    column: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)
    known_gap: str = ""
    """Why kbench is outside the tolerance here (the validation test then expects it outside; mend and remove)."""
    note: str = ""

    @property
    def key(self) -> str:
        """``PodStartupLatency/pod_startup/p99``, with the request ``APIResponsiveness/request_latency LIST pods
        cluster/p99``, or for a sweep ``sim_write_latency_p50_ms[clients=1]`` (its column: :attr:`column_name`)."""
        if self.column is not None:
            return f"{self.column}[{','.join(f'{k}={v}' for k, v in self.where.items())}]"
        labels = " ".join(x for x in (self.verb, self.resource, self.scope) if x)
        return f"{self.sli}/{self.metric}{' ' + labels if labels else ''}/{self.quantile}"

    @property
    def column_name(self) -> str:
        """The validation sweep's result column of this row: ``sim_[<key>]``."""
        return f"sim_[{self.key}]"

    @property
    def fitted(self) -> bool:
        """A unit cost was fitted to this figure (so agreement is not evidence)."""
        return self.role != OUT_OF_SAMPLE


@dataclass(frozen=True)
class Experiment:
    """One published experiment: its figures and how kbench reproduces it (a preset, a built-in scenario, or some
    points of a sweep)."""

    name: str
    description: str
    quick: bool
    rows: tuple[Row, ...]
    sources: Mapping[str, Mapping[str, Any]]
    preset: str | None = None
    builtin: Mapping[str, Any] | None = None
    sweep: Mapping[str, Any] | None = None
    qualitative: tuple[Mapping[str, Any], ...] = field(default=())
    origin: str = ""

    def scenario(self, seed: int = 0):
        """The scenario that reproduces the experiment, seeded."""
        from dataclasses import replace

        from kbench.scenarios.library import SCENARIOS
        from kbench.scenarios.spec import Scenario

        if self.builtin is not None:
            sc = SCENARIOS[self.builtin["scenario"]](**dict(self.builtin.get("args") or {}))
        else:
            assert self.preset is not None
            sc = Scenario.from_preset(self.preset)
        sc.cluster = replace(sc.cluster, seed=seed)
        return sc

    def points(self) -> list[dict]:
        """A sweep experiment's grid: the sweep's ``preset`` (default quick) with ``params`` replacing axes."""
        from kbench.sweep.registry import get_sweep

        assert self.sweep is not None
        spec = self.sweep
        params = {k: v if isinstance(v, list) else [v] for k, v in (spec.get("params") or {}).items()}
        return get_sweep(spec["name"]).grid(spec.get("preset", "quick"), params)

    def run(self, seed: int = 0, on_advance=None) -> dict[str, float | str]:
        """Run the experiment; its summary columns (a scenario's) and one ``sim_<row key>`` per published row, and
        ``problems`` when a run (or a sweep's point) did not do what it waited for (its rows then have no figure)."""
        if self.sweep is None:
            result = self.scenario(seed).run(progress=False, on_advance=on_advance)
            return {**result.summary(), **measured(result.slis, self)}
        from kbench.sweep.registry import get_sweep

        sweep = get_sweep(self.sweep["name"])
        results = [(point, sweep.run_point(point, seed)) for point in self.points()]
        figures: dict[str, float | str] = {row.column_name: _pick(results, row, self.origin) for row in self.rows}
        problems = "; ".join(dict.fromkeys(m["problems"] for _, m in results if m.get("problems")))
        return {**figures, "problems": problems} if problems else figures


def _pick(results: list[tuple[dict, dict]], row: Row, origin: str) -> float:
    """The row's column at the one sweep point its ``where`` selects."""
    hits = [metrics for point, metrics in results if all(point.get(k) == v for k, v in row.where.items())]
    if len(hits) != 1:
        raise ValidationError(f"{origin}: rows: {row.key}: where selects {len(hits)} of the sweep's points, not 1")
    if row.column not in hits[0]:
        raise ValidationError(f"{origin}: rows: {row.key}: column: the sweep has no {row.column!r}")
    if hits[0].get("problems"):  # a point that did not do what it waited for (pods left unscheduled) has no figure
        return math.nan
    return float(hits[0][row.column])


def _need(doc: Mapping, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key)
    if value is None or isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValidationError(f"{where}: {key}: required, a {names}; got {value!r}")
    return value


SCENARIO_FIELDS = ("sli", "metric", "quantile", "verb", "resource", "scope")
SWEEP_FIELDS = ("column", "where")


def _row(raw: Any, where: str, sources: Mapping, sweep: bool) -> Row:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: expected a mapping with published, unit, source, role, ...")
    own, other = (SWEEP_FIELDS, SCENARIO_FIELDS) if sweep else (SCENARIO_FIELDS, SWEEP_FIELDS)
    allowed = {"published", "unit", "source", "role", "tolerance", "known_gap", "note", *own}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        kind = "a sweep's" if sweep else "a scenario's"
        hint = f" ({kind} rows take {', '.join(own)}, not {', '.join(other)})" if unknown[0] in other else ""
        raise ValidationError(f"{where}: {unknown[0]}: unknown field{hint}; allowed: {', '.join(sorted(allowed))}")
    published = _need(raw, "published", (int, float), where)
    if not math.isfinite(published) or published <= 0:
        raise ValidationError(f"{where}: published: must be a positive number; got {published!r}")
    source = _need(raw, "source", str, where)
    if source not in sources:
        raise ValidationError(f"{where}: source: {source!r} is not in the file's sources ({', '.join(sources)})")
    role = _need(raw, "role", str, where)
    if role != OUT_OF_SAMPLE and not role.startswith("fitted:"):
        raise ValidationError(f"{where}: role: must be {OUT_OF_SAMPLE!r} or 'fitted: <unit cost>'; got {role!r}")
    tolerance = raw.get("tolerance", 0.25)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < math.inf:
        raise ValidationError(f"{where}: tolerance: must be a positive relative tolerance (0.25 = 25%)")
    common = {
        "published": float(published),
        "unit": _need(raw, "unit", str, where),
        "source": source,
        "role": role,
        "tolerance": float(tolerance),
        "known_gap": str(raw.get("known_gap") or ""),
        "note": str(raw.get("note") or ""),
    }
    if sweep:
        column = _need(raw, "column", str, where)
        if not column.startswith("sim_"):
            raise ValidationError(f"{where}: column: a simulated result column (sim_...); got {column!r}")
        return Row(column=column, where=dict(_need(raw, "where", Mapping, where)), **common)
    quantile = _need(raw, "quantile", str, where)
    if quantile not in QUANTILES:
        raise ValidationError(f"{where}: quantile: must be one of {', '.join(QUANTILES)}; got {quantile!r}")
    verb, resource, scope = (None if raw.get(k) is None else str(raw[k]) for k in ("verb", "resource", "scope"))
    return Row(
        sli=_need(raw, "sli", str, where),
        metric=_need(raw, "metric", str, where),
        quantile=quantile,
        verb=verb,
        resource=resource,
        scope=scope,
        **common,
    )


FORMS = ("preset", "builtin", "sweep")


def _form(doc: Mapping, origin: str) -> None:
    """Exactly one way to run the experiment, and a known built-in or sweep."""
    given = [f for f in FORMS if doc.get(f) is not None]
    if len(given) != 1:
        raise ValidationError(
            f"{origin}: give exactly one of preset (a data/presets name), builtin (a built-in scenario) or sweep"
        )
    if given == ["preset"]:
        from kbench.scenarios.presets import preset_names

        if doc["preset"] not in preset_names():
            raise ValidationError(
                f"{origin}: preset: must be one of {', '.join(preset_names())}; got {doc['preset']!r}"
            )
    if given == ["builtin"]:
        from kbench.scenarios.library import SCENARIOS

        if not isinstance(doc["builtin"], Mapping) or doc["builtin"].get("scenario") not in SCENARIOS:
            raise ValidationError(f"{origin}: builtin.scenario: must be one of {', '.join(SCENARIOS)}")
    if given == ["sweep"]:
        from kbench.sweep.registry import REGISTRY

        names = [n for n in REGISTRY if n != "validation"]
        if not isinstance(doc["sweep"], Mapping) or doc["sweep"].get("name") not in names:
            raise ValidationError(f"{origin}: sweep.name: must be one of {', '.join(names)}")


CITE_FIELDS = ("url", "path", "repository")


def _sources(sources: Mapping, origin: str) -> Mapping:
    """Every source a mapping that says where it is (a url, or a repository's path)."""
    for key, source in sources.items():
        if not isinstance(source, Mapping) or not any(source.get(f) for f in CITE_FIELDS):
            raise ValidationError(
                f"{origin}: sources.{key}: expected a mapping with one of {', '.join(CITE_FIELDS)} (and a note quoting "
                f"the figure); got {source!r}"
            )
    return sources


def _qualitative(raw: Any, sources: Mapping, origin: str) -> tuple[Mapping[str, Any], ...]:
    """The findings to reproduce: each a ``claim`` and the ``source`` (a key of ``sources``) that reports it."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError(f"{origin}: qualitative: expected a list of {{claim, source}}; got {raw!r}")
    for i, claim in enumerate(raw):
        where = f"{origin}: qualitative[{i}]"
        if not isinstance(claim, Mapping) or set(claim) != {"claim", "source"}:
            raise ValidationError(f"{where}: expected a mapping with exactly claim and source; got {claim!r}")
        _need(claim, "claim", str, where)
        if claim["source"] not in sources:
            raise ValidationError(
                f"{where}: source: {claim['source']!r} is not in the file's sources ({', '.join(sources)})"
            )
    return tuple(raw)


def from_dict(doc: Any, origin: str) -> Experiment:
    """An experiment from its parsed file; errors name ``origin`` and the field."""
    if not isinstance(doc, Mapping):
        raise ValidationError(f"{origin}: expected a mapping (experiment, preset, rows, ...)")
    allowed = ("experiment", "description", *FORMS, "quick", "sources", "rows", "qualitative")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise ValidationError(f"{origin}: {unknown[0]}: unknown field; allowed: {', '.join(allowed)}")
    name = _need(doc, "experiment", str, origin)
    _form(doc, origin)
    sources = _sources(_need(doc, "sources", Mapping, origin), origin)
    rows = _need(doc, "rows", list, origin)
    if not rows:
        raise ValidationError(f"{origin}: rows: at least one published figure")
    return Experiment(
        name=name,
        description=str(doc.get("description") or ""),
        quick=_need(doc, "quick", bool, origin),
        rows=tuple(_row(r, f"{origin}: rows[{i}]", sources, doc.get("sweep") is not None) for i, r in enumerate(rows)),
        sources=sources,
        preset=doc.get("preset"),
        builtin=doc.get("builtin"),
        sweep=doc.get("sweep"),
        qualitative=_qualitative(doc.get("qualitative"), sources, origin),
        origin=origin,
    )


def experiments(directory: str | os.PathLike | None = None) -> dict[str, Experiment]:
    """Every experiment file in ``directory`` (default :func:`validation_dir`), by experiment name."""
    out: dict[str, Experiment] = {}
    for path in sorted(Path(directory or validation_dir()).glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValidationError(f"{path}: not valid YAML: {err}") from None
        exp = from_dict(doc, str(path))
        if exp.name in out:
            raise ValidationError(f"{path}: experiment: {exp.name!r} is also in {out[exp.name].origin}")
        out[exp.name] = exp
    return out


def measure(slis: pd.DataFrame, row: Row) -> float:
    """kbench's figure for ``row`` from a run's SLI table: the matching rows' quantile (the worst when several
    requests match, as ClusterLoader2's APIResponsiveness reports the worst call); NaN when nothing matches."""
    match = (slis["sli"] == row.sli) & (slis["metric"] == row.metric)
    for label in ("verb", "resource", "scope"):
        wanted = getattr(row, label)
        if wanted is not None:
            match &= slis[label] == wanted
    assert row.quantile is not None  # a scenario's row
    values = slis.loc[match, row.quantile].astype(float)
    return float(values.max()) if len(values) else math.nan


def measured(slis: pd.DataFrame, experiment: Experiment) -> dict[str, float]:
    """Every row's figure, as ``sim_[<row key>]`` columns."""
    assert set(COLUMNS) <= set(slis.columns)
    return {row.column_name: measure(slis, row) for row in experiment.rows}


def compare(results: pd.DataFrame, known: Mapping[str, Experiment]) -> pd.DataFrame:
    """The validation table: one line per published figure of every experiment in ``results`` (the validation
    sweep's rows; with several seeds, kbench's figure is the mean over them)."""
    lines = []
    for name, runs in results.groupby("experiment", sort=False):
        exp = known[str(name)]
        for row in exp.rows:
            column = row.column_name
            value = float(runs[column].mean(skipna=False)) if column in runs else math.nan  # a failed seed: none
            ratio = value / row.published
            lines.append(
                {
                    "experiment": exp.name,
                    "metric": row.key,
                    "unit": row.unit,
                    "published": row.published,
                    "kbench": value,
                    "ratio": ratio,
                    "tolerance": row.tolerance,
                    "within": bool(abs(ratio - 1) <= row.tolerance),
                    "role": row.role,
                    "source": _cite(exp.sources.get(row.source, {}), row.source),
                    "known_gap": row.known_gap,
                    "panel": row.sli or f"{(exp.sweep or {}).get('name')} sweep",
                }
            )
    return pd.DataFrame(lines, columns=[*TABLE_COLUMNS, "panel"])


def _cite(source: Mapping, key: str) -> str:
    """Where the source is: its url, else its path, else its repository; the key when it gives none."""
    for field_name in CITE_FIELDS:
        if source.get(field_name):
            return str(source[field_name])
    return key


def figure(table: pd.DataFrame, path: Path) -> Path:
    """kbench against published, one panel per SLI (or sweep), log-log with the y = x line and its tolerance band;
    a colour per experiment, fitted rows hollow squares, out-of-sample rows filled circles."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from kbench import plot

    panels = sorted(set(table["panel"]))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        part = table[table["panel"] == panel]
        both = pd.concat([part["published"], part["kbench"]]).dropna()
        low, high = (both.min() / 2, both.max() * 2) if len(both) else (0.1, 10.0)
        tol = float(part["tolerance"].max())
        ax.plot([low, high], [low, high], color="black", lw=1, label="kbench = published")
        ax.fill_between(
            [low, high],
            [low * (1 - tol), high * (1 - tol)],
            [low * (1 + tol), high * (1 + tol)],
            color="grey",
            alpha=0.2,
            label=f"within {tol:.0%}",
        )
        for i, (name, runs) in enumerate(part.groupby("experiment", sort=False)):
            colour = f"C{i % 10}"
            for fitted in (False, True):
                sub = runs[runs["role"].ne(OUT_OF_SAMPLE) == fitted]
                if len(sub):
                    ax.scatter(
                        sub["published"],
                        sub["kbench"],
                        marker="s" if fitted else "o",
                        facecolors="none" if fitted else colour,
                        edgecolors=colour,
                        label=f"{name}{' (fitted)' if fitted else ''}",
                    )
        unit = ", ".join(sorted(set(part["unit"])))
        ax.set(title=panel, xlabel=f"published ({unit})", ylabel=f"kbench ({unit})", xlim=(low, high), ylim=(low, high))
        plot.style(ax, logx=True, logy=True)
        ax.legend(fontsize="small")
    fig.suptitle("kbench beside published measurements")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(table: pd.DataFrame, known: Mapping[str, Experiment]) -> str:
    """The validation report (Markdown): the table, then each experiment's description, sources and
    qualitative findings."""
    shown = table.assign(
        published=table["published"].map("{:.4g}".format),
        kbench=table["kbench"].map("{:.4g}".format),
        ratio=table["ratio"].map("{:.2f}".format),
        tolerance=table["tolerance"].map("{:.0%}".format),
        within=table["within"].map({True: "yes", False: "NO"}),
    )
    header = "| " + " | ".join(TABLE_COLUMNS) + " |\n|" + "---|" * len(TABLE_COLUMNS) + "\n"
    lines = "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in shown[TABLE_COLUMNS].itertuples(False))
    oos = table[table["role"] == OUT_OF_SAMPLE]
    out = [
        "# kbench validation\n",
        f"{int(oos['within'].sum())} of {len(oos)} out-of-sample figures within tolerance; "
        f"{int(table['within'].sum())} of {len(table)} in all.\n",
        header + lines,
    ]
    for name in dict.fromkeys(table["experiment"]):
        exp = known[name]
        out.append(f"\n## {exp.name}\n\n{exp.description.strip()}\n\nSources:\n")
        out += [f"- `{key}`: {_cite(src, key)}\n" for key, src in exp.sources.items()]
        for claim in exp.qualitative:
            out.append(f"- Finding to reproduce: {claim.get('claim')} ({claim.get('source')})\n")
    return "".join(out)
