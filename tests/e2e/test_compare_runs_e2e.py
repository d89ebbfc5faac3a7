"""compare_runs.py on real run folders: a tiny toy baseline and a --prior=gmm run trained here through train.py,
then the page for their --outdir."""

import os
import re

import pytest
from click.testing import CliRunner

import compare_runs
import dnnlib
import train
from metrics import toy_metrics

pytestmark = pytest.mark.slow

TINY = ['--cfg=toy', '--data=toy:ring8,n=400', '--batch=32', '--tick=0.064', '--snap=2', '--kimg=0.256', '--metrics=toy2k']

@pytest.fixture(scope='module')
def outdir(tmp_path_factory):
    root = tmp_path_factory.mktemp('cmp')
    mp = pytest.MonkeyPatch()
    mp.setenv('DNNLIB_CACHE_DIR', str(root / 'cache'))
    mp.setattr(dnnlib.util, '_dnnlib_cache_dir', None)
    mp.setattr(toy_metrics, 'NUM_POINTS', 64)
    for extra in ([], ['--prior=gmm']):
        result = CliRunner().invoke(train.main, [f'--outdir={root / "runs"}', *TINY, *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    yield root / 'runs'
    mp.undo()


def test_page_of_a_baseline_and_a_prior_run(outdir, tmp_path):
    out = tmp_path / 'report.html'
    result = CliRunner().invoke(compare_runs.main, [str(outdir), f'--out={out}'])
    assert result.exit_code == 0, result.output
    names = sorted(os.listdir(outdir))
    assert len(names) == 2 and all(f'{name}: finished' in result.output for name in names)
    page = out.read_text(encoding='utf-8')

    header = re.search(r'<table id="runs-table"><thead>(.*?)</thead>', page, re.S).group(1)
    assert 'loss_kwargs.class_name' in header and 'random_seed' not in header
    assert re.findall(r'data-status="([^"]+)"', page) == ['finished', 'finished']
    assert re.findall(r'<td>(none|gmm)</td>', page) == ['none', 'gmm']
    # Toy metrics in the table and as curves; training curves with the prior's statistics.
    assert len(re.findall(r'data-metric="toy2k_modes">', page)) == 2
    assert 'data-plot="metric:toy2k_emd"' in page
    assert 'data-plot="stat:Loss/G/loss"' in page and 'data-plot="stat:Prior/gmm/nll"' in page
    # Toy pictures of both runs, embedded.
    toy_pictures = sum(len([n for n in os.listdir(outdir / name) if re.fullmatch(r'toy\d+\.png', n)]) for name in names)
    assert toy_pictures >= 2
    section = re.search(r'<h3>toy</h3>(.*?)(<h2|<h3|<script)', page, re.S).group(1)
    assert len(re.findall(r'<img class="pic" src="data:image/png;base64,', section)) == toy_pictures
    assert 'toy run, see its toy pictures below' in page

#----------------------------------------------------------------------------
