"""Fitting circuits to devices, and the translations adapters share.

Import the module you need; this package imports nothing itself, so ``checks`` stays free of
vendor SDKs and the Qiskit modules load only for adapters that use them:

- :mod:`~hal_workflow.compilation.checks`: shots, width and parameter-binding checks.
- :mod:`~hal_workflow.compilation.qiskit_bridge`: circuits to and from Qiskit, transpilation,
  a Qiskit ``Target`` as Capabilities and a calibration snapshot (``qiskit`` needed).
- :mod:`~hal_workflow.compilation.qiskit_circuit`: the lowered IR as a ``QuantumCircuit``.
- :mod:`~hal_workflow.compilation.braket_program`: standard gates in Braket's OpenQASM dialect
  and counts rebuilt from Braket's per-qubit measurements.
"""
