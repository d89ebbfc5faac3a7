"""Numerical tests of the PriorGAN quality score (QS) and diversity difference score (DDS, Eq. 7) and of finding the prior they use."""

import numpy as np
import pytest
import torch

import priors  # registers the prior metrics
from metrics import metric_main
from metrics import metric_utils
from priors.gmm import metrics as prior_metrics
from priors.gmm import prior_file

#----------------------------------------------------------------------------
# A small prior fitted on two well separated clusters of random features,
# as the PriorFile a prior file would give (no images, no extractor run).

FEATURE_DIM = 6

def _toy_features(seed, num=40, shift=0.0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0] * FEATURE_DIM, [4.0] * FEATURE_DIM])
    labels = rng.integers(0, 2, num)
    return torch.tensor(centres[labels] + rng.standard_normal([num, FEATURE_DIM]) + shift, dtype=torch.float32)

def _toy_record(features, components=2, pca=None, holdout=0.0, **settings):
    # holdout 0: the reference log-likelihoods are every real image's, so the reals score (N + 1) / 2N.
    model = prior_file.fit_prior_model(features, components=components, pca=pca, seed=0, holdout=holdout)
    return dict(
        format_version  = prior_file.FORMAT_VERSION,
        kind            = prior_file.FILE_KIND,
        created         = '2020-01-01 00:00:00',
        extractor       = dict(name='tiny', feature_dim=FEATURE_DIM, spec=dict(name='tiny', feature_dim=FEATURE_DIM, seed=0), source=None),
        dataset         = dict(name='toy', path=None),
        settings        = dict(components=components, pca=pca, **settings),
        **model,
    )

@pytest.fixture
def toy():
    features = _toy_features(0)
    record = _toy_record(features, pca=3)
    return features, record, prior_metrics.prior_from_record(record)

#----------------------------------------------------------------------------
# QS on hand-computed examples.

def test_quality_score_hand_computed():
    real = [1.0, 2.0, 3.0, 4.0]
    # Ranks (fraction of reals <= value): 0, 2/4, 4/4, 4/4 -> mean 0.625.
    assert prior_metrics.quality_score([0.0, 2.5, 4.0, 10.0], real) == 0.625
    # A tie counts as "<=": 2 is above 1 and 2 of the 4 reals.
    assert prior_metrics.quality_score([2.0], real) == 0.5
    assert prior_metrics.quality_score(torch.tensor([-float('inf'), float('inf')]), torch.tensor(real)) == 0.5
    assert prior_metrics.quality_score([-7.0, -9.0], real) == 0.0


def test_quality_score_of_real_values_is_about_one_half():
    real = np.sort(np.random.default_rng(1).standard_normal(5))
    # Ranks 1/5 .. 5/5 -> (N + 1) / 2N = 0.6.
    assert prior_metrics.quality_score(real, real) == pytest.approx(0.6, abs=1e-15)


def test_quality_score_nan_and_errors():
    assert np.isnan(prior_metrics.quality_score([1.0, float('nan')], [0.0, 2.0]))
    with pytest.raises(ValueError, match='real_loglik_sorted must be sorted in ascending order'):
        prior_metrics.quality_score([1.0], [3.0, 2.0])
    with pytest.raises(ValueError, match='no generated log-likelihoods'):
        prior_metrics.quality_score([], [1.0])
    with pytest.raises(ValueError, match='no real log-likelihoods'):
        prior_metrics.quality_score([1.0], [])
    with pytest.raises(ValueError, match=r'expected 1-D log-likelihoods, got shapes \[2, 1\]'):
        prior_metrics.quality_score([[1.0], [2.0]], [1.0])


def test_quality_score_equals_mean_percentile_rank_of_the_prior(toy):
    _features, _record, prior = toy
    values = torch.linspace(float(prior.real_loglik_sorted[0]) - 1, float(prior.real_loglik_sorted[-1]) + 1, 17, dtype=torch.float64)
    expected = float(prior.percentile_rank(values).mean())
    assert prior_metrics.quality_score(values, prior.real_loglik_sorted) == pytest.approx(expected, abs=1e-15)

#----------------------------------------------------------------------------
# DDS on hand-computed examples.

