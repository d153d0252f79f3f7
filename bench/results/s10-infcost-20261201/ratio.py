import json,sys,collections
rows=[json.loads(l) for f in sys.argv[1:] for l in open(f) if l.startswith('{')]
d=collections.defaultdict(dict)
for r in rows: d[(r['cap'],r['spec'])][r['round']]=r['influxd_cpu_s_per_1000']
S='replay rebatch:5000 REPLAY_ONLY=home_assistant_events'
for cap in ['default','slim','slimflush']:
    a=d.get((cap,'replay asis'),{}); s=d.get((cap,S),{})
    rs=sorted(set(a)&set(s))
    print(cap, 'pairs', ' '.join(f"r{r}:{a[r]/s[r]:.2f}" for r in rs),
          'mean asis %.4f same %.4f ratio-of-means %.2f mean-ratio %.2f diff %.4f'%(
          sum(a[r] for r in rs)/len(rs), sum(s[r] for r in rs)/len(rs),
          sum(a[r] for r in rs)/sum(s[r] for r in rs), sum(a[r]/s[r] for r in rs)/len(rs),
          sum(a[r]-s[r] for r in rs)/len(rs)))
# decomposition steps per round (default)
st=[S,'replay asis REPLAY_ONLY=home_assistant_events','replay asis REPLAY_DROP=homeiq_statistics','replay asis']
for i in range(1,4):
    x=d[('default',st[i-1])]; y=d[('default',st[i])]
    rs=sorted(set(x)&set(y))
    print('step',st[i],' '.join(f"{y[r]-x[r]:+.4f}" for r in rs),'mean %+.4f'%(sum(y[r]-x[r] for r in rs)/len(rs)))
x=d[('slim','replay asis')]; y=d[('slimflush','replay asis')]
rs=sorted(set(x)&set(y)); print('flush (slimflush-slim asis)',' '.join(f"{y[r]-x[r]:+.4f}" for r in rs),'mean %+.4f'%(sum(y[r]-x[r] for r in rs)/len(rs)))
