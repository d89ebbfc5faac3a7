"""compare_runs.py on small fake run folders (written here, no training): run discovery, option differences,
statuses, curves, embedded pictures, atomic rewrite, and (when Chromium is installed) a real browser render."""

import base64
import json
import os
import re
import shutil
import subprocess
import time

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import compare_runs

#----------------------------------------------------------------------------
# Fake run folders.

BASE_OPTIONS = dict(
    num_gpus=1, image_snapshot_ticks=2, network_snapshot_ticks=2, metrics=['fid50k_full'], random_seed=0,
    training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path='/data/shapes.zip', resolution=8, use_labels=False),
    G_kwargs=dict(class_name='training.networks.Generator', z_dim=8, mapping_kwargs=dict(num_layers=2)),
    G_opt_kwargs=dict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99]),
    loss_kwargs=dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1.0),
    total_kimg=8, batch_size=16,
)

def gmm_options(components=7, **changes):
    options = json.loads(json.dumps(dict(BASE_OPTIONS, **changes)))
    options['loss_kwargs'] = dict(class_name='priors.loss.PriorLoss', r1_gamma=1.0,
                                  prior_kwargs=[dict(name='gmm', components=components, weight=0.1, feature='tiny')])
    return options

def write_png(path, color, size=(8, 8)):
    PIL.Image.new('RGB', size, color).save(path)

def stats_line(kimg, loss_g, total_sec, **extra):
    record = {'Loss/G/loss': dict(num=16, mean=loss_g, std=0.1), 'Loss/D/loss': dict(num=16, mean=1.3, std=0.1)}
    record.update({name: dict(num=1, mean=value, std=0.0) for name, value in extra.items()})
    record.update({'Progress/kimg': dict(num=1, mean=kimg, std=0.0), 'Timing/total_sec': dict(num=1, mean=total_sec, std=0.0),
                   'Timing/sec_per_kimg': dict(num=1, mean=10.0 + kimg, std=0.0), 'Timing/sec_per_tick': dict(num=1, mean=5.0, std=0.0),
                   'Progress/augment': dict(num=1, mean=0.01 * kimg, std=0.0), 'timestamp': 1.0e9 + total_sec})
    return json.dumps(record)

def make_run(root, name, options=BASE_OPTIONS, ticks=((0, 0.9), (2, 0.8), (4, 0.7)), metrics=(('fid50k_full', ((0, 300.0), (4, 120.0))),),
             exiting=True, pictures=(), extra_stats=None, age_sec=0):
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, 'training_options.json'), 'w') as f:
        json.dump(dict(options, run_dir=path), f, indent=2)
    with open(os.path.join(path, 'stats.jsonl'), 'w') as f:
        for i, (kimg, loss_g) in enumerate(ticks):
            f.write(stats_line(kimg, loss_g, 60.0 * i, **(extra_stats or {})) + '\n')
    for metric, values in metrics:
        with open(os.path.join(path, f'metric-{metric}.jsonl'), 'w') as f:
            for kimg, value in values:
                f.write(json.dumps(dict(results={metric: value}, metric=metric, snapshot_pkl=f'network-snapshot-{kimg:06d}.pkl')) + '\n')
    write_png(os.path.join(path, 'reals.png'), (0, 0, 255))
    write_png(os.path.join(path, 'fakes_init.png'), (10, 10, 10))
    for i, (kimg, _) in enumerate(ticks):
        write_png(os.path.join(path, f'fakes{kimg:06d}.png'), (40 * i, 200, 30))
    for picture in pictures:
        write_png(os.path.join(path, picture), (255, 128, 0))
    with open(os.path.join(path, 'log.txt'), 'w') as f:
        f.write('Loading training set...\n\ntick 0     kimg 0.0\n' + ('\nExiting...\n' if exiting else ''))
    if age_sec:
        old = time.time() - age_sec
        for file in os.listdir(path):
            os.utime(os.path.join(path, file), (old, old))
    return path

