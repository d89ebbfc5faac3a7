"""End-to-end tests of calc_metrics.py on a tiny training run folder (CPU, tiny detector, small test metrics), and of metrics over two gloo processes."""

import json
import os
import pickle
import shutil
import tempfile
import urllib.error

import pytest
import torch

import calc_metrics
import dnnlib
import harness
from metrics import inception_score
from metrics import metric_main
from metrics import precision_recall

pytestmark = pytest.mark.slow

LINE_KEYS = ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp']

#----------------------------------------------------------------------------
# Small metrics (32 generated images) for tests; registered per test.

fid32 = harness.small_fid(32)
kid32 = harness.small_kid(32)

def is32(opts):
    mean, std = inception_score.compute_is(opts, num_gen=32, num_splits=4)
    return dict(is32_mean=mean, is32_std=std)

def pr32(opts):
    p, r = precision_recall.compute_pr(opts, max_real=None, num_gen=32, nhood_size=3, row_batch_size=16, col_batch_size=8)
    return dict(pr32_precision=p, pr32_recall=r)

SMALL_METRICS = (fid32, kid32, is32, pr32)

#----------------------------------------------------------------------------
# Fixtures: a run folder as train.py leaves it (training_options.json, a
# snapshot whose training_set_kwargs point to the dataset, an earlier metric
# line), and an environment without network or user cache.

@pytest.fixture
def run_dir(tmp_path, tiny_G_kwargs, tiny_D_kwargs):
    data = harness.noise_dataset(tmp_path / 'tiny.zip', num_images=24)
    run = tmp_path / 'runs' / '00000-tiny-auto1'
    harness.write_snapshot(str(run), data, tiny_G_kwargs, tiny_D_kwargs, num_images=24)
    earlier = dict(results=dict(fid32=1.0), metric='fid32', total_time=1.0, total_time_str='1s', num_gpus=1,
                   snapshot_pkl='network-snapshot-000000.pkl', timestamp=1.0)
    (run / 'metric-fid32.jsonl').write_text(json.dumps(earlier) + '\n')
    return run


@pytest.fixture
def env(tmp_path, metric_env):
    metric_env(*SMALL_METRICS)
    return tmp_path


def _run(args):
    return harness.invoke(calc_metrics.main, args)

#----------------------------------------------------------------------------

def test_results_are_appended_to_the_run_folder(env, run_dir):
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    result = _run(['--network', pkl, '--metrics', 'fid32,is32', '--device', 'cpu', '--verbose', 'false'])
    assert result.exit_code == 0, result.output

    # The earlier line stays; the new one follows in the training format.
    fid_lines = (run_dir / 'metric-fid32.jsonl').read_text().splitlines()
    assert len(fid_lines) == 2 and json.loads(fid_lines[0])['timestamp'] == 1.0
    record = json.loads(fid_lines[1])
    assert list(record) == LINE_KEYS
    assert record['metric'] == 'fid32' and record['num_gpus'] == 1
    assert record['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    is_lines = (run_dir / 'metric-is32.jsonl').read_text().splitlines()
    assert len(is_lines) == 1 and list(json.loads(is_lines[0])['results']) == ['is32_mean', 'is32_std']

    # The value is what the library computes for the pickle's G and its dataset.
    with open(pkl, 'rb') as f:
        snapshot = pickle.load(f)
    dataset_kwargs = dict(snapshot['training_set_kwargs'], resolution=16, use_labels=False)
    direct = metric_main.calc_metric('fid32', G=snapshot['G_ema'], dataset_kwargs=dataset_kwargs, device='cpu')
    assert record['results']['fid32'] == direct.results['fid32']
    assert fid_lines[1] in result.output


def test_pickle_outside_a_run_folder_only_prints(env, run_dir, tmp_path):
    lone = tmp_path / 'elsewhere'
    lone.mkdir()
    shutil.copy(run_dir / 'network-snapshot-000000.pkl', lone / 'net.pkl')
    result = _run(['--network', str(lone / 'net.pkl'), '--metrics', 'kid32', '--device', 'cpu', '--safe-load', '1'])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(lone)) == ['net.pkl']
    printed = [json.loads(line) for line in result.output.splitlines() if line.startswith('{"results"')]
    assert len(printed) == 1 and printed[0]['metric'] == 'kid32'
    assert 'Results are printed only' in result.output


