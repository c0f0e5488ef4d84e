: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/K_Tst_mod/K_Tst.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
NEURON	{
	SUFFIX K_Tst
	USEION k READ ek WRITE ik
	RANGE gK_Tstbar, g
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gK_Tstbar = 0.00001 (S/cm2)
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
STATE	{ m h }
BREAKPOINT	{
	SOLVE states METHOD cnexp
	g = gK_Tstbar*(m^4)*h
	ik = g*(v-ek)
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

	vv = v + 10
	mInf =  1/(1 + exp(-(vv+0)/19))
	mTau =  (0.34+0.92*exp(-((vv+71)/59)^2))/qt
	hInf =  1/(1 + exp(-(vv+66)/-10))
	hTau =  (8+49*exp(-((vv+73)/23)^2))/qt
	UNITSON
}
