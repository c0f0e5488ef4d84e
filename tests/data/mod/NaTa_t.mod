: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/NaTa_t_mod/NaTa_t.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
NEURON	{
	SUFFIX NaTa_t
	USEION na READ ena WRITE ina
	RANGE gNaTa_tbar, g
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gNaTa_tbar = 0.00001 (S/cm2)
}
ASSIGNED	{
	v	(mV)
	ena	(mV)
	ina	(mA/cm2)
	g	(S/cm2)
	mInf
	mTau
	hInf
	hTau
}
STATE	{ m h }
BREAKPOINT	{
	SOLVE states METHOD cnexp
	g = gNaTa_tbar*m*m*m*h
	ina = g*(v-ena)
}
DERIVATIVE states	{
	rates()
	m' = (mInf-m)/mTau
	h' = (hInf-h)/hTau
}
INITIAL{
	rates()
	m = mInf
	h = hInf
}
PROCEDURE rates(){
  LOCAL qt, vv, a, b
  qt = 2.3^((34-21)/10)
	UNITSOFF

	vv = v
	if(vv == -38){ vv = vv+0.0001 }
	a = (0.182 * (vv- -38))/(1-(exp(-(vv- -38)/6)))
	b = (0.124 * (-vv -38))/(1-(exp(-(-vv -38)/6)))
	mTau = (1/(a + b))/qt
	mInf = a/(a + b)
	if(vv == -66){ vv = vv + 0.0001 }
	a = (-0.015 * (vv- -66))/(1-(exp((vv- -66)/6)))
	b = (-0.015 * (-vv -66))/(1-(exp((-vv -66)/6)))
	hTau = (1/(a + b))/qt
	hInf = a/(a + b)
	UNITSON
}
