"""The evaluation protocols of the prior papers as registered metrics: FID-5k and IS-5k x 10 (PriorGAN Table 1), MODE score and #Miss / KL with a user-given classifier (Che et al. 2017), MS-SSIM diversity (RFGAN Table 1), density and coverage (Naeem et al. 2020), and FID on a ResNet-101 backbone.

Every metric asks for its features through metric_utils.get_feature_stats,
so metrics that use the same generated images share one generator pass: the
generator pass is as long as the longest request, and every request reads the
first n images of the same seeded stream. See docs/metrics.md for each
protocol, its sample counts and the choices made where the papers are silent.
The counts below are read at call time (tests lower them).
"""

from . import backbones
from . import classifier_metrics
from . import density_coverage
from . import frechet_inception_distance
from . import inception_score
from . import metric_main
from . import metric_utils
from . import ms_ssim

#----------------------------------------------------------------------------
# Sample counts.

FID5K_NUM_GEN = 5000        # PriorGAN Table 1, FID(5k): 5k generated images ...
FID5K_NUM_REAL = 10000      # ... against 10k real images (the first 10k of the dataset, not mirrored).
IS5K_NUM_GEN = 5000         # IS(5k): a score of 5k images ...
IS5K_NUM_RUNS = 10          # ... computed 10 times on disjoint images; mean and std reported.
MODE_NUM_GEN = 10000        # MODE score and classifier score (spec §3.6 item 13).
MISS_NUM_GEN = 100000       # #Miss and KL (spec §3.6 item 12).
MSSSIM_NUM_PAIRS = 10000    # MS-SSIM pairs, generated and real (spec §4.6 item 8).
DC_NUM_GEN = 50000          # Density/coverage: the generated and real features of pr50k3_full ...
DC_MAX_REAL = 200000
DC_NHOOD_SIZE = 5           # ... with k = 5 (Naeem et al.).
FID_R101_NUM_GEN = 50000
R101_RESIZE = 224           # ResNet-101 input side (ImageNet).

#----------------------------------------------------------------------------
# Helpers.

def _plain_reals(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)

# FID on the ResNet-101 backbone (features from metrics/backbones.py).
def _fid_r101(opts, max_real, num_gen):
    detector = backbones.resnet_detector_file(resize_to=R101_RESIZE, num_gpus=opts.num_gpus, rank=opts.rank, verbose=opts.progress.verbose)
    stats = metric_utils.get_feature_stats(opts, dict(
        real=metric_utils.dataset_request(opts, detector, dict(), max_items=max_real, capture_mean_cov=True),
        gen=metric_utils.generator_request(opts, detector, dict(), num_gen=num_gen, capture_mean_cov=True)))
    if opts.rank != 0:
        return float('nan')
    mu_real, sigma_real = stats['real'].get_mean_cov()
    mu_gen, sigma_gen = stats['gen'].get_mean_cov()
    return frechet_inception_distance.frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)

#----------------------------------------------------------------------------
# PriorGAN Table 1.

@metric_main.register_metric
def fid5k(opts):
    _plain_reals(opts)
    return dict(fid5k=frechet_inception_distance.compute_fid(opts, max_real=FID5K_NUM_REAL, num_gen=FID5K_NUM_GEN))

@metric_main.register_metric
def is5k(opts):
    # Run i scores images [i * 5k, (i + 1) * 5k) of the seeded stream: the splits of is50k.
    _plain_reals(opts)
    mean, std = inception_score.compute_is(opts, num_gen=IS5K_NUM_GEN * IS5K_NUM_RUNS, num_splits=IS5K_NUM_RUNS)
    return dict(is5k_mean=mean, is5k_std=std)

#----------------------------------------------------------------------------
# Che et al. 2017, with the classifier of --classifier / $SG2ADA_CLASSIFIER.

@metric_main.register_metric
def mode10k(opts):
    mode, score = classifier_metrics.compute_mode(opts, 'mode10k', num_gen=MODE_NUM_GEN)
    return dict(mode10k=mode, mode10k_is=score)

@metric_main.register_metric
def miss100k(opts):
    miss, kl = classifier_metrics.compute_miss(opts, 'miss100k', num_gen=MISS_NUM_GEN)
    return dict(miss100k=miss, miss100k_kl=kl)

#----------------------------------------------------------------------------
# RFGAN Table 1.

@metric_main.register_metric
def msssim10k(opts):
    _plain_reals(opts)
    gen, real = ms_ssim.compute_ms_ssim(opts, num_pairs=MSSSIM_NUM_PAIRS)
    return dict(msssim10k=gen, msssim10k_real=real)

#----------------------------------------------------------------------------
# Naeem et al. 2020, next to pr50k3_full (same features).

@metric_main.register_metric
def dc50k5_full(opts):
    _plain_reals(opts)
    density, coverage = density_coverage.compute_dc(opts, max_real=DC_MAX_REAL, num_gen=DC_NUM_GEN, nhood_size=DC_NHOOD_SIZE,
                                                    row_batch_size=10000, col_batch_size=10000)
    return dict(dc50k5_full_density=density, dc50k5_full_coverage=coverage)

#----------------------------------------------------------------------------
# FID on ResNet-101 features.

@metric_main.register_metric
def fid50k_full_r101(opts):
    _plain_reals(opts)
    return dict(fid50k_full_r101=_fid_r101(opts, max_real=None, num_gen=FID_R101_NUM_GEN))

@metric_main.register_metric
def fid5k_r101(opts):
    _plain_reals(opts)
    return dict(fid5k_r101=_fid_r101(opts, max_real=FID5K_NUM_REAL, num_gen=FID5K_NUM_GEN))

#----------------------------------------------------------------------------
