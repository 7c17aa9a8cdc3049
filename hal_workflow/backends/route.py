"""A backend that chooses among other backends: routing, failover and budgets.

Spec::

    {"name": "route",
     "candidates": [{"name": "iqm", "url": "..."}, {"name": "ibm", "backend": "fake_manila"},
                    "sim"],
     "policy": "best-fidelity",          # first-fit | shortest-wait | best-fidelity | cheapest
                                         # | weighted (with "weights")
     "weights": {"fidelity": 1.0, "wait": 0.5, "cost": 0.5},   # weighted only
     "prices": {"ibm:fake_manila": {"per_task": 0.3, "per_shot": 0.00035}},  # else route.prices
     "budget": {"id": "thesis-runs", "max_cost": 50.0, "max_shots": 10**6, "max_tasks": 500},
     "failover": true,                   # false pins the chosen candidate
     "seed": 7}                          # passed to candidates whose submit takes a seed

Every candidate is built through the registry from its own spec, so the router is a backend
like any other: it works under ``hal.run``, sweeps, Dask, Parsl and SLURM dispatch, and the
route spec plus a job id reattaches from any process (the id encodes which candidate holds
the job: ``route:<index>:<spec hash>:<candidate's job id>``).

Routing, once per ``submit`` and once per batch or sweep (all elements on one backend):

1. each candidate is asked, concurrently, for its availability and to validate the circuits;
   one that is offline, in maintenance, cannot be built, or cannot run the circuit (qubits,
   gates, connectivity after transpilation, shots) is *excluded* with its reason;
2. the rest are ranked by the policy (see :data:`POLICIES`); ties keep the candidates' order;
3. with a budget, the job's estimate is reserved in the :class:`~.budgets.BudgetStore` before
   anything is submitted (refused: :class:`~.budgets.BudgetExceededError`);
4. the best candidate gets the job. If it is unavailable, or fails with a transient error
   that persisted past the adapter's retry policy, the reservation is refunded and the next
   candidate is tried, once each (unless ``"failover": false``). A permanent error (a circuit
   the candidate rejects, a failed submission) is raised as it is.

If no candidate remains, ``ValidationError`` lists every candidate's reasons (or
``BackendUnavailableError`` when all were merely unavailable). Results name the candidate
that ran the job (``ExecutionResult.backend``) and carry the decision in
``metadata["routing"]``: policy, every candidate with its score or the reason it was
excluded or failed, and the calibration snapshots used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hal_workflow.backends.budgets import Budget, BudgetExceededError, BudgetStore, Spend
from hal_workflow.backends.options import check_options
from hal_workflow.backends.registry import get_backend, normalize_spec
from hal_workflow.compilation.checks import shots_issues
from hal_workflow.contract.backend import Backend, redact_spec
from hal_workflow.contract.errors import (
    BackendUnavailableError,
    CircuitError,
    ConfigurationError,
    HalError,
    HalTimeoutError,
    JobNotFoundError,
    ValidationError,
)
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    CalibrationSnapshot,
    Capabilities,
    ExecutionResult,
    JobId,
    JobStatus,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

__all__ = [
    "POLICIES",
    "BudgetExceededError",
    "RouteBackend",
    "estimated_success",
    "is_transient",
]

POLICIES = ("first-fit", "shortest-wait", "best-fidelity", "cheapest", "weighted")
"""``first-fit``: the first candidate (in spec order) that is available and validates.
``shortest-wait``: the smallest expected wait (``estimated_wait_s``, else queue depth times
``route.seconds-per-queued-job``, else ``route.unknown-wait``). ``best-fidelity``: the highest
estimated success probability (:func:`estimated_success`; noiseless simulators 1, hardware
without calibration data last). ``cheapest``: the lowest price of the job (``per_task`` per
task plus ``per_shot`` per shot; simulators without a price are free, other unpriced
candidates last). ``weighted``: the highest ``sum(weight * normalised term)`` with the terms
``fidelity`` (success probability), ``wait`` (``1 - wait / longest wait``) and ``cost``
(``1 - cost / highest cost``); an unknown term counts 0."""

OPTIONS = frozenset({"name", "candidates", "policy", "weights", "prices", "budget", "failover",
                     "seed"})
_WEIGHT_KEYS = ("fidelity", "wait", "cost")
_RECORDS_KEPT = 4096  # routing records kept per process for results read here
_QISKIT_ALIASES = {"prx": "r"}  # native gate names Qiskit spells differently


def is_transient(exc: BaseException) -> bool:
    """Whether a failed submission is worth giving to another candidate.

    Yes for an error that is ``retryable`` (contract 1.1: unavailable, rate limited) and has
    already been retried by the adapter's retry policy; no for a permanent error, and no for a
    timeout, after which the job may exist on the first candidate all the same.
    """
    return (isinstance(exc, HalError) and exc.retryable
            and not isinstance(exc, HalTimeoutError))


def _spec_hash(spec: Mapping[str, Any]) -> str:
    """A short fingerprint of a candidate spec for job ids (credentials masked first)."""
    text = json.dumps(redact_spec(spec), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass
class _Candidate:
    """One entry of ``candidates``: its spec, and its backend once built."""

    index: int
    spec: dict[str, Any]
    key: str
    backend: Backend | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        return self.backend.name if self.backend is not None else str(self.spec["name"])


@dataclass
class _Assessment:
    """What routing learnt about one candidate for one job."""

    candidate: _Candidate
    label: str
    excluded: str | None = None
    code: ValidationCode | None = None
    unavailable: bool = False
    availability: BackendAvailability | None = None
    wait_s: float | None = None
    wait_basis: str | None = None
    fidelity: float | None = None
    cost: float | None = None
    calibration: CalibrationSnapshot | None = None
    score: float | None = None
    outcome: str = "ranked"
    reason: str | None = None

    def record(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"candidate": self.label, "index": self.candidate.index,
                                 "spec": redact_spec(self.candidate.spec), "outcome": self.outcome}
        if self.excluded is not None or self.reason is not None:
            entry["reason"] = self.reason or self.excluded
        if self.availability is not None:
            entry["availability"] = self.availability.status.value
            entry["queue_depth"] = self.availability.queue_depth
        for name in ("score", "wait_s", "wait_basis", "fidelity", "cost"):
            value = getattr(self, name)
            if value is not None:
                entry["estimated_success" if name == "fidelity" else name] = value
        if self.calibration is not None:
            entry["calibration"] = {"calibration_id": self.calibration.calibration_id,
                                    "timestamp": self.calibration.timestamp}
        return entry


class RouteBackend(Backend):
    """Chooses a candidate backend per job or batch (see the module docstring for the spec)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        from hal_workflow import config

        check_options(spec, OPTIONS, "route")
        raw = spec.get("candidates")
        if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or not raw:
            raise ConfigurationError(
                "route: 'candidates' must be a non-empty list of backend specs")
        most = int(config.get("route.max-candidates"))
        if len(raw) > most:
            raise ConfigurationError(
                f"route: {len(raw)} candidates, more than route.max-candidates ({most})")
        self._candidates: list[_Candidate] = []
        for index, candidate in enumerate(raw):
            normalised = normalize_spec(candidate)
            if normalised["name"] == "route":
                raise ConfigurationError(f"route: candidate {index} is itself a route")
            self._candidates.append(_Candidate(index, normalised, _spec_hash(normalised)))
        self._policy, self._weights = _policy(spec.get("policy", "first-fit"), spec.get("weights"))
        prices = spec.get("prices")
        self._prices = _prices(config.get("route.prices", None) or {}, "route.prices")
        self._prices.update(_prices(prices or {}, "prices"))
        self._budget = Budget.from_spec(spec["budget"]) if spec.get("budget") is not None else None
        self._failover = spec.get("failover", True)
        if not isinstance(self._failover, bool):
            raise ConfigurationError(f"route: 'failover' must be true or false, not "
                                     f"{self._failover!r}")
        self._seed = spec.get("seed")
        if self._seed is not None and (isinstance(self._seed, bool)
                                       or not isinstance(self._seed, int)):
            raise ConfigurationError(f"route: 'seed' must be an integer, not {self._seed!r}")
        self._store = BudgetStore() if self._budget is not None else None
        self._records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._records_lock = threading.Lock()
        super().__init__(spec)

    # -- candidates ------------------------------------------------------------------------
    def _build(self, candidate: _Candidate) -> Backend | None:
        """The candidate's backend, built on first use; None (reason kept) when it cannot be.

        A bad spec (``ConfigurationError``) is the user's mistake and is raised; anything else
        (a server that does not answer) only excludes the candidate until it comes back.
        """
        with candidate.lock:
            if candidate.backend is None:
                try:
                    candidate.backend = get_backend(candidate.spec)
                    candidate.error = None
                except ConfigurationError:
                    raise
                except HalError as exc:
                    candidate.error = f"cannot be built: {exc}"
            return candidate.backend

    async def _backend(self, candidate: _Candidate) -> Backend | None:
        if candidate.backend is not None:
            return candidate.backend
        return await asyncio.to_thread(self._build, candidate)

    def _discover_capabilities(self) -> Capabilities:
        built = [b for b in (self._build(c) for c in self._candidates) if b is not None]
        if not built:
            reasons = "; ".join(f"{c.spec['name']}: {c.error}" for c in self._candidates)
            raise BackendUnavailableError(f"route: no candidate can be built ({reasons})")
        caps = [b.capabilities() for b in built]
        return Capabilities(
            name="route",
            num_qubits=max(c.num_qubits for c in caps),
            gate_set=frozenset().union(*(c.gate_set for c in caps)),
            coupling_map=None,
            max_shots=max(c.max_shots for c in caps),
            simulator=all(c.simulator for c in caps),
            supports_measurement=any(c.supports_measurement for c in caps),
            supports_reset=any(c.supports_reset for c in caps),
            supports_mid_circuit_measurement=any(c.supports_mid_circuit_measurement for c in caps),
            extensions=frozenset({"batch"}),
            formats=frozenset().union(*(c.formats for c in caps)),
        )

    def _extensions(self) -> Mapping[str, object]:
        return {"batch": _RouteBatch(self)}

    @property
    def candidates(self) -> list[dict[str, Any]]:
        """The candidates' specs, in order."""
        return [dict(c.spec) for c in self._candidates]

    # -- contract: availability and validation ----------------------------------------------
    async def availability(self) -> BackendAvailability:
        """The best availability among the candidates (the router accepts work if one does)."""
        answers = await asyncio.gather(*(self._availability(c) for c in self._candidates))
        accepting = [a for a in answers if a.accepting_jobs]
        if not accepting:
            detail = "; ".join(f"{c.label}: {a.status.value}" for c, a in
                               zip(self._candidates, answers, strict=True))
            return BackendAvailability(AvailabilityStatus.OFFLINE, message=f"no candidate accepts"
                                       f" jobs ({detail})")
        best = min(accepting, key=lambda a: self._wait(a)[0])
        return dataclasses.replace(best, message=f"{len(accepting)} of {len(answers)} candidates "
                                   "accept jobs")

    async def _availability(self, candidate: _Candidate) -> BackendAvailability:
        backend = await self._backend(candidate)
        if backend is None:
            return BackendAvailability(AvailabilityStatus.OFFLINE, message=candidate.error)
        try:
            return await backend.availability()
        except HalError as exc:
            return BackendAvailability(AvailabilityStatus.OFFLINE, message=str(exc))

    async def validate(self, circuit: Circuit | str, shots: int | None = None) -> ValidationResult:
        """Valid when at least one candidate can run the circuit; else every candidate's issues."""
        async def issues_of(candidate: _Candidate) -> list[ValidationIssue] | None:
            try:
                return await self._issues(candidate, [circuit], shots)
            except CircuitError:
                raise
            except HalError as exc:  # could not ask: says nothing about the circuit
                candidate.error = f"cannot validate: {exc}"
                return None

        issues: list[ValidationIssue] = []
        for candidate, found in zip(self._candidates, await asyncio.gather(
                *(issues_of(c) for c in self._candidates)), strict=True):
            if found is None:
                continue  # not built or not answering: says nothing about the circuit
            if not found:
                return ValidationResult()
            issues += [ValidationIssue(i.code, f"{candidate.label}: {i.message}") for i in found]
        if not issues:  # no candidate could be asked
            issues = [ValidationIssue(ValidationCode.RESOURCE_LIMIT,
                                      f"{c.label}: {c.error}") for c in self._candidates]
        return ValidationResult(tuple(issues))

    async def _issues(self, candidate: _Candidate, circuits: Sequence[Circuit | str],
                      shots: int | None) -> list[ValidationIssue] | None:
        backend = await self._backend(candidate)
        if backend is None:
            return None
        issues: list[ValidationIssue] = []
        for circuit in _distinct(circuits):
            issues += (await backend.validate(circuit, shots)).issues
        return issues

    # -- routing ---------------------------------------------------------------------------
    def _wait(self, availability: BackendAvailability) -> tuple[float, str]:
        from hal_workflow import config

        if availability.estimated_wait_s is not None:
            return float(availability.estimated_wait_s), "estimated_wait_s"
        if availability.queue_depth is not None:
            per_job = float(config.get("route.seconds-per-queued-job"))
            return availability.queue_depth * per_job, "queue_depth * route.seconds-per-queued-job"
        return float(config.get("route.unknown-wait")), "route.unknown-wait"

    def _cost(self, candidate: _Candidate, label: str, shots: int, tasks: int) -> float | None:
        price = self._prices.get(label) or self._prices.get(str(candidate.spec["name"]))
        if price is None:
            backend = candidate.backend
            return 0.0 if backend is not None and backend.capabilities().simulator else None
        return tasks * price["per_task"] + tasks * shots * price["per_shot"]

    async def _assess(self, candidate: _Candidate, circuits: Sequence[Circuit | str],
                      shots: int) -> _Assessment:
        backend = await self._backend(candidate)
        verdict = _Assessment(candidate, candidate.label)
        if backend is None:
            verdict.excluded, verdict.unavailable = candidate.error, True
            return verdict
        verdict.availability = availability = await self._availability(candidate)
        if not availability.accepting_jobs:
            verdict.unavailable = True
            verdict.excluded = f"{availability.status.value}: {availability.message or ''}".strip()
            return verdict
        try:
            issues = await self._issues(candidate, circuits, shots) or []
        except CircuitError:
            raise  # the text itself is wrong: no candidate can help
        except HalError as exc:  # the candidate could not even check it
            verdict.unavailable = True
            verdict.excluded = f"cannot validate: {type(exc).__name__}: {exc}"
            return verdict
        if issues:
            verdict.code = issues[0].code
            verdict.excluded = "cannot run it: " + "; ".join(i.message for i in issues)
            return verdict
        verdict.wait_s, verdict.wait_basis = self._wait(availability)
        verdict.cost = self._cost(candidate, verdict.label, shots, len(circuits))
        if self._policy == "best-fidelity" or self._weights.get("fidelity"):
            verdict.fidelity, verdict.calibration = await _fidelity(backend, circuits)
        return verdict

    async def _assess_in_time(self, candidate: _Candidate, circuits: Sequence[Circuit | str],
                              shots: int) -> _Assessment:
        """:meth:`_assess`, excluding a candidate that does not answer within
        ``route.assess-timeout`` seconds (a slow service must not hold up the others)."""
        from hal_workflow import config

        limit = float(config.get("route.assess-timeout"))
        try:
            return await asyncio.wait_for(self._assess(candidate, circuits, shots), limit)
        except asyncio.TimeoutError:
            return _Assessment(candidate, candidate.label, unavailable=True,
                               excluded=f"did not answer within {limit:g} s "
                                        "(route.assess-timeout)")

    def _rank(self, eligible: list[_Assessment]) -> list[_Assessment]:
        """``eligible`` best first, each with its ``score`` (higher is better)."""
        policy = self._policy
        for v in eligible:
            if policy == "first-fit":
                v.score = -float(v.candidate.index)
            elif policy == "shortest-wait":
                v.score = -(v.wait_s if v.wait_s is not None else math.inf)
            elif policy == "best-fidelity":
                v.score = v.fidelity if v.fidelity is not None else -math.inf
            elif policy == "cheapest":
                v.score = -v.cost if v.cost is not None else -math.inf
        if policy == "weighted":
            longest = max((v.wait_s or 0.0 for v in eligible), default=0.0)
            highest = max((v.cost or 0.0 for v in eligible), default=0.0)
            for v in eligible:
                terms = {
                    "fidelity": v.fidelity or 0.0,
                    "wait": 0.0 if v.wait_s is None else (
                        1.0 if longest == 0 else 1.0 - v.wait_s / longest),
                    "cost": 0.0 if v.cost is None else (
                        1.0 if highest == 0 else 1.0 - v.cost / highest),
                }
                v.score = sum(self._weights.get(k, 0.0) * terms[k] for k in _WEIGHT_KEYS)
        # sorted() is stable: equal scores keep the candidates' order
        return sorted(eligible, key=lambda v: -(v.score if v.score is not None else -math.inf))

    async def _route(self, circuits: Sequence[Circuit | str], shots: int,
                     submit: Any) -> tuple[_Candidate, list[str], dict[str, Any]]:
        """Choose a candidate and submit there with ``submit(backend)``; failover on transient
        errors. Returns the candidate, the candidate's job ids and the routing record."""
        verdicts = list(await asyncio.gather(
            *(self._assess_in_time(c, circuits, shots) for c in self._candidates)))
        for v in verdicts:
            if v.excluded is not None:
                v.outcome = "excluded"
        tasks = len(circuits)
        spent = (await asyncio.to_thread(self._store.spent, self._budget.id)
                 if self._store and self._budget else None)
        budget_refusals: list[BudgetExceededError] = []
        eligible = []
        for v in verdicts:
            if v.excluded is not None:
                continue
            if self._budget is not None and spent is not None:
                if v.cost is None and self._budget.max_cost is not None:
                    v.outcome, v.reason = "excluded", (
                        f"no price for {v.label} and budget {self._budget.id!r} has max_cost")
                    continue
                try:
                    self._budget.check(spent, Spend(v.cost or 0.0, shots * tasks, tasks))
                except BudgetExceededError as exc:
                    budget_refusals.append(exc)
                    v.outcome, v.reason = "excluded", str(exc)
                    continue
            eligible.append(v)
        if not eligible:
            self._raise_none_left(verdicts, budget_refusals)
        ranked = self._rank(eligible)
        failures: list[dict[str, str]] = []
        totals: Spend | None = None
        for position, v in enumerate(ranked):
            if position > 0 and not self._failover:
                v.outcome = "not tried"
                v.reason = "failover is off (the spec pins the first choice)"
                continue
            amount = Spend(v.cost or 0.0, shots * tasks, tasks)
            if self._store is not None and self._budget is not None:
                try:
                    totals = await asyncio.to_thread(self._store.reserve, self._budget, amount)
                except BudgetExceededError as exc:  # another process spent it meanwhile
                    v.outcome, v.reason = "excluded", str(exc)
                    budget_refusals.append(exc)
                    continue
            assert v.candidate.backend is not None
            try:
                ids = await submit(v.candidate.backend)
            except Exception as exc:  # nothing was submitted: give the reservation back
                if self._store is not None and self._budget is not None:
                    await asyncio.to_thread(self._store.refund, self._budget, amount)
                if not is_transient(exc):
                    raise
                v.outcome, v.reason = "failed", f"{type(exc).__name__}: {exc}"
                failures.append({"candidate": v.label, "reason": v.reason})
                continue
            v.outcome = "chosen"
            record = self._record(v, verdicts, failures, totals)
            return v.candidate, [str(i) for i in ids], record
        if budget_refusals and not failures:
            raise budget_refusals[0]
        detail = "; ".join(f"{f['candidate']}: {f['reason']}" for f in failures)
        raise BackendUnavailableError(f"route: every candidate failed ({detail})")

    def _record(self, chosen: _Assessment, verdicts: list[_Assessment],
                failures: list[dict[str, str]], totals: Spend | None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "policy": self._policy,
            "chosen": chosen.label,
            "chosen_index": chosen.candidate.index,
            "candidates": [v.record() for v in verdicts],
            "failover": failures,
            "routed_at": time.time(),
        }
        if self._policy == "weighted":
            record["weights"] = dict(self._weights)
        if chosen.calibration is not None:
            record["calibration"] = chosen.calibration.to_dict()
        if self._budget is not None and totals is not None:  # this job included
            record["budget"] = {"id": self._budget.id, "spent_cost": totals.cost,
                                "spent_shots": totals.shots, "spent_tasks": totals.tasks}
        return record

    def _raise_none_left(self, verdicts: list[_Assessment],
                         refusals: list[BudgetExceededError]) -> None:
        if refusals:
            raise refusals[0]
        if all(v.unavailable for v in verdicts):
            detail = "; ".join(f"{v.label}: {v.excluded}" for v in verdicts)
            raise BackendUnavailableError(f"route: no candidate is available ({detail})")
        issues = [ValidationIssue(v.code or ValidationCode.RESOURCE_LIMIT,
                                  f"{v.label}: {v.reason or v.excluded}") for v in verdicts]
        raise ValidationError(issues, "route")

    def _check_shots(self, shots: Any) -> None:
        """Shots that are no positive integer (within the largest candidate's limit) are a
        ``ValidationError`` before anything is routed, priced or reserved."""
        issues = shots_issues(shots, self._capabilities.max_shots, required=True)
        if issues:
            raise ValidationError(issues, "route")

    # -- job ids and records -----------------------------------------------------------------
    def _job_id(self, candidate: _Candidate, inner: str, record: dict[str, Any]) -> JobId:
        job_id = f"route:{candidate.index}:{candidate.key}:{inner}"
        with self._records_lock:
            self._records[job_id] = record
            while len(self._records) > _RECORDS_KEPT:
                self._records.popitem(last=False)
        return JobId(job_id)

    def _parse(self, job_id: str) -> tuple[_Candidate, str]:
        parts = str(job_id).split(":", 3)
        if len(parts) != 4 or parts[0] != "route" or not parts[1].isdigit():
            raise JobNotFoundError(str(job_id), f"route: {job_id!r} is not a routed job id")
        index = int(parts[1])
        if index >= len(self._candidates) or self._candidates[index].key != parts[2]:
            raise JobNotFoundError(
                str(job_id), f"route: job {job_id!r} was routed with other candidates than this "
                "spec's")
        return self._candidates[index], parts[3]

    async def _holder(self, job_id: str) -> tuple[Backend, str]:
        candidate, inner = self._parse(job_id)
        backend = await self._backend(candidate)
        if backend is None:
            raise BackendUnavailableError(f"route: {candidate.label} holds job {job_id} but "
                                          f"{candidate.error}")
        return backend, inner

    # -- contract: jobs ----------------------------------------------------------------------
    async def submit(self, circuit: Circuit | str, shots: int,
                     parameters: Mapping[str, float] | None = None, *,
                     seed: int | None = None) -> JobId:
        """Route ``circuit``, then submit it to the chosen candidate (see the module docs)."""
        self._check_shots(shots)
        seed = self._seed if seed is None else seed

        async def submit(backend: Backend) -> list[str]:
            if seed is not None and _takes_seed(backend.submit):
                return [await backend.submit(circuit, shots, parameters,  # type: ignore[call-arg]
                                             seed=seed)]
            return [await backend.submit(circuit, shots, parameters)]

        candidate, ids, record = await self._route([circuit], shots, submit)
        return self._job_id(candidate, ids[0], record)

    async def _submit_many(self, circuits: Sequence[Circuit | str], shots: int,
                           bindings: Sequence[Mapping[str, float]] | None,
                           seed: int | None) -> list[JobId]:
        """One routing decision for a whole batch or sweep; every element on one candidate."""
        self._check_shots(shots)
        seed = self._seed if seed is None else seed
        count = len(bindings) if bindings is not None else len(circuits)
        if count == 0:
            return []

        async def submit(backend: Backend) -> list[str]:
            batch = backend.extension("batch")
            if batch is not None:
                method = batch.submit_sweep if bindings is not None else batch.submit_batch
                first = circuits[0] if bindings is not None else list(circuits)
                args = (first, list(bindings), shots) if bindings is not None else (first, shots)
                if seed is not None and _takes_seed(method):
                    return list(await method(*args, seed=seed))
                return list(await method(*args))
            ids: list[str] = []
            try:
                for k in range(count):
                    circuit = circuits[0] if bindings is not None else circuits[k]
                    params = bindings[k] if bindings is not None else None
                    if seed is not None and _takes_seed(backend.submit):
                        ids.append(await backend.submit(circuit, shots, params,  # type: ignore[call-arg]
                                                        seed=seed + k))
                    else:
                        ids.append(await backend.submit(circuit, shots, params))
            except HalError:
                for job in ids:  # nothing half-submitted: the next candidate takes them all
                    try:
                        await backend.cancel(job)
                    except HalError:
                        pass
                raise
            return ids

        sized = [circuits[0]] * count if bindings is not None else list(circuits)
        candidate, ids, record = await self._route(sized, shots, submit)
        record = {**record, "batch_size": count}
        return [self._job_id(candidate, i, record) for i in ids]

    async def status(self, job_id: str) -> JobStatus:
        backend, inner = await self._holder(job_id)
        status = await backend.status(inner)
        return dataclasses.replace(status, job_id=str(job_id))

    async def result(self, job_id: str) -> ExecutionResult:
        backend, inner = await self._holder(job_id)
        result = await backend.result(inner)
        with self._records_lock:
            record = self._records.get(str(job_id))
        if record is None:  # reattached from another process: what the id says
            candidate, _ = self._parse(job_id)
            record = {"policy": self._policy, "chosen": result.backend,
                      "chosen_index": candidate.index, "reattached": True}
        metadata = {**result.metadata, "routing": record}
        return dataclasses.replace(result, job_id=str(job_id), metadata=metadata)

    async def cancel(self, job_id: str) -> None:
        """Cancel the job on whichever candidate holds it."""
        backend, inner = await self._holder(job_id)
        await backend.cancel(inner)

    async def aclose(self) -> None:
        for candidate in self._candidates:
            if candidate.backend is not None:
                await candidate.backend.aclose()


