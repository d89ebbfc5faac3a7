"""benchmarks/gpu_check.py's own machinery, on the CPU: the kernels section in smoke mode runs every comparison
(twin against twin) and prints one table row per check; a failing check makes the script exit non-zero."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def _run(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'gpu_check.py'), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)

def test_cpu_smoke_kernels_table(tmp_path):
    out = tmp_path / 'check.md'
    proc = _run('--cpu-smoke', '--sections=kernels', f'--out={out}')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = out.read_text()
    for op in ('bias_act lrelu clamp=None', 'bias_act swish 2nd order', 'upfirdn2d up=2 down=1',
               'conv2d_gradfix 1st+2nd order', 'grid_sample_gradfix 2nd order'):
        assert f'| kernels | {op}' in table, op
    assert '| FAIL |' not in table and (tmp_path / 'check.md.json').exists()

def test_unknown_section_is_one_line():
    proc = _run('--cpu-smoke', '--sections=kernels,bogus')
    assert proc.returncode != 0 and 'unknown bogus' in proc.stderr and 'Traceback' not in proc.stderr
