"""Benchmark: N metrics evaluated in one planned pass vs. N separate calls (tiny generator, tiny random detector, CPU by default).

    python benchmarks/metrics.py                      # fid, kid, is, pr on 256 generated images
    python benchmarks/metrics.py --num-gen=1024 --resolution=32 --device=cuda
"""

import os
import sys
import tempfile
import time

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib  # pylint: disable=wrong-import-position
from metrics import frechet_inception_distance  # pylint: disable=wrong-import-position
from metrics import inception_score  # pylint: disable=wrong-import-position
from metrics import kernel_inception_distance  # pylint: disable=wrong-import-position
from metrics import metric_main  # pylint: disable=wrong-import-position
from metrics import metric_utils  # pylint: disable=wrong-import-position
from metrics import precision_recall  # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# Small versions of the official metrics with num_gen generated images, registered under bench_* names.

def register_bench_metrics(num_gen):
    def bench_fid(opts):
        return dict(bench_fid=frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=num_gen))
    def bench_kid(opts):
        return dict(bench_kid=kernel_inception_distance.compute_kid(opts, max_real=None, num_gen=num_gen, num_subsets=10,
                                                                    max_subset_size=min(num_gen, 100)))
    def bench_is(opts):
        mean, std = inception_score.compute_is(opts, num_gen=num_gen, num_splits=4)
        return dict(bench_is_mean=mean, bench_is_std=std)
    def bench_pr(opts):
        p, r = precision_recall.compute_pr(opts, max_real=None, num_gen=num_gen, nhood_size=3, row_batch_size=256, col_batch_size=256)
        return dict(bench_pr_precision=p, bench_pr_recall=r)
    names = []
    for fn in (bench_fid, bench_kid, bench_is, bench_pr):
        metric_main.register_metric(fn)
        names.append(fn.__name__)
    return names

#----------------------------------------------------------------------------

def _make_dataset(path, num_images, resolution):
    from training.dataset import DatasetWriter
    rng = np.random.default_rng(0)
    with DatasetWriter(path) as writer:
        for i in range(num_images):
            writer.add_image(f'{i:05d}.png', rng.integers(0, 256, [resolution, resolution, 3], dtype=np.uint8))
        writer.write_metadata({'labels': None})

def _make_generator(resolution):
    from training.networks import Generator
    torch.manual_seed(0)
    return Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=resolution, img_channels=3, mapping_kwargs=dict(num_layers=2),
                     synthesis_kwargs=dict(channel_base=1024, channel_max=64, num_fp16_res=0, conv_clamp=None)).eval()

def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out

#----------------------------------------------------------------------------

@click.command()
@click.option('--num-gen', help='Generated images per metric', type=click.IntRange(min=16), default=256, show_default=True)
@click.option('--num-real', help='Real images in the dataset', type=click.IntRange(min=16), default=256, show_default=True)
@click.option('--resolution', help='Image resolution', type=click.Choice(['16', '32', '64']), default='16', show_default=True)
@click.option('--device', help='Torch device', default='cpu', show_default=True)
@click.option('--cache', help='Cache dataset features between calls', type=bool, default=False, show_default=True)
def main(num_gen, num_real, resolution, device, cache):
    """Time 1..4 metrics in one pass against the same metrics one call each."""
    resolution = int(resolution)
    names = register_bench_metrics(num_gen)
    with tempfile.TemporaryDirectory() as temp_dir:
        dnnlib.util.set_cache_dir(os.path.join(temp_dir, 'cache'))
        detector = os.path.join(temp_dir, 'detector.pt')
        metric_utils.build_random_detector(detector, num_features=64)
        os.environ['SG2ADA_DETECTOR_INCEPTION_2015_12_05'] = detector
        os.environ['SG2ADA_DETECTOR_VGG16'] = detector
        data = os.path.join(temp_dir, 'data.zip')
        _make_dataset(data, num_real, resolution)
        kwargs = dict(G=_make_generator(resolution), device=device, cache=cache,
                      dataset_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=data, resolution=resolution))
        metric_main.calc_metric(names[0], **kwargs)  # warm-up: detector load, first-call overheads

        print(f'{num_gen} generated and {num_real} real {resolution}x{resolution} images per metric, device {device}, cache {cache}')
        print(f'{"metrics":<36s} {"one pass":>9s} {"separate":>9s} {"speed-up":>9s}  same values')
        for count in range(1, len(names) + 1):
            chosen = names[:count]
            joint_time, joint = _timed(lambda: metric_main.calc_metrics(chosen, **kwargs))
            separate_time, separate = _timed(lambda: [metric_main.calc_metric(name, **kwargs) for name in chosen])
            same = all(a.results == b.results for a, b in zip(joint, separate))
            print(f'{",".join(n[len("bench_"):] for n in chosen):<36s} {joint_time:>8.2f}s {separate_time:>8.2f}s '
                  f'{separate_time / joint_time:>8.2f}x  {"yes" if same else "NO"}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
