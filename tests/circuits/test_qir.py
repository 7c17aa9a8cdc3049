"""QIR base profile: export parses with pyqir, round-trips, runs on DDSIM; bad input is refused."""

from __future__ import annotations

import builtins
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import qiskit.qasm3
from qiskit.quantum_info import Operator, Statevector

from hal_workflow.circuits import Circuit, library
from hal_workflow.contract.errors import CircuitError, ConfigurationError

pyqir = pytest.importorskip("pyqir")

H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'
GATES = H3 + """qubit[3] q;
bit[3] c;
h q; x q[0]; y q[1]; z q[2]; s q[0]; sdg q[1]; t q[2]; tdg q[0]; sx q[1];
rx(0.1) q[0]; ry(0.2) q[1]; rz(0.3) q[2]; p(0.4) q[0]; u1(0.5) q[1];
u2(0.6, 0.7) q[2]; u3(0.8, 0.9, 1.0) q[0]; U(1.1, 1.2, 1.3) q[1]; id q[2];
cx q[0], q[1]; cy q[1], q[2]; cz q[2], q[0]; ch q[0], q[2]; swap q[1], q[0];
cp(0.3) q[0], q[1]; crx(0.4) q[1], q[2]; cry(0.5) q[2], q[0]; crz(0.6) q[0], q[2];
cu(0.1, 0.2, 0.3, 0.4) q[1], q[2]; ccx q[0], q[1], q[2]; cswap q[2], q[0], q[1];
inv @ s q[0]; inv @ sx q[1]; inv @ u3(0.3, 0.2, 0.1) q[2]; inv @ cu(0.4, 0.3, 0.2, 0.1) q[0], q[1];
pow(3) @ t q[2]; pow(-2) @ rx(0.3) q[0]; ctrl @ rz(0.7) q[1], q[0]; ctrl(2) @ x q[0], q[1], q[2];
negctrl @ h q[2], q[1]; ctrl @ gphase(0.9) q[0]; ctrl @ U(0.1, 0.2, 0.3) q[2], q[0];
gphase(0.2);
barrier q;
c = measure q;
"""


def unitary(circuit: Circuit) -> Operator:
    reference = qiskit.qasm3.loads(circuit.qasm)
    reference.remove_final_measurements()
    return Operator(reference)


def test_export_parses_with_pyqir_as_a_base_profile_entry_point() -> None:
    ir = Circuit.from_qasm(GATES).to_qir()
    module = pyqir.Module.from_ir(pyqir.Context(), ir)
    assert module.verify() is None
    (entry,) = [f for f in module.functions if pyqir.is_entry_point(f)]
    assert pyqir.required_num_qubits(entry) == 3 and pyqir.required_num_results(entry) == 3
    assert "define i64 @main()" in ir and "ret i64 0" in ir
    assert '!"qir_major_version", i32 1' in ir and '"qir_profiles"="base_profile"' in ir
    assert ir.count("__quantum__rt__result_record_output(") == 3 + 1  # 3 calls + declaration


@pytest.mark.parametrize("text", [GATES, library.qft(3).qasm, library.random_layered(3, 3, 1).qasm])
def test_round_trip_keeps_the_unitary_and_the_measurements(text: str) -> None:
    original = Circuit.from_qasm(text)
    back = Circuit.from_qir(original.to_qir())
    assert (back.num_qubits, back.num_clbits) == (original.num_qubits, original.num_clbits)
    # QIR has no global phase; everything else must survive exactly
    assert unitary(back).equiv(unitary(original))
    measurements = [(op.qubit, op.clbit) for op in original.lowered.operations
                    if type(op).__name__ == "MeasureOp"]
    assert [(op.qubit, op.clbit) for op in back.lowered.operations
            if type(op).__name__ == "MeasureOp"] == measurements


def test_bitcode_round_trip() -> None:
    bell = library.bell()
    module = pyqir.Module.from_ir(pyqir.Context(), bell.to_qir())
    assert unitary(Circuit.from_qir(module.bitcode)).equiv(unitary(bell))