class _RouteBatch:
    """``batch``: a batch or sweep is routed once and runs entirely on the chosen candidate."""

    def __init__(self, backend: RouteBackend) -> None:
        self._backend = backend

    async def submit_batch(self, circuits: Sequence[Circuit | str], shots: int, *,
                           seed: int | None = None) -> list[JobId]:
        return await self._backend._submit_many(list(circuits), shots, None, seed)

    async def submit_sweep(self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]],
                           shots: int, *, seed: int | None = None) -> list[JobId]:
        return await self._backend._submit_many([circuit], shots, list(bindings), seed)


# -- helpers ------------------------------------------------------------------------------------
def _takes_seed(method: Any) -> bool:
    try:
        return "seed" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _distinct(circuits: Sequence[Circuit | str]) -> list[Circuit | str]:
    seen: set[int] = set()
    out = []
    for circuit in circuits:
        if id(circuit) not in seen:
            seen.add(id(circuit))
            out.append(circuit)
    return out


def _policy(value: Any, weights: Any) -> tuple[str, dict[str, float]]:
    if value not in POLICIES:
        raise ConfigurationError(f"route: unknown policy {value!r}; known: {', '.join(POLICIES)}")
    if value != "weighted":
        if weights is not None:
            raise ConfigurationError("route: 'weights' applies only to policy 'weighted'")
        return value, {}
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigurationError(
            f"route: policy 'weighted' needs 'weights', a mapping of {', '.join(_WEIGHT_KEYS)}")
    unknown = sorted(set(weights) - set(_WEIGHT_KEYS))
    if unknown:
        raise ConfigurationError(f"route: unknown weight(s) {unknown}; known: {_WEIGHT_KEYS}")
    clean = {}
    for key, raw in weights.items():
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(
                raw) or raw < 0:
            raise ConfigurationError(f"route: weight {key!r} must be a number >= 0, not {raw!r}")
        clean[str(key)] = float(raw)
    return value, clean


