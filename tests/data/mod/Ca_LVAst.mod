: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/Ca_LVAst_mod/Ca_LVAst.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
: Avery & Johnston (1996) J Neurosci 16:5567, shifted as in Hay et al. (2011)
NEURON	{
	SUFFIX Ca_LVAst
	USEION ca READ eca WRITE ica
	RANGE gCa_LVAstbar, gCa_LVAst, ica
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gCa_LVAstbar = 0.00001 (S/cm2)
}
ASSIGNED	{
	v	(mV)
	eca	(mV)
	ica	(mA/cm2)
	gCa_LVAst	(S/cm2)
	mInf
	mTau
	hInf
	hTau
}
STATE	{ m h }
BREAKPOINT	{
	SOLVE states METHOD cnexp
	gCa_LVAst = gCa_LVAstbar*m*m*h
	ica = gCa_LVAst*(v-eca)
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
  LOCAL qt, vv
  qt = 2.3^((34-21)/10)
	UNITSOFF
		vv = v + 10
		mInf = 1.0000/(1+ exp((vv - -30.000)/-6))
		mTau = (5.0000 + 20.0000/(1+exp((vv - -25.000)/5)))/qt
		hInf = 1.0000/(1+ exp((vv - -80.000)/6.4))
		hTau = (20.0000 + 50.0000/(1+exp((vv - -40.000)/7)))/qt
	UNITSON
}
