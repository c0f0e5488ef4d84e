: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/SKv3_1_mod/SKv3_1.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
NEURON	{
	SUFFIX SKv3_1
	USEION k READ ek WRITE ik
	RANGE gSKv3_1bar, g
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gSKv3_1bar = 0.00001 (S/cm2)
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
	g = gSKv3_1bar*m
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

	mInf =  1/(1+exp(((v -(18.700))/(-9.700))))
	mTau =  0.2*20.000/(1+exp(((v -(-46.560))/(-44.140))))
	UNITSON
}
