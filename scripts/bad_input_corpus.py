#!/usr/bin/env python3
# The bad-input corpus of issue 14, run by hand (not part of the suite; needs numpy): about 2800 pe-run
# invocations over extreme and malformed matrices (every subcommand, f32/f64), bad right-hand sides,
# option values and 300 random mutations of a .npy file. Reports every case that crashed, hung, exited 0
# with a non-finite output, wrote an output on failure, left a temporary file, or failed with other than
# one message line (or a known weak message). Usage: python3 scripts/bad_input_corpus.py [PE_RUN]
# (default build/default/tools/pe-run/pe-run); work files go to $TMPDIR/pe_bad_input_corpus.
import numpy as np, subprocess, os, itertools, json, sys, io
import tempfile
R=sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'build', 'default', 'tools', 'pe-run', 'pe-run')
W=os.path.join(tempfile.gettempdir(), 'pe_bad_input_corpus')
D=os.path.join(W, 'files'); os.makedirs(D, exist_ok=True)
rng=np.random.default_rng(0)
def spd(n,kappa,seed=1):
    r=np.random.default_rng(seed); Q,_=np.linalg.qr(r.standard_normal((n,n))); w=np.logspace(0,-np.log10(kappa),n)
    A=(Q*w)@Q.T; return (A+A.T)/2
def save(name, a): p=f'{D}/{name}.npy'; np.save(p,a); return p
mats={}
mats['diag_1e308_1e-20']=np.diag([1e308,1e-20])
mats['mixed_1e300']=np.array([[1e300,0,0],[0,1e-300,1e-301],[0,1e-301,1e-300]])
mats['good']=spd(8,1e2)
mats['tiny']=spd(8,1e2)*1e-300
mats['huge']=spd(8,1e2)*1e300
mats['rowsum_overflow']=np.array([[1.5e308,1e308],[1e308,1.5e308]])
mats['subnormal']=spd(4,10)*1e-315
mats['zero']=np.zeros((4,4))
mats['negdiag']=np.diag([1.0,-1,2,3])
M=spd(6,10); w,V=np.linalg.eigh(M); w[0]=-0.1; mats['indefinite']=(V*w)@V.T
mats['nonsym']=spd(5,10)+np.triu(np.ones((5,5)),1)*0.1
A=spd(5,10); A[1,2]=A[2,1]=np.nan; mats['nan']=A
A=spd(5,10); A[0,0]=np.inf; mats['inf']=A
mats['one']=np.array([[4.0]])
mats['one_subnormal']=np.array([[1e-320]])
mats['kappa1e16']=spd(16,1e16)
mats['kappa1e30']=spd(16,1e30)
mats['singular_psd']=np.ones((5,5))
mats['f32_overflow']=spd(4,10)*1e39
mats['f32_underflow']=spd(4,10)*1e-39
mats['f32_ratio']=np.diag([1e30,1e-10])
mats['near_max']=spd(4,10)*1e307
mats['rect']=np.ones((3,4))
mats['one_d']=np.ones(3)
mats['empty']=np.zeros((0,0))
for k,v in mats.items(): save(k,v)
rhs={'b_ok':None,'b_nan':np.nan,'b_inf':np.inf,'b_big':1e300,'b_tiny':1e-300,'b_zero':0.0,'b_max':1.7e308}
def rhs_for(n, kind):
    b=np.ones((n,2)) if n>0 else np.ones((1,2))
    v=rhs[kind]
    if kind=='b_ok': return b
    if kind in('b_nan','b_inf'): b[0,1]=v; return b
    return b*v
results=[]
def run(args, outs, label):
    for o in outs:
        if os.path.exists(o): os.remove(o)
    try:
        p=subprocess.run([R]+args, capture_output=True, timeout=120); p.stderr=p.stderr.decode('utf-8','replace')
        rc=p.returncode; err=p.stderr.strip()
    except subprocess.TimeoutExpired:
        rc='TIMEOUT'; err=''
    bad=[]
    if rc=='TIMEOUT': bad.append('hang')
    elif rc<0 or rc>=128: bad.append(f'crash rc={rc}')
    if rc==0:
        for o in outs:
            if not os.path.exists(o): bad.append('no output'); continue
            x=np.load(o)
            if not np.all(np.isfinite(x)): bad.append('non-finite output with exit 0')
    elif rc!='TIMEOUT':
        for o in outs:
            if os.path.exists(o): bad.append('output written on failure')
        lines=[l for l in err.splitlines() if l.strip()]
        if rc==1 and len(lines)!=1: bad.append(f'{len(lines)} stderr lines')
        if not err: bad.append('no message')
        for junk in ['basic_filebuf','stoll','_M_default','data pointer is null',"what()",'0.000000 to','179769313486231570814527']:
            if junk in err: bad.append('weak message: '+junk)
    leftovers=[f for f in os.listdir(os.path.dirname(outs[0])) if '.tmp' in f]
    if leftovers: bad.append('temp files left')
    results.append((label, rc, bad, err[:300]))