def test_data_and_mirror_options(env, run_dir, tmp_path):
    other = str(tmp_path / 'other.zip')
    harness.noise_dataset(other, num_images=12)
    pkl = str(run_dir / 'network-snapshot-000000.pkl')

    def kid(*extra):
        result = _run(['--network', pkl, '--metrics', 'kid32', '--device', 'cpu', '--verbose', '0', *extra])
        assert result.exit_code == 0, result.output
        return json.loads((run_dir / 'metric-kid32.jsonl').read_text().splitlines()[-1])['results']['kid32']

    default = kid()
    assert kid() == default
    assert kid('--data', other) != default
    assert kid('--data', other, '--mirror', '1') != kid('--data', other)
    assert len((run_dir / 'metric-kid32.jsonl').read_text().splitlines()) == 5  # one line per run


def test_user_errors(env, run_dir, tmp_path):
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    result = _run(['--network', pkl, '--metrics', 'fid99', '--device', 'cpu'])
    assert result.exit_code != 0 and '--metrics: unknown metric "fid99"; valid metrics: fid50k_full, kid50k_full' in result.output
    result = _run(['--network', str(tmp_path / 'nope.pkl'), '--device', 'cpu'])
    assert result.exit_code != 0 and '--network: file not found' in result.output
    result = _run(['--network', pkl, '--metrics', 'fid32', '--device', 'cpu', '--data', str(tmp_path / 'missing.zip')])
    assert result.exit_code != 0 and "--data: '" in result.output and 'does not exist' in result.output
    assert len((run_dir / 'metric-fid32.jsonl').read_text().splitlines()) == 1


def test_missing_detector_says_how_to_point_to_a_local_file(env, run_dir, monkeypatch):
    monkeypatch.delenv('SG2ADA_DETECTOR_INCEPTION_2015_12_05')
    def no_network(url, num_attempts, verbose):
        raise urllib.error.URLError('no network')
    monkeypatch.setattr(dnnlib.util, '_download', no_network)
    result = _run(['--network', str(run_dir / 'network-snapshot-000000.pkl'), '--metrics', 'fid32', '--device', 'cpu', '--verbose', '0'])
    assert result.exit_code != 0
    assert 'Cannot load the feature detector "inception-2015-12-05"' in result.output
    assert 'SG2ADA_DETECTOR_INCEPTION_2015_12_05=/path/to/inception-2015-12-05.pt' in result.output

#----------------------------------------------------------------------------
# Two gloo processes give the single-process values.

def _ddp_worker(rank, G, dataset_kwargs, init_file, out_file):
    torch.distributed.init_process_group(backend='gloo', init_method='file://' + init_file, rank=rank, world_size=2)
    try:
        for fn in SMALL_METRICS:
            metric_main.register_metric(fn)
        results = metric_main.calc_metrics([fn.__name__ for fn in SMALL_METRICS], G=G, dataset_kwargs=dataset_kwargs,
                                           num_gpus=2, rank=rank, device='cpu', cache=False)
        with open(f'{out_file}.{rank}', 'w') as f:
            json.dump([dict(r.results) for r in results], f)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.ddp
def test_two_processes_match_one(env, run_dir):
    with open(run_dir / 'network-snapshot-000000.pkl', 'rb') as f:
        snapshot = pickle.load(f)
    G, dataset_kwargs = snapshot['G_ema'], dict(snapshot['training_set_kwargs'], max_size=None)
    single = [dict(r.results) for r in metric_main.calc_metrics([fn.__name__ for fn in SMALL_METRICS], G=G,
                                                                dataset_kwargs=dataset_kwargs, device='cpu', cache=False)]
    with tempfile.TemporaryDirectory() as temp_dir:
        out_file = os.path.join(temp_dir, 'results')
        torch.multiprocessing.start_processes(_ddp_worker, args=(G, dataset_kwargs, os.path.join(temp_dir, 'init'), out_file),
                                              nprocs=2, start_method='spawn')
        ranks = [json.load(open(f'{out_file}.{rank}')) for rank in range(2)]
    assert ranks[0] == ranks[1]  # every rank reports rank 0's values
    for got, ref in zip(ranks[0], single):
        assert got.keys() == ref.keys()
        for name in ref:
            assert got[name] == pytest.approx(ref[name], rel=1e-4, abs=1e-6), name

#----------------------------------------------------------------------------
