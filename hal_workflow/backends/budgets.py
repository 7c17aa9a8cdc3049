"""Spending budgets shared by every process of a user: cost, shots and tasks per budget id.

A budget is part of a route spec (``"budget": {"id": "thesis-runs", "max_cost": 50.0}``). Before
the router submits anything it *reserves* the job's estimate in :class:`BudgetStore`; the
reservation either fits what is left of every limit and is recorded, or nothing is recorded
and :class:`BudgetExceededError` names the budget, what was spent and the estimate. A
submission that then fails is refunded, so a refused or failed job never counts.

Totals live in one SQLite file (``route.budget-path``, default ``{data-dir}/budgets.sqlite``).
Each reservation is a single ``BEGIN IMMEDIATE`` transaction, so several processes (Dask
workers, SLURM jobs on a filesystem with working locks) can share a budget without ever
overspending it together.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal_workflow.contract.errors import ConfigurationError, HalError

__all__ = ["Budget", "BudgetExceededError", "BudgetStore", "Spend", "default_budget_path"]

_LIMIT_KEYS = {"max_cost": "cost", "max_shots": "shots", "max_tasks": "tasks"}
_TIMEOUT_S = 60.0  # how long a writer waits for another one's transaction


class BudgetExceededError(HalError):
    """A job would take a budget past one of its limits; it was not submitted.

    ``budget`` is the budget id, ``limit`` the exceeded key (``max_cost``, ``max_shots`` or
    ``max_tasks``), ``spent`` the amount already recorded and ``estimate`` this job's.
    """

    def __init__(self, budget: str, limit: str, maximum: float, spent: float,
                 estimate: float) -> None:
        self.budget, self.limit = budget, limit
        self.maximum, self.spent, self.estimate = maximum, spent, estimate
        super().__init__(
            f"budget {budget!r}: {limit} is {_fmt(maximum)}, {_fmt(spent)} already spent, "
            f"this job needs {_fmt(estimate)} (only {_fmt(max(0.0, maximum - spent))} left); "
            "not submitted"
        )


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


@dataclass(frozen=True)
class Spend:
    """An amount: what a job costs (currency of the price table), its shots and its tasks."""

    cost: float = 0.0
    shots: int = 0
    tasks: int = 0


@dataclass(frozen=True)
class Budget:
    """Limits of one budget id; a limit left None is not enforced."""

    id: str
    max_cost: float | None = None
    max_shots: int | None = None
    max_tasks: int | None = None

    @classmethod
    def from_spec(cls, value: Any) -> Budget:
        """Read the ``budget`` value of a route spec; ``ConfigurationError`` for a bad one."""
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                "route: 'budget' must be a mapping with 'id' and limits, not "
                f"{type(value).__name__}"
            )
        unknown = sorted(set(value) - {"id", *_LIMIT_KEYS})
        if unknown:
            raise ConfigurationError(
                f"route: unknown budget key(s) {unknown}; known: id, {', '.join(_LIMIT_KEYS)}"
            )
        budget_id = value.get("id")
        if not isinstance(budget_id, str) or not budget_id.strip() or len(budget_id) > 200:
            raise ConfigurationError("route: budget 'id' must be a non-empty string (<= 200 chars)")
        limits: dict[str, Any] = {}
        for key in _LIMIT_KEYS:
            raw = value.get(key)
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(
                    raw) or raw < 0:
                raise ConfigurationError(
                    f"route: budget {budget_id!r}: {key} must be a number >= 0, not {raw!r}"
                )
            limits[key] = float(raw) if key == "max_cost" else int(raw)
        if not limits:
            raise ConfigurationError(
                f"route: budget {budget_id!r} sets none of {', '.join(_LIMIT_KEYS)}"
            )
        return cls(id=budget_id, **limits)

    def check(self, spent: Spend, estimate: Spend) -> None:
        """Raise :class:`BudgetExceededError` if ``spent + estimate`` passes a limit."""
        for key, field_name in _LIMIT_KEYS.items():
            maximum = getattr(self, key)
            if maximum is None:
                continue
            used, need = getattr(spent, field_name), getattr(estimate, field_name)
            if used + need > maximum + 1e-12:
                raise BudgetExceededError(self.id, key, maximum, used, need)


def default_budget_path() -> Path:
    """``route.budget-path`` from the configuration, else ``{data-dir}/budgets.sqlite``."""
    from hal_workflow import config

    configured = config.get("route.budget-path", None)
    if configured:
        return Path(str(configured)).expanduser()
    return config.data_dir() / "budgets.sqlite"


class BudgetStore:
    """Totals per budget id in one SQLite file, safe with concurrent writers."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_budget_path()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=_TIMEOUT_S, isolation_level=None)
            connection.execute(
                "CREATE TABLE IF NOT EXISTS spend (budget TEXT PRIMARY KEY, cost REAL NOT NULL,"
                " shots INTEGER NOT NULL, tasks INTEGER NOT NULL, updated REAL NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(
                f"route: cannot open the budget store {self.path} (route.budget-path): {exc}"
            ) from exc
        return connection

    @staticmethod
    def _row(connection: sqlite3.Connection, budget_id: str) -> Spend:
        row = connection.execute(
            "SELECT cost, shots, tasks FROM spend WHERE budget = ?", (budget_id,)
        ).fetchone()
        return Spend() if row is None else Spend(float(row[0]), int(row[1]), int(row[2]))

    def spent(self, budget_id: str) -> Spend:
        """What budget ``budget_id`` has recorded so far (zero for an unknown id)."""
        connection = self._connect()
        try:
            return self._row(connection, budget_id)
        finally:
            connection.close()

    def _apply(self, budget: Budget, amount: Spend, sign: int, check: bool) -> Spend:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                current = self._row(connection, budget.id)
                if check:
                    budget.check(current, amount)
                new = Spend(max(0.0, current.cost + sign * amount.cost),
                            max(0, current.shots + sign * amount.shots),
                            max(0, current.tasks + sign * amount.tasks))
                connection.execute(
                    "INSERT INTO spend (budget, cost, shots, tasks, updated) VALUES (?,?,?,?,?) "
                    "ON CONFLICT(budget) DO UPDATE SET cost=excluded.cost, shots=excluded.shots,"
                    " tasks=excluded.tasks, updated=excluded.updated",
                    (budget.id, new.cost, new.shots, new.tasks, time.time()),
                )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return new
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"route: budget store {self.path} (route.budget-path) failed: {exc}"
            ) from exc
        finally:
            connection.close()

    def reserve(self, budget: Budget, amount: Spend) -> Spend:
        """Record ``amount`` against ``budget`` if it fits every limit; return the new totals.

        Raises :class:`BudgetExceededError` (recording nothing) when it does not fit.
        """
        return self._apply(budget, amount, +1, check=True)

    def refund(self, budget: Budget, amount: Spend) -> Spend:
        """Take back a reservation whose submission failed."""
        return self._apply(budget, amount, -1, check=False)

    def reset(self, budget_id: str) -> None:
        """Forget everything spent against ``budget_id`` (a new period, say)."""
        connection = self._connect()
        try:
            connection.execute("DELETE FROM spend WHERE budget = ?", (budget_id,))
        finally:
            connection.close()