def page_of(runs_or_specs, out, **kwargs):
    compare_runs.build_report(runs_or_specs, str(out), **kwargs)
    with open(out, encoding='utf-8') as f:
        return f.read()

def row_of(page, name):
    rows = re.findall(r'<tr><td class="name">.*?</tr>', page, re.S)
    return next(row for row in rows if f'>{name}</span>' in row)

def status_of(page, name):
    return re.search(r'data-status="([^"]+)"', row_of(page, name)).group(1)

#----------------------------------------------------------------------------

def test_find_runs_reads_run_folders_and_outdirs(tmp_path):
    a = make_run(tmp_path / 'runs', '00000-shapes-demo')
    b = make_run(tmp_path / 'runs', '00002-shapes-demo-gmm', options=gmm_options())
    os.makedirs(tmp_path / 'runs' / '00001-empty')          # numbered, but no run files: not a run
    os.makedirs(tmp_path / 'runs' / 'notes')
    assert compare_runs.find_runs(str(tmp_path / 'runs')) == [a, b]
    assert compare_runs.find_runs(a) == [a]
    assert compare_runs.find_runs(str(tmp_path / 'runs' / '00000*')) == [a]
    with pytest.raises(compare_runs.RunSpecError, match='neither a run folder'):
        compare_runs.find_runs(str(tmp_path / 'runs' / 'notes'))
    with pytest.raises(compare_runs.RunSpecError, match='not found'):
        compare_runs.find_runs(str(tmp_path / 'nowhere'))


def test_option_differences_only_what_differs(tmp_path):
    lr_run = dict(BASE_OPTIONS, G_opt_kwargs=dict(BASE_OPTIONS['G_opt_kwargs'], lr=0.0025))
    paths = [make_run(tmp_path, '00000-base'), make_run(tmp_path, '00001-lr', options=lr_run),
             make_run(tmp_path, '00002-gmm7', options=gmm_options(7)), make_run(tmp_path, '00003-gmm20', options=gmm_options(20))]
    runs = [compare_runs.Run(p) for p in paths]
    # run_dir always differs and is left out; a prior's own options count only among the runs that have it.
    assert compare_runs.option_differences(runs) == ['G_opt_kwargs.lr', 'loss_kwargs.class_name', 'prior:gmm.components']
    assert compare_runs.option_differences(runs[:2]) == ['G_opt_kwargs.lr']
    assert compare_runs.option_differences([runs[0], runs[2]]) == ['loss_kwargs.class_name']
    assert [r.priors for r in runs] == [[], [], ['gmm'], ['gmm']]

    page = page_of([str(tmp_path)], tmp_path / 'report.html')
    header = re.search(r'<table id="runs-table"><thead>(.*?)</thead>', page, re.S).group(1)
    assert re.findall(r'<th>([^<]+)</th>', header)[:6] == ['run', 'status', 'prior(s)', 'G_opt_kwargs.lr', 'loss_kwargs.class_name', 'prior:gmm.components']
    assert 'random_seed' not in header and 'run_dir' not in header
    cells = re.findall(r'data-option="prior:gmm.components">([^<]*)<', page)
    assert cells == ['—', '—', '7', '20']


