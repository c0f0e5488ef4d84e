: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/Nap_Et2_mod/Nap_Et2.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
NEURON	{
	SUFFIX Nap_Et2
	USEION na READ ena WRITE ina
	RANGE gNap_Et2bar, g
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gNap_Et2bar = 0.00001 (S/cm2)
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
	g = gNap_Et2bar*m*m*m*h
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

	mInf = 1.0/(1+exp((v- -52.6)/-4.6))
	vv = v
	if(vv == -38){ vv = vv+0.0001 }
	a = (0.182 * (vv- -38))/(1-(exp(-(vv- -38)/6)))
	b = (0.124 * (-vv -38))/(1-(exp(-(-vv -38)/6)))
	mTau = 6*(1/(a + b))/qt
	if(vv == -17){ vv = vv + 0.0001 }
	if(vv == -64.4){ vv = vv + 0.0001 }
	hInf = 1.0/(1+exp((vv- -48.8)/10))
	a = -2.88e-6 * (vv + 17) / (1 - exp((vv + 17)/4.63))
	b = 6.94e-6 * (vv + 64.4) / (1 - exp(-(vv + 64.4)/2.63))
	hTau = (1/(a + b))/qt
	UNITSON
}