O=os.path.join(W, 'out'); os.makedirs(O, exist_ok=True)
out=f'{O}/out.npy'
for name,a in mats.items():
    p=f'{D}/{name}.npy'
    n=a.shape[0] if a.ndim==2 else 0
    for dt in ['', '--dtype f32', '--dtype f64']:
        for pp in ['1','2','3']:
            run(['root','--p',pp,'--in',p,'--out',out]+dt.split(), [out], f'root p{pp} {dt} {name}')
        for kind in rhs:
            bp=save(f'rhs_{name}_{kind}', rhs_for(max(n,1),kind))
            for mode in ['direct','materialize']:
                run(['apply','--p','2','--in',p,'--rhs',bp,'--out',out,'--mode',mode]+dt.split(), [out], f'apply {mode} {dt} {name} {kind}')
            run(['solve','--in',p,'--rhs',bp,'--out',out]+dt.split(), [out], f'solve {dt} {name} {kind}')
            run(['gram-apply','--p','2','--in',p,'--rhs',bp,'--out',out,'--lambda','1e-3']+dt.split(), [out], f'gram {dt} {name} {kind}')
good=f'{D}/good.npy'; bg=save('bgood', np.ones((8,2)))
opts=[['--target','0'],['--target','1'],['--target','-1'],['--target','nan'],['--target','1e-300'],['--target','inf'],
      ['--max-gemms','1'],['--max-gemms','2'],['--max-steps','1'],['--target','0','--max-gemms','3'],
      ['--ridge','1e300'],['--ridge','1e-320'],['--ridge','-0'],['--l-target','0.999999'],['--kappa-hint','1e300'],['--kappa-hint','1'],
      ['--lambda-min-hint','1e300'],['--lambda-min-hint','1e-320'],['--symmetry-tolerance','1e300'],['--symmetry-tolerance','0'],
      ['--degree','1'],['--degree','2'],['--symmetrize-every','0'],['--symmetrize-every','1000000'],['--renormalize'],
      ['--precond','none'],['--precond','jacobi'],['--precond','ruiz'],['--precond','aol'],['--precond','x'],
      ['--schedules','/nonexistent.json'],['--schedules','/tmp'],['--schedules',good],['--device','cuda'],['--dtype','f16'],
      ['--target','1e-12'],['--target','1e-15','--dtype','f32'],['--max-steps','0','--target','0']]
for o in opts:
    for pp in ['1','2','4']:
        run(['root','--p',pp,'--in',good,'--out',out]+o,[out],f'opt root p{pp} {o}')
    run(['apply','--p','2','--in',good,'--rhs',bg,'--out',out]+o,[out],f'opt apply {o}')
for o in [['--target','0'],['--target','1e-16'],['--max-gemms','3'],['--max-corrections','11'],['--inner-target','1'],['--polar-target','1'],
          ['--general'],['--spd','--general'],['--no-fallback'],['--kappa-hint','1e300'],['--precond','aol'],['--lambda-min-hint','1e300']]:
    run(['solve','--in',good,'--rhs',bg,'--out',out]+o,[out],f'opt solve {o}')
for o in [['--lambda','1e300'],['--side','dual'],['--range','--side','dual'],['--target','0'],['--degree','2'],['--kappa-hint','0.3']]:
    run(['gram-apply','--p','2','--in',good,'--rhs',bg,'--out',out]+o,[out],f'opt gram {o}')
# npy files: random mutations of a good file
base=open(good,'rb').read()
for i in range(300):
    b=bytearray(base); r=np.random.default_rng(i)
    for _ in range(r.integers(1,8)):
        op=r.integers(0,3); pos=int(r.integers(0,len(b)))
        if op==0: b[pos]=int(r.integers(0,256))
        elif op==1: del b[pos:pos+int(r.integers(1,40))]
        else: b[pos:pos]=bytes(r.integers(0,256,int(r.integers(1,20))).astype(np.uint8))
    p=f'{D}/mut{i}.npy'; open(p,'wb').write(bytes(b))
    run(['root','--p','2','--in',p,'--out',out],[out],f'npy mutation {i}')
bad=[r for r in results if r[2]]
print(len(results),'cases;',len(bad),'with problems')
from collections import Counter
print(Counter(r[1] for r in results))
for r in bad: print(r)
json.dump(results, open(os.path.join(W, 'results.json'),'w'))
sys.exit(1 if bad else 0)