def test_statuses(tmp_path):
    make_run(tmp_path, '00000-finished')
    make_run(tmp_path, '00001-running', exiting=False)
    make_run(tmp_path, '00002-stopped', exiting=False, age_sec=3 * 3600)
    make_run(tmp_path, '00003-diverged', exiting=False, ticks=((0, 0.9), (2, float('nan'))), age_sec=3 * 3600)
    path = make_run(tmp_path, '00004-aborted')
    with open(os.path.join(path, 'log.txt'), 'a') as f:
        f.write('\nAborting...\n\nExiting...\n')
    # Strict-JSON NaN as train.py writes it ("NaN" string), in a Prior/ statistic.
    path = make_run(tmp_path, '00005-diverged-strict', exiting=False)
    with open(os.path.join(path, 'stats.jsonl'), 'a') as f:
        f.write(json.dumps({'Prior/gmm/nll': dict(num=4, mean='NaN', std='NaN'), 'Progress/kimg': dict(num=1, mean=6, std=0)}) + '\n')
    # A resumed run: an older session finished, the current one has not.
    path = make_run(tmp_path, '00006-resumed-running', exiting=False)
    with open(os.path.join(path, 'log.txt'), 'w') as f:
        f.write('Loading training set...\nExiting...\nLoading training set...\ntick 0\n')

    page = page_of([str(tmp_path)], tmp_path / 'report.html')
    assert status_of(page, '00000-finished') == 'finished'
    assert status_of(page, '00001-running') == 'running'
    assert status_of(page, '00002-stopped') == 'stopped early'
    assert status_of(page, '00003-diverged') == 'diverged'
    assert status_of(page, '00004-aborted') == 'stopped early'
    assert status_of(page, '00005-diverged-strict') == 'diverged'
    assert status_of(page, '00006-resumed-running') == 'running'
    # The diverged run's curve shows the NaN as a marker, not as a number in the path.
    plot = re.search(r'<div data-plot="stat:Loss/G/loss">(.*?)</svg>', page, re.S).group(1)
    assert 'class="nan"' in plot and 'nan,' not in plot.lower().replace('class="nan"', '')


def test_curves_pictures_and_table(tmp_path):
    a = make_run(tmp_path, '00000-base', metrics=(('fid50k_full', ((0, 300.0), (4, 120.0))), ('pr50k3_full', ())))
    b = make_run(tmp_path, '00001-gmm', options=gmm_options(), ticks=((0, 0.9), (2, 0.6), (4, 0.5), (6, 0.4)),
                 metrics=(('fid50k_full', ((0, 310.0), (4, 100.0), (6, 90.0))),),
                 pictures=('prior-components.png', 'prior-freqs000002.png', 'prior-freqs000006.png'),
                 extra_stats={'Prior/gmm/nll': 5.0})
    page = page_of([a, b], tmp_path / 'report.html')

    # One metric plot per result, a line per run that has it, in the run's colour.
    plot = re.search(r'<div data-plot="metric:fid50k_full">(.*?)</svg>', page, re.S).group(1)
    assert plot.count('<polyline') == 2
    assert 'stroke="#1f77b4"' in plot and 'stroke="#d62728"' in plot
    assert plot.count('<circle') == 5
    # Last metric values in the table.
    assert re.findall(r'data-metric="fid50k_full">([^<]+)<', page) == ['120', '90']
    # Default training curves: losses, Prior/*, augment; not the timings (those need --stats).
    plotted = re.findall(r'data-plot="stat:([^"]+)"', page)
    assert plotted == ['Loss/G/loss', 'Loss/D/loss', 'Progress/augment', 'Prior/gmm/nll']
    page_t = page_of([a, b], tmp_path / 'report-t.html', stats_regex='^Timing/')
    assert re.findall(r'data-plot="stat:([^"]+)"', page_t) == ['Timing/total_sec', 'Timing/sec_per_kimg', 'Timing/sec_per_tick']
    # kimg, wall time, sec/kimg (median over ticks after the first: 12, 14, 16 -> 14).
    row_b = row_of(page, '00001-gmm')
    assert '6 / 8' in row_b and '3m 00s' in row_b and '>14<' in row_b

    # Pictures: embedded as data URIs only; the newest fakes of each run; prior pictures; a slider per run.
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert sources and all(s.startswith('data:image/png;base64,') for s in sources)
    links = re.findall(r'(?:src|href|url)\s*[=(]\s*["\']?([^"\')]+)', page)
    assert len(links) == len(sources) and all(link.startswith('data:') for link in links)  # nothing to fetch
    def uri(path):
        with open(path, 'rb') as f:
            return 'data:image/png;base64,' + base64.b64encode(f.read()).decode()
    newest = re.search(r'<h2 id="fakes">.*?<h3>', page, re.S).group(0)
    assert uri(os.path.join(a, 'fakes000004.png')) in newest and uri(os.path.join(b, 'fakes000006.png')) in newest
    assert uri(os.path.join(b, 'prior-components.png')) in page and uri(os.path.join(b, 'prior-freqs000006.png')) in page
    assert len(re.findall(r'<input type="range" min="0" max="4"', page)) == 1   # b: init + 4 snapshots
    assert len(re.findall(r'<input type="range" min="0" max="3"', page)) == 1   # a: init + 3 snapshots
    assert '<h3>prior-freqs</h3>' in page and '<h3>prior-components</h3>' in page


