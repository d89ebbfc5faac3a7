"""Classifier-based metrics of Che et al. 2017 ("Mode Regularized Generative Adversarial Networks", §4): Inception-style score (Eq. 3) and MODE score (Eq. 4) with a user-given classifier, and #Miss / KL of the generated-class histogram (Table 2).

With p(y|x) the classifier's softmax on a generated image x, p*(y) its mean
over the generated images, and p(y) the class distribution of the training
data:
  score = exp( E_x KL(p(y|x) || p*(y)) )                          Eq. 3
  MODE  = exp( E_x KL(p(y|x) || p(y)) - KL(p*(y) || p(y)) )        Eq. 4
  #Miss = number of classes in [0, K) that the classifier never predicts
          (argmax) for any generated image
  KL    = KL(h_gen || p(y)), h_gen the histogram of predicted classes
          (direction KL(p_gen || p_train), spec §3.6 item 12; it is +inf when
          a class of zero training probability is generated).
p(y), where the paper is not specific: the histogram of the dataset's class
labels (dataset.json) when the dataset has integer labels of the classifier's
K classes; otherwise the classifier's mean softmax over the dataset's images
(its predicted label distribution; never zero, so KL stays finite).
"""

import numpy as np
import scipy.special

import dnnlib
from . import classifier as classifier_module
from . import metric_utils

#----------------------------------------------------------------------------
# The formulas (float64 numpy).

def _check_probs(probs, what):
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f'{what}: expected class probabilities [N, K] with N > 0, got shape {list(probs.shape)}')
    return probs

def _kl_rows(p, q):
    # Row-wise KL(p || q) with 0 log 0 = 0; q broadcasts against p.
    return (scipy.special.xlogy(p, p) - scipy.special.xlogy(p, q)).sum(axis=-1)

def classifier_score(probs):
    """Inception-style score exp(E_x KL(p(y|x) || p*(y))) of Che et al. 2017 Eq. 3, over all rows (one split).

    Args:
        probs: [N, K] class probabilities of generated images.
    Returns:
        float in [1, K].
    """
    probs = _check_probs(probs, 'classifier_score')
    marginal = probs.mean(axis=0, keepdims=True)
    return float(np.exp(_kl_rows(probs, marginal).mean()))

def mode_score(probs, train_marginal):
    """MODE score exp(E_x KL(p(y|x) || p(y)) - KL(p*(y) || p(y))) of Che et al. 2017 Eq. 4.

    Args:
        probs:          [N, K] class probabilities of generated images.
        train_marginal: [K] class distribution p(y) of the training data.
    Returns:
        float (0 when a generated image puts mass on a class of zero p(y)).
    """
    probs = _check_probs(probs, 'mode_score')
    p_train = np.asarray(train_marginal, dtype=np.float64)
    if p_train.shape != (probs.shape[1],):
        raise ValueError(f'mode_score: train_marginal must have shape [{probs.shape[1]}], got {list(p_train.shape)}')
    marginal = probs.mean(axis=0)
    with np.errstate(divide='ignore', invalid='ignore'):
        exponent = _kl_rows(probs, p_train).mean() - _kl_rows(marginal, p_train)
    if not np.isfinite(exponent):
        return 0.0
    return float(np.exp(exponent))

def missing_classes(predicted, num_classes):
    """#Miss: how many of the classes 0..K-1 never occur among the predicted classes.

    Args:
        predicted: [N] integer classes (argmax of the classifier).
    Returns:
        int in [0, K].
    """
    predicted = np.asarray(predicted)
    return int(num_classes - np.unique(predicted[(predicted >= 0) & (predicted < num_classes)]).size)

def class_histogram_kl(predicted, train_marginal):
    """KL(h_gen || p(y)) of the histogram of predicted classes against the training distribution.

    Args:
        predicted:      [N] integer classes in [0, K).
        train_marginal: [K] class distribution p(y) of the training data.
    Returns:
        float >= 0; +inf when a generated class has p(y) = 0.
    """
    p_train = np.asarray(train_marginal, dtype=np.float64)
    hist = np.bincount(np.asarray(predicted, dtype=np.int64), minlength=p_train.size).astype(np.float64)
    if hist.size != p_train.size:
        raise ValueError(f'class_histogram_kl: predicted classes reach {hist.size - 1}, but train_marginal has {p_train.size} classes')
    hist /= hist.sum()
    with np.errstate(divide='ignore'):
        return float(_kl_rows(hist, p_train))

#----------------------------------------------------------------------------
# Class histogram of the dataset's labels when they are K-class indices; None otherwise.

def dataset_label_marginal(dataset_kwargs, num_classes):
    dataset = dnnlib.util.construct_class_by_name(**dict(dataset_kwargs, use_labels=True))
    try:
        if not dataset.has_labels or not dataset.has_onehot_labels or dataset.label_shape != [num_classes]:
            return None
        raw = np.array([int(dataset.get_details(idx).raw_label) for idx in range(len(dataset))], dtype=np.int64)
        counts = np.bincount(raw, minlength=num_classes).astype(np.float64)
        return counts / counts.sum()
    finally:
        dataset.close()

#----------------------------------------------------------------------------
# Class probabilities of num_gen generated images and p(y). Returns
# (probs [num_gen, K], p(y) [K]); None on ranks other than 0.

def _classifier_stats(opts, metric, num_gen):
    try:
        path = classifier_module.classifier_path(opts.classifier, what=metric)
        detector = classifier_module.load_classifier(path, device=opts.device)
    except ValueError as err:
        raise metric_utils.MetricOptionsError(str(err)) from err
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    requests = dict(gen=metric_utils.generator_request(opts, detector, dict(), num_gen=num_gen, capture_all=True))
    num_classes = _num_classes(detector.net)
    marginal = dataset_label_marginal(opts.dataset_kwargs, num_classes) if num_classes is not None else None
    if marginal is None:
        requests['real'] = metric_utils.dataset_request(opts, detector, dict(), max_items=None, capture_mean_cov=True)
    stats = metric_utils.get_feature_stats(opts, requests)
    if opts.rank != 0:
        return None
    probs = stats['gen'].get_all().astype(np.float64)
    if marginal is None:
        marginal = stats['real'].get_mean_cov()[0]
        marginal = marginal / marginal.sum()
    return probs, marginal

# K of a SmallClassifier (also scripted); None for other networks (then p(y) comes from predictions).
def _num_classes(net):
    return int(net.num_classes) if hasattr(net, 'num_classes') else None

# MODE score (Eq. 4) and classifier score (Eq. 3) of num_gen generated images.
def compute_mode(opts, metric, num_gen):
    out = _classifier_stats(opts, metric, num_gen)
    if out is None:
        return float('nan'), float('nan')
    probs, marginal = out
    return mode_score(probs, marginal), classifier_score(probs)

# #Miss and KL of the predicted-class histogram of num_gen generated images.
def compute_miss(opts, metric, num_gen):
    out = _classifier_stats(opts, metric, num_gen)
    if out is None:
        return float('nan'), float('nan')
    probs, marginal = out
    predicted = probs.argmax(axis=1)
    return float(missing_classes(predicted, probs.shape[1])), class_histogram_kl(predicted, marginal)

#----------------------------------------------------------------------------
