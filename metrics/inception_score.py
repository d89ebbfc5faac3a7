"""Inception Score (IS), from "Improved Techniques for Training GANs" (Salimans et al., 2016)."""

import numpy as np
import scipy.special

from . import metric_utils

#----------------------------------------------------------------------------
# Features IS needs: Inception class probabilities (without the output bias,
# as the original TensorFlow model) of num_gen generated images.

def is_requests(opts, num_gen):
    return dict(gen=metric_utils.generator_request(opts, metric_utils.INCEPTION_URL, dict(no_output_bias=True),
                                                   num_gen=num_gen, capture_all=True))

#----------------------------------------------------------------------------

def inception_score(probs, num_splits):
    """Mean and standard deviation over splits of exp(E_x[KL(p(y|x) || p(y))]), in float64.

    Split i holds rows [i*N//S, (i+1)*N//S); p(y) is the mean of the split's rows.

    Args:
        probs: [N, K] class probabilities.
    Returns:
        (mean, std) floats; std is the population standard deviation.
    """
    probs = np.asarray(probs, np.float64)
    n = probs.shape[0]
    if num_splits < 1 or n < num_splits:
        raise ValueError(f'inception_score: need 1 <= num_splits <= N, got num_splits={num_splits}, N={n}')
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (scipy.special.xlogy(part, part) - scipy.special.xlogy(part, marginal)).sum(axis=1)  # 0 log 0 = 0
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))

#----------------------------------------------------------------------------
# IS of num_gen generated images (NaNs on ranks other than 0).

def compute_is(opts, num_gen, num_splits):
    stats = metric_utils.get_feature_stats(opts, is_requests(opts, num_gen))
    if opts.rank != 0:
        return float('nan'), float('nan')
    return inception_score(stats['gen'].get_all(), num_splits)

#----------------------------------------------------------------------------