def test_runs_without_metrics_or_stats(tmp_path):
    path = os.path.join(tmp_path, '00000-started')
    os.makedirs(path)
    with open(os.path.join(path, 'training_options.json'), 'w') as f:
        json.dump(BASE_OPTIONS, f)
    with open(os.path.join(path, 'stats.jsonl'), 'w') as f:
        f.write('{"Loss/G/loss": {"num": 1, "me')  # a line being written right now
    make_run(tmp_path, '00001-nometrics', metrics=())
    page = page_of([str(tmp_path)], tmp_path / 'report.html')
    assert 'No metric-*.jsonl in any run' in page
    assert '00000-started: no fakes*.png yet' in page
    assert status_of(page, '00000-started') == 'running'


def test_toy_run(tmp_path):
    options = dict(BASE_OPTIONS, training_set_kwargs=dict(class_name='training.toy_data.ToyDataset', path='toy:ring8', resolution=1),
                   metrics=['toy2k'])
    path = make_run(tmp_path, '00000-ring8-toy', options=options, metrics=(('toy2k_modes', ((0, 1.0), (4, 6.0))),),
                    pictures=('toy000000.png', 'toy000002.png', 'toy000004.png'))
    run = compare_runs.Run(path)
    assert run.is_toy and sorted(run.pictures) == ['toy']
    page = page_of([path], tmp_path / 'report.html')
    assert 'toy run, see its toy pictures below' in page
    assert re.findall(r'data-metric="toy2k_modes">([^<]+)<', page) == ['6']
    assert '<h3>toy</h3>' in page and '<h2 id="reals">' not in page


def test_rerun_updates_the_page_atomically(tmp_path):
    path = make_run(tmp_path, '00000-growing', exiting=False)
    out = tmp_path / 'report.html'
    page = page_of([path], out)
    assert re.findall(r'data-metric="fid50k_full">([^<]+)<', page) == ['120']
    inode = os.stat(out).st_ino
    with open(os.path.join(path, 'metric-fid50k_full.jsonl'), 'a') as f:
        f.write(json.dumps(dict(results={'fid50k_full': 77.5}, metric='fid50k_full', snapshot_pkl='network-snapshot-000006.pkl')) + '\n')
    with open(os.path.join(path, 'stats.jsonl'), 'a') as f:
        f.write(stats_line(6, 0.3, 180.0) + '\n')
    page = page_of([path], out)
    assert re.findall(r'data-metric="fid50k_full">([^<]+)<', page) == ['77.5']
    assert '6 / 8' in page
    assert os.stat(out).st_ino != inode                     # a new file renamed into place
    assert sorted(os.listdir(tmp_path)) == ['00000-growing', 'report.html']  # no temporary file left


def test_large_grids_are_cropped(tmp_path):
    path = make_run(tmp_path, '00000-big')
    PIL.Image.fromarray(np.random.RandomState(0).randint(0, 255, [8 * 20, 8 * 20, 3], dtype=np.uint8)).save(os.path.join(path, 'fakes000004.png'))
    page = page_of([path], tmp_path / 'report.html', tiles=3)
    newest = re.search(r'<h2 id="fakes">.*?<h3>', page, re.S).group(0)
    data = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', newest).group(1))
    import io
    with PIL.Image.open(io.BytesIO(data)) as image:
        assert image.size == (24, 24)