def test_dds_hand_computed():
    # f^g = [2, 1, 0, 1] / 4; |f^r - f^g| = 0 + 0.05 + 0.2 + 0.25.
    assert prior_metrics.diversity_difference_score([0.5, 0.3, 0.2, 0.0], [0, 0, 1, 3], 4) == pytest.approx(0.5, abs=1e-15)
    # All generated images in one of four equal components: 0.75 + 3 * 0.25.
    assert prior_metrics.diversity_difference_score([0.25] * 4, torch.zeros(8, dtype=torch.int64), 4) == pytest.approx(1.5, abs=1e-15)
    # Same frequencies -> 0.
    assert prior_metrics.diversity_difference_score([0.5, 0.25, 0.25], [2, 0, 1, 0], 3) == 0.0


def test_dds_components_without_real_or_generated_images_give_no_nan():
    # Component 1 has no generated images, component 2 neither real nor generated ones.
    dds = prior_metrics.diversity_difference_score([0.5, 0.5, 0.0], [0, 0, 0, 0], 3)
    assert np.isfinite(dds) and dds == pytest.approx(1.0, abs=1e-15)
    # Generated images only where there are no reals: the largest possible value, 2.
    assert prior_metrics.diversity_difference_score([1.0, 0.0], [1, 1, 1], 2) == pytest.approx(2.0, abs=1e-15)


def test_dds_errors():
    with pytest.raises(ValueError, match=r'real_freqs must have shape \[3\], got \[2\]'):
        prior_metrics.diversity_difference_score([0.5, 0.5], [0], 3)
    with pytest.raises(ValueError, match='real_freqs must be non-negative and sum to 1'):
        prior_metrics.diversity_difference_score([0.5, 0.4], [0], 2)
    with pytest.raises(ValueError, match='component index 2 is out of range for 2 components'):
        prior_metrics.diversity_difference_score([0.5, 0.5], [0, 2], 2)
    with pytest.raises(ValueError, match='component index -1 is out of range'):
        prior_metrics.diversity_difference_score([0.5, 0.5], [-1, 0], 2)
    with pytest.raises(ValueError, match='gen_assignments must be a 1-D integer tensor'):
        prior_metrics.diversity_difference_score([0.5, 0.5], [0.0, 1.0], 2)
    with pytest.raises(ValueError, match='no generated assignments'):
        prior_metrics.diversity_difference_score([0.5, 0.5], torch.zeros(0, dtype=torch.int64), 2)

#----------------------------------------------------------------------------
# prior_scores: features -> (QS, DDS) under a fitted prior.

def test_real_features_score_one_half_and_zero(toy):
    features, record, prior = toy
    n = features.shape[0]
    scores = prior_metrics.prior_scores(prior, features)
    assert scores['qs'] == pytest.approx((n + 1) / (2 * n), abs=1e-12)
    assert scores['dds'] == pytest.approx(0.0, abs=1e-12)
    assert torch.equal(scores['gen_freqs'], record['real_freqs']['nearest'])