def _prices(table: Any, where: str) -> dict[str, dict[str, float]]:
    """``{NAME: {"per_task": x, "per_shot": y}}`` checked; a missing field is 0."""
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"route: {where} must be a mapping NAME -> price")
    out = {}
    for name, price in table.items():
        if not isinstance(price, Mapping) or set(price) - {"per_task", "per_shot"}:
            raise ConfigurationError(
                f"route: {where}[{name!r}] must be a mapping with per_task and/or per_shot")
        entry = {}
        for key in ("per_task", "per_shot"):
            raw = price.get(key, 0.0)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(
                    raw) or raw < 0:
                raise ConfigurationError(
                    f"route: {where}[{name!r}].{key} must be a number >= 0, not {raw!r}")
            entry[key] = float(raw)
        out[str(name)] = entry
    return out


async def _fidelity(backend: Backend, circuits: Sequence[Circuit | str]
                    ) -> tuple[float | None, CalibrationSnapshot | None]:
    """Mean estimated success probability of ``circuits`` on ``backend`` and the snapshot used.

    A noiseless simulator scores 1; a device without the calibration extension, None.
    """
    ext = backend.extension("calibration")
    caps = backend.capabilities()
    if ext is None:
        return (1.0 if caps.simulator else None), None
    try:
        snapshot = await ext.snapshot()
    except HalError:
        return None, None
    values = await asyncio.to_thread(
        lambda: [estimated_success(c, caps, snapshot) for c in _distinct(circuits)])
    return sum(values) / len(values), snapshot


