: After Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653 (rewritten for polyscale's
: validation). Checked against the published text, GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011
: neuroConstruct/cellMechanisms/Ih_mod/Ih.mod: the same equations; NEURON runs of
: tests/data/cell_mech_reference.py with that file and with this one are bitwise identical.
: Kole, Hallermann & Stuart (2006) J Neurosci 26:1677
NEURON	{
	SUFFIX Ih
	NONSPECIFIC_CURRENT ihcn
	RANGE gIhbar, gIh, ihcn, ehcn
}
UNITS	{
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}
PARAMETER	{
	gIhbar = 0.00001 (S/cm2)
	ehcn =  -45.0 (mV)
}
ASSIGNED	{
	v	(mV)
	ihcn	(mA/cm2)
	gIh	(S/cm2)
	mInf
	mTau
	mAlpha
	mBeta
}
STATE	{ m }
BREAKPOINT	{
	SOLVE states METHOD cnexp
	gIh = gIhbar*m
	ihcn = gIh*(v-ehcn)
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
	UNITSOFF
        if(v == -154.9){
            v = v + 0.0001
        }
		mAlpha =  0.001*6.43*(v+154.9)/(exp((v+154.9)/11.9)-1)
		mBeta  =  0.001*193*exp(v/33.1)
		mInf = mAlpha/(mAlpha + mBeta)
		mTau = 1/(mAlpha + mBeta)
	UNITSON
}