def test_svg_plot_and_ticks():
    assert compare_runs.nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0] or \
        [round(t, 9) for t in compare_runs.nice_ticks(0, 1)] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert [round(t, 9) for t in compare_runs.nice_ticks(3, 47)] == [10, 20, 30, 40]
    svg = compare_runs.svg_plot('x', [dict(label='a', color='#000', points=[(0, 1.0), (1, 2.0), (2, float('inf')), (3, 1.5), (4, 1.0)])])
    assert svg.count('<polyline') == 2 and 'class="nan"' in svg and 'inf,' not in svg
    empty = compare_runs.svg_plot('x', [dict(label='a', color='#000', points=[(0, float('nan'))])])
    assert 'no finite values' in empty
    log_plot = compare_runs.svg_plot('x', [dict(label='a', color='#000', points=[(0, 1e4), (1, 1.0), (2, 0.1)])])
    assert 'log scale' in log_plot


def test_cli(tmp_path):
    path = make_run(tmp_path / 'runs', '00000-a')
    runner = CliRunner()
    result = runner.invoke(compare_runs.main, [str(tmp_path / 'runs'), f'--out={tmp_path / "r.html"}'])
    assert result.exit_code == 0, result.output
    assert '00000-a: finished' in result.output and os.path.isfile(tmp_path / 'r.html')
    result = runner.invoke(compare_runs.main, [str(tmp_path / 'nowhere'), f'--out={tmp_path / "r2.html"}'])
    assert result.exit_code == 1 and 'RUN: run folder not found' in result.output and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(compare_runs.main, [path, f'--out={tmp_path / "r3.html"}', '--stats=Loss/(G'])
    assert result.exit_code == 2 and 'is not a regular expression' in result.output
    result = runner.invoke(compare_runs.main, [path, f'--out={tmp_path}'])
    assert result.exit_code == 1 and '--out' in result.output and 'is a folder' in result.output

#----------------------------------------------------------------------------
# The page in a real browser: every picture decodes. Skipped without Chromium (Debian: apt-get install chromium).

BROWSERS = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
PROBE = ("<script>window.addEventListener('load', function () {"
         "var all = Array.prototype.slice.call(document.images);"
         "var ok = all.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;"
         "var d = document.createElement('div'); d.id = 'probe';"
         "d.textContent = 'images=' + all.length + ' loaded=' + ok + ' svg=' + document.querySelectorAll('svg').length;"
         "document.body.appendChild(d); });</script>")

def render_in_browser(html_path, tmp_path):
    browser = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if browser is None:
        pytest.skip('no Chromium/Chrome installed (Debian: apt-get install -y chromium)')
    command = [browser, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', '--no-first-run', f'--user-data-dir={tmp_path / "profile"}',
               '--virtual-time-budget=5000', '--dump-dom', 'file://' + os.path.abspath(html_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r'<div id="probe">images=(\d+) loaded=(\d+) svg=(\d+)</div>', result.stdout)
    assert match is not None, result.stderr[-2000:]
    return tuple(int(v) for v in match.groups())


def test_page_renders_in_a_browser(tmp_path):
    a = make_run(tmp_path / 'runs', '00000-base')
    make_run(tmp_path / 'runs', '00001-gmm', options=gmm_options(), pictures=('prior-components.png', 'prior-freqs000004.png'))
    page = page_of([str(tmp_path / 'runs')], tmp_path / 'report.html')
    num_images = len(re.findall(r'<img ', page))
    probe = tmp_path / 'probe.html'
    probe.write_text(page.replace('</body>', PROBE + '</body>'), encoding='utf-8')
    images, loaded, svgs = render_in_browser(probe, tmp_path)
    assert images == num_images and loaded == images and images >= 10
    assert svgs == len(re.findall(r'<svg ', page)) and svgs >= 3
    # The check itself: a broken picture is seen as not loaded.
    with open(os.path.join(a, 'fakes000004.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + b'broken' * 10)
    page = page_of([str(tmp_path / 'runs')], tmp_path / 'report.html')
    probe.write_text(page.replace('</body>', PROBE + '</body>'), encoding='utf-8')
    images, loaded, _ = render_in_browser(probe, tmp_path)
    assert loaded < images

#----------------------------------------------------------------------------