def estimated_success(circuit: Circuit | str, capabilities: Capabilities,
                      snapshot: CalibrationSnapshot, seed: int = 0) -> float:
    """The estimated success probability of ``circuit`` on a device.

    The circuit is transpiled by Qiskit (optimisation level 1, ``seed``) to the device's basis
    (``native_gates``, else ``gate_set``) and ``coupling_map``; the estimate is the product of
    ``1 - error`` over every gate of the result (its error for those qubits in ``snapshot``;
    0 where the snapshot has none) and of ``1 - readout_error`` over every measurement.
    """
    from hal_workflow.compilation.qiskit_bridge import transpile_for

    basis = capabilities.native_gates or capabilities.gate_set
    transpiled = transpile_for(
        circuit, basis_gates=[_QISKIT_ALIASES.get(g, g) for g in sorted(basis)],
        coupling_map=capabilities.coupling_map, optimization_level=1, seed=seed)
    names = {v: k for k, v in _QISKIT_ALIASES.items()}
    gate_error = {(g.gate, tuple(g.qubits)): g.error or 0.0 for g in snapshot.gates}
    readout = {q.qubit: q.readout_error or 0.0 for q in snapshot.qubits}
    probability = 1.0
    for instruction in transpiled.data:
        name = instruction.operation.name
        qubits = tuple(transpiled.find_bit(q).index for q in instruction.qubits)
        if name == "measure":
            probability *= 1.0 - readout.get(qubits[0], 0.0)
        elif name not in ("barrier", "delay", "reset"):
            gate = names.get(name, name)
            error = gate_error.get((gate, qubits))
            if error is None and len(qubits) == 2:  # symmetric gates calibrated one way round
                error = gate_error.get((gate, qubits[::-1]))
            probability *= 1.0 - (error or 0.0)
    return probability