@pytest.mark.parametrize('rule', ['nearest', 'argmax'])
def test_prior_scores_match_a_numpy_reference(toy, rule):
    _features, record, prior = toy
    gen = _toy_features(5, num=30, shift=1.5)

    # Reference: project, score and assign with numpy where the maths is plain.
    z = prior.pca.transform(gen.to(torch.float64)).numpy()
    loglik = prior.gmm.score_samples(torch.from_numpy(z)).numpy()
    real = record['real_loglik']['sorted'].numpy()
    qs_ref = np.mean([np.sum(real <= v) / len(real) for v in loglik])
    if rule == 'nearest':
        means = prior.gmm.means_.numpy()
        assign = np.argmin(((z[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    else:
        assign = prior.gmm.predict_proba(torch.from_numpy(z)).numpy().argmax(axis=1)
    f_gen = np.bincount(assign, minlength=2) / len(assign)
    dds_ref = np.abs(record['real_freqs'][rule].numpy() - f_gen).sum()

    scores = prior_metrics.prior_scores(prior, gen, rule=rule)
    assert scores['qs'] == pytest.approx(qs_ref, abs=1e-12)
    assert scores['dds'] == pytest.approx(dds_ref, abs=1e-12)
    assert 0 < scores['dds'] < 2 and 0 < scores['qs'] < 1


def test_dds_uses_the_rule_the_prior_file_records():
    features = _toy_features(0)
    prior = prior_metrics.prior_from_record(_toy_record(features, assign_rule='argmax'))
    assert prior_metrics.assign_rule(prior) == 'argmax'
    gen = _toy_features(7, num=25, shift=3.0)
    assert prior_metrics.prior_scores(prior, gen)['dds'] == prior_metrics.prior_scores(prior, gen, rule='argmax')['dds']
    default = prior_metrics.prior_from_record(_toy_record(features))
    assert prior_metrics.assign_rule(default) == 'nearest'


def test_scores_are_chunk_independent(toy, monkeypatch):
    _features, _record, prior = toy
    gen = _toy_features(3, num=50, shift=0.5)
    whole = prior_metrics.prior_scores(prior, gen)
    monkeypatch.setattr(prior_metrics, '_SCORE_ROWS', 7)
    chunked = prior_metrics.prior_scores(prior, gen)
    assert chunked['qs'] == pytest.approx(whole['qs'], abs=1e-12) and chunked['dds'] == pytest.approx(whole['dds'], abs=1e-12)

#----------------------------------------------------------------------------
# Finding the prior: explicit prior_file first, then the snapshot.

def _snapshot_with(record, version=2):
    priors_state = dict(priors=dict(gmm=dict(prior_file=record, resample=None)))
    if version == 1:   # the whole loss state per rank
        return dict(G=None, resume_state=dict(version=1, ranks=[dict(loss=priors_state)]))
    return dict(G=None, resume_state=dict(version=2, loss=priors_state, ranks=[dict(loss=dict())]))   # shared loss state


def test_prior_sources(toy, tmp_path):
    _features, record, prior = toy
    path = str(tmp_path / 'toy-prior.pt')
    prior_file.save_prior(record, path)
    from_path = prior_metrics.load_metric_prior(prior_file=path)
    from_snapshot = prior_metrics.load_metric_prior(snapshot=_snapshot_with(record))
    from_v1_snapshot = prior_metrics.load_metric_prior(snapshot=_snapshot_with(record, version=1))
    from_dict = prior_metrics.load_metric_prior(prior_file=record)
    for loaded in (from_path, from_snapshot, from_v1_snapshot, from_dict):
        assert torch.equal(loaded.real_loglik_sorted.cpu(), prior.real_loglik_sorted.cpu())
        assert torch.equal(loaded.gmm.means_, prior.gmm.means_)
    assert prior_metrics.load_metric_prior(prior_file=prior) is prior
    assert "snapshot's GMM prior" in from_snapshot.path

    # An explicit prior wins over the snapshot's; no source at all gives None.
    other = _toy_record(_toy_features(9), pca=None)
    chosen = prior_metrics.load_metric_prior(prior_file=path, snapshot=_snapshot_with(other))
    assert chosen.pca is not None
    assert prior_metrics.load_metric_prior() is None
    assert prior_metrics.load_metric_prior(snapshot=dict(G=None)) is None
    assert prior_metrics.load_metric_prior(snapshot=dict(resume_state=dict(ranks=[dict(loss=dict())]))) is None
    with pytest.raises(TypeError, match='prior_file must be a path, a prior-file dict or a PriorFile, got int'):
        prior_metrics.load_metric_prior(prior_file=3)


def test_bad_prior_records(toy):
    _features, record, _prior = toy
    with pytest.raises(prior_file.PriorFileError, match=r"the snapshot's GMM prior \(resume_state\) is not a prior file"):
        prior_metrics.load_metric_prior(snapshot=_snapshot_with(dict(kind='something else')))
    with pytest.raises(prior_file.PriorFileError, match='newer than this code reads'):
        prior_metrics.prior_from_record(dict(record, format_version=prior_file.FORMAT_VERSION + 1))
    incomplete = {k: v for k, v in record.items() if k != 'real_freqs'}
    with pytest.raises(prior_file.PriorFileError, match=r'incomplete prior file \(missing real_freqs\)'):
        prior_metrics.prior_from_record(incomplete)


def test_metric_without_a_prior_says_what_to_pass():
    assert {'qs50k', 'dds50k', 'qs10k', 'dds10k'} <= set(metric_main.list_valid_metrics())
    opts = metric_utils.MetricOptions(device='cpu')
    with pytest.raises(metric_utils.MetricOptionsError,
                       match=r'^qs50k needs a GMM prior: pass a prior file from build_prior.py, or use a snapshot trained with '
                             r'the gmm prior$') as info:
        prior_metrics.qs50k(opts)
    assert info.value.option == 'prior_file'
    with pytest.raises(metric_utils.MetricOptionsError, match=r'^dds10k needs a GMM prior'):
        prior_metrics.dds10k(opts)
    opts = metric_utils.MetricOptions(device='cpu', snapshot=_snapshot_with(dict(kind='nope')))
    with pytest.raises(metric_utils.MetricOptionsError, match=r"^qs10k: the snapshot's GMM prior .* is not a prior file"):
        prior_metrics.qs10k(opts)

#----------------------------------------------------------------------------
