: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/K_Pst_mod/K_Pst.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
NEURON	{
	SUFFIX K_Pst
	USEION k READ ek WRITE ik
	RANGE gK_Pstbar, g
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gK_Pstbar = 0.00001 (S/cm2)
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
	g = gK_Pstbar*m*m*h
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
	mInf =  (1/(1 + exp(-(vv+1)/12)))
	if(vv<-50){
		mTau =  (1.25+175.03*exp(-vv * -0.026))/qt
	}else{
		mTau = ((1.25+13*exp(-vv*0.026)))/qt
	}
	hInf =  1/(1 + exp(-(vv+54)/-11))
	hTau =  (360+(1010+24*(vv+55))*exp(-((vv+75)/48)^2))/qt
	UNITSON
}
