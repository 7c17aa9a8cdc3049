// One parameterised qubit: rx(theta), measured. Used by the README's CLI sweep.
OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[1] q;
bit[1] c;
rx(theta) q[0];
c[0] = measure q[0];
