"""One-call GPU check: everything this repo does on CUDA, in one table, in a few minutes.

    python benchmarks/gpu_check.py --out=gpu_check.md            # on a GPU machine (about 5-7 minutes on one H100)
    python benchmarks/gpu_check.py --cpu-smoke                   # the same code paths at toy size on the CPU (~20 s)

Sections (each runs in its own process with its own time limit; one that fails or runs over is reported in the
table and the others still run):

    kernels   build the CUDA plugins (bias_act, upfirdn2d) and compare every op with its pure-PyTorch twin:
              forward and gradients, and for the gradfix ops (conv2d_gradfix, grid_sample_gradfix) the
              second-order gradients R1 needs (max abs error against the tolerance of the dtype)
    pytest    `pytest -m gpu` (the GPU-marked tests), summary counts
    speed     StyleGAN2 256x256 sec/kimg (benchmarks/train_speed.py) for the baseline and for --prior=gmm
              (offline feature extractor --prior-feature=tiny: the prior's cost without Inception's download)
    gmm       our torch EM on the GPU for 70k x 2048 features (benchmarks/gmm_fit.py), and ours vs scikit-learn
              on the CPU from the same start on a subset (scikit-learn's full-covariance EM on 70k x 2048 would
              take the whole budget)

Runs on the installed torch (CUDA build), with the repository root on sys.path; nothing is downloaded.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

import click
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#----------------------------------------------------------------------------
# The kernels section, run in a child process (`--section=kernels`): one JSON line per comparison.

def _max_err(a, b):
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0

def _check(name, errs, tol, extra=''):
    worst = max(errs) if errs else 0.0
    print(json.dumps(dict(name=name, err=worst, tol=tol, ok=bool(worst <= tol), note=extra)), flush=True)

def _grads(fn, inputs):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    weight = torch.linspace(-1, 1, out.numel(), device=out.device, dtype=out.dtype).reshape(out.shape)
    grads = torch.autograd.grad((out * weight).sum(), inputs)
    return [out] + list(grads)

def _grads2(fn, x, b):
    x, b = x.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    gx, = torch.autograd.grad(fn(x, b).square().sum(), x, create_graph=True)
    return list(torch.autograd.grad(gx.square().sum(), [x, b]))

def _kernels(device, smoke):
    from torch_utils.ops import bias_act, upfirdn2d, conv2d_gradfix, grid_sample_gradfix
    cuda = device.type == 'cuda'
    impl = 'cuda' if cuda else 'ref'
    start = time.perf_counter()
    built = dict(bias_act=bool(cuda and bias_act._init()), upfirdn2d=bool(cuda and upfirdn2d._init()))
    print(json.dumps(dict(name='plugin build', err=0.0, tol=0.0, ok=all(built.values()) or not cuda,
                          note=f'{time.perf_counter() - start:.1f} s; ' + ', '.join(f'{k} {"built" if v else "NOT built"}' for k, v in built.items()))), flush=True)
    gen = torch.Generator(device='cpu').manual_seed(0)
    n, ch, res = (2, 8, 8) if smoke else (8, 64, 32)
    for dtype, tol in ((torch.float32, 1e-4), (torch.float16, 2e-2)):
        if dtype == torch.float16 and not cuda:
            continue
        x = torch.randn([n, ch, res, res], generator=gen).to(device, dtype)
        b = torch.randn([ch], generator=gen).to(device, dtype)
        for act in sorted(bias_act.activation_funcs):
            for clamp in (None, 0.5):
                ours = _grads(lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl=impl), [x, b])
                ref = _grads(lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl='ref'), [x, b])
                _check(f'bias_act {act} clamp={clamp} {str(dtype)[6:]}', [_max_err(o, r) for o, r in zip(ours, ref)], tol)
            if dtype == torch.float32:  # second order (R1 differentiates D's input gradient again)
                ours = _grads2(lambda x, b: bias_act.bias_act(x, b, act=act, impl=impl), x, b)
                ref = _grads2(lambda x, b: bias_act.bias_act(x, b, act=act, impl='ref'), x, b)
                _check(f'bias_act {act} 2nd order', [_max_err(o, r) for o, r in zip(ours, ref)], tol)
        f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
        for up, down, pad in ((1, 1, 1), (2, 1, [2, 1, 2, 1]), (1, 2, 1), (2, 2, 0)):
            ours = _grads(lambda x: upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=pad, impl=impl), [x])
            ref = _grads(lambda x: upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=pad, impl='ref'), [x])
            _check(f'upfirdn2d up={up} down={down} {str(dtype)[6:]}', [_max_err(o, r) for o, r in zip(ours, ref)], tol * 10)
    # Gradfix ops: first and second order against the stock ops (float32), and gradgradcheck in float64.
    x = torch.randn([n, ch, res, res], generator=gen).to(device)
    w = torch.randn([ch, ch, 3, 3], generator=gen).to(device) * 0.1
    def r1_like(enabled):
        conv2d_gradfix.enabled = enabled
        try:
            xi, wi = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
            y = conv2d_gradfix.conv2d(xi, wi, padding=1)
            gx, = torch.autograd.grad(y.square().sum(), xi, create_graph=True)
            gw, = torch.autograd.grad(gx.square().sum(), wi)
            return [y, gx, gw]
        finally:
            conv2d_gradfix.enabled = False
    _check('conv2d_gradfix 1st+2nd order vs stock', [_max_err(o, r) / max(1.0, float(r.abs().max())) for o, r in zip(r1_like(True), r1_like(False))], 1e-4, 'relative to max |ref|')
    grid = (torch.rand([n, res, res, 2], generator=gen) * 2 - 1).to(device)
    def gs(enabled):
        grid_sample_gradfix.enabled = enabled
        try:
            xi = x.clone().requires_grad_(True)
            y = grid_sample_gradfix.grid_sample(xi, grid)
            gx, = torch.autograd.grad(y.square().sum(), xi)
            return [y, gx]
        finally:
            grid_sample_gradfix.enabled = False
    _check('grid_sample_gradfix 1st order vs stock', [_max_err(o, r) for o, r in zip(gs(True), gs(False))], 1e-4)
    small_x = torch.randn([1, 2, 4, 4], generator=gen, dtype=torch.float64).to(device).requires_grad_(True)
    small_grid = (torch.rand([1, 3, 3, 2], generator=gen, dtype=torch.float64) * 2 - 1).to(device)
    grid_sample_gradfix.enabled = True
    try:
        ok = torch.autograd.gradgradcheck(lambda t: grid_sample_gradfix.grid_sample(t, small_grid), (small_x,), raise_exception=False)
    finally:
        grid_sample_gradfix.enabled = False
    print(json.dumps(dict(name='grid_sample_gradfix 2nd order (gradgradcheck, float64)', err=0.0 if ok else 1.0, tol=0.0, ok=bool(ok), note='')), flush=True)

#----------------------------------------------------------------------------
# The parent: each section as a child process with a wall-clock limit.

def _run(cmd, limit, env=None):
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit, env=env)
        return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b'') + (err.stderr or b'')
        return 'timeout', out.decode(errors='replace') if isinstance(out, bytes) else out, time.perf_counter() - start

def _tail(text, lines=3):
    return ' | '.join(line.strip() for line in text.strip().splitlines()[-lines:])

def _section_kernels(rows, limit, smoke, env):
    rc, out, secs = _run([sys.executable, __file__, '--section=kernels'] + (['--cpu-smoke'] if smoke else []), limit, env)
    checks = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
    for c in checks:
        rows.append(('kernels', c['name'], 'ok' if c['ok'] else 'FAIL', f'max err {c["err"]:.2e} (tol {c["tol"]:.0e}) {c["note"]}'.strip()))
    if rc != 0 or not checks:
        rows.append(('kernels', 'section', 'FAIL' if rc != 'timeout' else 'TIMEOUT', f'{secs:.0f} s: {_tail(out)}'))

def _section_pytest(rows, limit, smoke, env):
    if smoke:
        cmd = [sys.executable, '-m', 'pytest', '-q', '-m', 'gpu', '--collect-only', '-p', 'no:cacheprovider', 'tests']
    else:
        cmd = [sys.executable, '-m', 'pytest', '-q', '-m', 'gpu', '-p', 'no:cacheprovider', 'tests']
        try:
            import pytest_timeout  # noqa: F401  (optional: a per-test limit so one hang can't eat the budget)
            cmd += ['-p', 'pytest_timeout', '--timeout=120']
        except ImportError:
            pass
    rc, out, secs = _run(cmd, limit, env)
    summary = [line for line in out.splitlines() if re.search(r'\d+ (passed|failed|error|skipped|selected|deselected|tests? collected)', line)]
    status = 'ok' if rc == 0 else ('TIMEOUT' if rc == 'timeout' else 'FAIL')
    rows.append(('pytest -m gpu', 'collect only (CPU smoke)' if smoke else 'run', status, f'{secs:.0f} s: ' + (summary[-1].strip() if summary else _tail(out))))
    failed = [line.strip() for line in out.splitlines() if line.startswith(('FAILED', 'ERROR'))]
    for line in failed[:8]:
        rows.append(('pytest -m gpu', line[:90], 'FAIL', ''))

def _section_speed(rows, limit, smoke, env, workdir):
    res, num, steps = (32, 64, 1) if smoke else (256, 256, 20)
    data = os.path.join(workdir, f'synthetic{res}.zip')
    rc, out, secs = _run([sys.executable, 'dataset_tool.py', '--source=synthetic', f'--synthetic-res={res}',
                          f'--synthetic-num={num}', f'--dest={data}'], limit / 4, env)
    if rc != 0:
        rows.append(('speed', 'synthetic dataset', 'FAIL', _tail(out)))
        return
    base = [sys.executable, 'benchmarks/train_speed.py', f'--data={data}', f'--steps={steps}']
    base += ['--cfg=stylegan2', '--batch=4', '--cbase=2048', '--cmax=32', '--device=cpu'] if smoke else ['--cfg=paper256', '--batch=32']
    per_run = (limit - secs) / 2
    for label, extra in (('baseline', []), ('--prior=gmm', ['--prior=gmm', '--prior-feature=tiny'])):
        rc, out, run_secs = _run(base + extra, per_run, env)
        found = re.search(r'sec/kimg ([0-9.]+)', out)
        detail = re.search(r'^device .*$', out, re.M)
        status = 'ok' if rc == 0 and found else ('TIMEOUT' if rc == 'timeout' else 'FAIL')
        value = f'{float(found.group(1)):.2f} sec/kimg' if found else _tail(out)
        rows.append(('speed', f'{res}x{res} {label}', status, f'{value}; {detail.group(0) if detail else ""} ({run_secs:.0f} s wall)'))

def _section_gmm(rows, limit, smoke, env):
    device = 'cpu' if smoke else 'cuda'
    full = ['--num-samples=2000', '--dim=16', '--components=4'] if smoke else ['--num-samples=70000', '--dim=2048', '--components=10']
    subset = ['--num-samples=1000', '--dim=16', '--components=4'] if smoke else ['--num-samples=5000', '--dim=2048', '--components=5']
    cases = (('ours, full size', full + ['--no-sklearn', '--max-iter=30'], 0.55),
             ('ours vs scikit-learn, subset', subset + ['--max-iter=10'], 0.45))
    for label, args, share in cases:
        rc, out, secs = _run([sys.executable, 'benchmarks/gmm_fit.py', f'--device={device}'] + args, limit * share, env)
        lines = [line for line in out.splitlines() if line.startswith(('ours', 'sklearn', 'Features', 'Speed-up'))]
        status = 'ok' if rc == 0 else ('TIMEOUT' if rc == 'timeout' else 'FAIL')
        rows.append(('gmm', label, status, f'{secs:.0f} s: ' + (' | '.join(' '.join(l.split()) for l in lines) if lines else _tail(out))))

#----------------------------------------------------------------------------

@click.command()
@click.option('--out', help='Also write the table (markdown) and the rows (JSON, same name + .json) here', metavar='FILE')
@click.option('--budget', help='Seconds for all sections together (split 30/25/25/20 %)', type=click.IntRange(min=30), default=420, show_default=True)
@click.option('--sections', help='Comma-separated subset of kernels,pytest,speed,gmm', default='kernels,pytest,speed,gmm', show_default=True)
@click.option('--cpu-smoke', is_flag=True, help='Run every section at toy size on the CPU (kernels: twin vs twin; pytest: collect only)')
@click.option('--section', hidden=True, help='Internal: run one section in this process')
def main(out, budget, sections, cpu_smoke, section):
    """Check the CUDA kernels, the GPU tests, the 256x256 training speed and the GPU GMM fit; print one table."""
    if section == 'kernels':
        _kernels(torch.device('cpu' if cpu_smoke or not torch.cuda.is_available() else 'cuda'), cpu_smoke)
        return
    if not cpu_smoke and not torch.cuda.is_available():
        raise click.ClickException('no CUDA device is visible; run with --cpu-smoke to exercise the code paths on the CPU')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    rows = []
    shares = dict(kernels=0.3, pytest=0.25, speed=0.25, gmm=0.2)
    wanted = [s.strip() for s in sections.split(',') if s.strip()]
    unknown = sorted(set(wanted) - set(shares))
    if unknown:
        raise click.ClickException(f'--sections: unknown {", ".join(unknown)}; choose from {", ".join(shares)}')
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        env.setdefault('TORCH_EXTENSIONS_DIR', os.path.join(workdir, 'torch_extensions'))
        for name in wanted:
            limit = budget * shares[name]
            t0 = time.perf_counter()
            if name == 'kernels':
                _section_kernels(rows, limit, cpu_smoke, env)
            elif name == 'pytest':
                _section_pytest(rows, limit, cpu_smoke, env)
            elif name == 'speed':
                _section_speed(rows, limit, cpu_smoke, env, workdir)
            else:
                _section_gmm(rows, limit, cpu_smoke, env)
            print(f'[{name}: {time.perf_counter() - t0:.0f} s]', flush=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not cpu_smoke else 'cpu (smoke)'
    head = f'GPU check on {device}, torch {torch.__version__}, {time.perf_counter() - start:.0f} s in all'
    table = [head, '', '| section | check | status | detail |', '|---|---|---|---|']
    table += [f'| {s} | {c} | {st} | {d.replace("|", "/")} |' for s, c, st, d in rows]
    text = '\n'.join(table)
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            f.write(text + '\n')
        with open(out + '.json', 'w') as f:
            json.dump(dict(device=device, torch=torch.__version__, rows=rows), f, indent=1)
    if any(st != 'ok' for _s, _c, st, _d in rows):
        sys.exit(1)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
