: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/Im_mod/Im.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
NEURON	{
	SUFFIX Im
	USEION k READ ek WRITE ik
	RANGE gImbar, g
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gImbar = 0.00001 (S/cm2)
}
ASSIGNED	{
	v	(mV)
	ek	(mV)
	ik	(mA/cm2)
	g	(S/cm2)
	mInf
	mTau
	hInf
	hTau
}
STATE	{ m }
BREAKPOINT	{
	SOLVE states METHOD cnexp
	g = gImbar*m
	ik = g*(v-ek)
}
DERIVATIVE states	{
	rates()
	m' = (mInf-m)/mTau
}
INITIAL{
	rates()
	m = mInf
}
PROCEDURE rates(){
  LOCAL qt, vv, a, b
  qt = 2.3^((34-21)/10)
	UNITSOFF

	a = 3.3e-3*exp(2.5*0.04*(v - -35))
	b = 3.3e-3*exp(-2.5*0.04*(v - -35))
	mInf = a/(a + b)
	mTau = (1/(a + b))/qt
	UNITSON
}
