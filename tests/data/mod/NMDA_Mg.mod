: NEURON's Exp2Syn with the Mg block of Jahr & Stevens (1990), [Mg] mg mM, as in Blue Brain's
: ProbAMPANMDA_EMS.mod: i = g B(v) (v - e), B = 1 / (1 + exp(-0.062 v) mg / 3.57).
NEURON {
	POINT_PROCESS NMDA_Mg
	RANGE tau1, tau2, e, i, mg, g
	NONSPECIFIC_CURRENT i
}
UNITS {
	(nA) = (nanoamp)
	(mV) = (millivolt)
	(uS) = (microsiemens)
	(mM) = (milli/liter)
}
PARAMETER {
	tau1 = 0.29 (ms) <1e-9,1e9>
	tau2 = 43 (ms) <1e-9,1e9>
	e = 0	(mV)
	mg = 1 (mM)
}
ASSIGNED {
	v (mV)
	i (nA)
	g (uS)
	factor
}
STATE {
	A (uS)
	B (uS)
}
INITIAL {
	LOCAL tp
	if (tau1/tau2 > 0.9999) {
		tau1 = 0.9999*tau2
	}
	A = 0
	B = 0
	tp = (tau1*tau2)/(tau2 - tau1) * log(tau2/tau1)
	factor = -exp(-tp/tau1) + exp(-tp/tau2)
	factor = 1/factor
}
BREAKPOINT {
	SOLVE state METHOD cnexp
	g = B - A
	i = g*(v - e)/(1 + exp(-0.062*v)*mg/3.57)
}
DERIVATIVE state {
	A' = -A/tau1
	B' = -B/tau2
}
NET_RECEIVE(weight (uS)) {
	A = A + weight*factor
	B = B + weight*factor
}