def test_imports_qir_built_with_pyqir() -> None:
    module = pyqir.SimpleModule("bell", num_qubits=2, num_results=2)
    qis = pyqir.BasicQisBuilder(module.builder)
    qis.h(module.qubits[0])
    qis.cx(module.qubits[0], module.qubits[1])
    qis.rz(0.25, module.qubits[1])
    qis.mz(module.qubits[0], module.results[1])
    qis.mz(module.qubits[1], module.results[0])
    circuit = Circuit.from_qir(module.ir())
    assert circuit.gate_counts == {"h": 1, "cx": 1, "rz": 1, "measure": 2}
    assert [(op.qubit, op.clbit) for op in circuit.lowered.operations[3:]] == [(0, 1), (1, 0)]


@pytest.mark.parametrize("text, message", [
    (H3 + "qubit q;\nbit c;\nc = measure q;\nx q;\n", "after it was measured"),
    (H3 + "qubit q;\nbit c;\nh q;\nc = measure q;\nif (c) x q;\n", "classically controlled"),
    (H3 + "qubit q;\nreset q;\n", "reset"),
    (H3 + "input float t;\nqubit q;\nrx(t) q;\n", "unbound parameters"),
    (H3 + "qubit q;\npow(0.5) @ x q;\n", "pow(0.5)"),
    (H3 + "qubit[2] q;\nctrl @ s q[0], q[1];\n", "controlled 's'"),
])
def test_export_refuses_what_the_base_profile_cannot_say(text: str, message: str) -> None:
    with pytest.raises(CircuitError, match="QIR base profile") as info:
        Circuit.from_qasm(text, source="prog.qasm").to_qir()
    assert message in str(info.value) and info.value.source == "prog.qasm"
    assert info.value.line is not None


@pytest.mark.parametrize("ir, message", [
    ("this is not llvm", "invalid QIR"),
    (library.bell().to_qir().replace("__quantum__qis__h__body", "__quantum__qis__foo__body"),
     "unsupported QIR call @__quantum__qis__foo__body"),
    (library.bell().to_qir().replace('"entry_point" ', ""), "exactly one entry point"),
])
def test_import_refuses_bad_qir(ir: str, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        Circuit.from_qir(ir)


def test_missing_pyqir_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pyqir(name: str, *args: object, **kwargs: object) -> object:
        if name == "pyqir":
            raise ImportError("No module named 'pyqir'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyqir)
    with pytest.raises(ConfigurationError, match=r"pip install 'hal-workflow\[qir\]'"):
        Circuit.from_qir(library.bell().to_qir())


def test_ddsim_runs_the_exported_qir() -> None:
    qdmi = pytest.importorskip("mqt.core.qdmi")
    circuit = Circuit.from_qasm(H3 + "qubit[3] q;\nbit[3] c;\nry(1.1) q[0];\ncx q[0], q[1];\n"
                                     "negctrl @ h q[1], q[2];\nu2(0.3, 0.2) q[0];\n"
                                     "c = measure q;\n")
    device = qdmi.open_device("mqt.ddsim.default")
    shots = 4000
    job = device.submit_job(circuit.to_qir(), qdmi.ProgramFormat.QIR_BASE_STRING, shots)
    assert job.wait(60)
    counts = job.get_counts(0)
    reference = qiskit.qasm3.loads(circuit.qasm)
    reference.remove_final_measurements()
    ideal = Statevector(reference).probabilities_dict()
    assert set(counts) <= {key for key, p in ideal.items() if p > 1e-12}
    for key, p in ideal.items():  # within five standard deviations of the binomial
        assert abs(counts.get(key, 0) / shots - p) < 5 * (p * (1 - p) / shots) ** 0.5 + 1e-9


def test_imports_qir_emitted_by_mqt_cc(tmp_path: Path) -> None:
    # mqt-cc's base-profile output (labels, chained blocks, cx__body) as a second producer.
    compiler = shutil.which("mqt-cc", path=str(Path(sys.executable).parent)) or \
        shutil.which("mqt-cc")
    if compiler is None:
        pytest.skip("mqt-cc is not installed")
    source = tmp_path / "prog.qasm"
    source.write_text(H3 + "qubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nrx(0.5) q[1];\n"
                           "sdg q[0];\nc = measure q;\n")
    ir = subprocess.run([compiler, "--emit=qir-base", str(source), "-o", "-"], check=True,
                        capture_output=True, text=True).stdout
    circuit = Circuit.from_qir(ir)
    original = Circuit.from_file(source)
    assert unitary(circuit).equiv(unitary(original))
    assert circuit.gate_counts == original.gate_counts
