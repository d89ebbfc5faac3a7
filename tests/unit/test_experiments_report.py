"""experiments.common's verdict rule and result schema, and experiments.report's page, on made-up results (no training)."""

import json
import os

import pytest

from experiments import common, report

def _arm(label, values, seeds=None):
    return common.arm(label, seeds if seeds is not None else list(range(len(values))), values)

def test_arm_mean_and_sample_std():
    a = _arm('x', [1.0, 2.0, 3.0])
    assert a['mean'] == pytest.approx(2.0) and a['std'] == pytest.approx(1.0)  # ddof = 1: sqrt(2 / 2)
    assert _arm('one', [0.5])['std'] == 0.0
    assert _arm('nan', [1.0, float('nan'), 3.0])['mean'] == pytest.approx(2.0)  # a failed seed does not poison the mean

@pytest.mark.parametrize('base, meth, better, paper, expected', [
    ([0.30, 0.32, 0.31], [0.10, 0.12, 0.11], 'lower', (0.3195, 0.1328), 'reproduced'),      # separated, gain 65 % >= half of 58 %
    ([0.30, 0.32, 0.31], [0.27, 0.29, 0.28], 'lower', (0.3195, 0.1328), 'same direction'),  # separated but gain 10 % < 29 %
    ([0.30, 0.40, 0.20], [0.25, 0.30, 0.20], 'lower', None, 'same direction'),              # better mean, intervals overlap
    ([0.10, 0.12, 0.11], [0.30, 0.32, 0.31], 'lower', None, 'not reproduced'),              # worse
    ([0.30, 0.30, 0.30], [0.30, 0.30, 0.30], 'lower', None, 'not reproduced'),              # equal
    ([3, 4, 3], [6, 6, 6], 'higher', None, 'reproduced'),                                   # modes covered: more is better
    ([3, 4, 3], [2, 2, 2], 'higher', None, 'not reproduced'),
    ([3, 6, 3], [5, 6, 4], 'higher', None, 'same direction'),
])
def test_verdict_rule(base, meth, better, paper, expected):
    assert common.verdict(_arm('b', base), _arm('m', meth), better=better, paper=paper) == expected

def test_one_seed_is_never_separated():
    assert common.verdict(_arm('b', [0.5]), _arm('m', [0.1]), 'lower') == 'same direction'

def test_verdict_of_missing_numbers_is_not_reproduced():
    assert common.verdict(_arm('b', []), _arm('m', [0.1, 0.2]), 'lower') == 'not reproduced'

def _result(claim_id, verdict='same direction', pictures=()):
    return dict(claim_id=claim_id, paper='Made-up et al. 2024, a paper', claim='The method halves the EMD.', paper_number='0.4 -> 0.2',
                metric='EMD (lower is better)', command=f'python -m experiments.fake --only={claim_id}', settings='a = 1 [§1]',
                deviations=['batch 100 instead of 500'], baseline=_arm('GAN', [0.4, 0.5, 0.45]), method=_arm('ours', [0.3, 0.5, 0.4]),
                extra_arms=[_arm('ablation', [0.6, 0.7])], verdict=verdict, mechanism='spread of D 0.001', tried='3 runs',
                pictures=list(pictures), machine='x86_64, 2 cores', date='2026-12-05 20:00 UTC')

def test_write_result_keeps_the_schema_order_and_refuses_other_keys(tmp_path):
    path = common.write_result(str(tmp_path), **_result('fake-one'))
    with open(path, encoding='utf-8') as f:
        assert tuple(json.load(f)) == common.SCHEMA
    with pytest.raises(ValueError, match='missing'):
        common.write_result(str(tmp_path), **{k: v for k, v in _result('fake-two').items() if k != 'mechanism'})
    with pytest.raises(ValueError, match='extra'):
        common.write_result(str(tmp_path), **_result('fake-three'), better='lower')
    with pytest.raises(ValueError, match='verdict'):
        common.write_result(str(tmp_path), **_result('fake-four', verdict='looks good'))

def test_report_has_the_verdict_table_first_then_a_section_per_claim(tmp_path):
    common.write_result(str(tmp_path), **_result('fake-a', pictures=['docs/reproduction/fake-a.png']))
    common.write_result(str(tmp_path), **_result('fake-b', verdict='not reproduced'))
    out = tmp_path / 'page.md'
    path, count = report.write_report(str(tmp_path), str(out))
    text = out.read_text(encoding='utf-8')
    assert count == 2 and path == str(out)
    table = text.index('| claim | paper |')
    assert text.index('## Verdict rule') < table < text.index('## fake-a: same direction') < text.index('## fake-b: not reproduced')
    assert '0.450 ± 0.050 (seeds 0,1,2)' in text and '**not reproduced**' in text
    assert 'python -m experiments.fake --only=fake-a' in text and '- batch 100 instead of 500' in text
    rel = os.path.relpath(os.path.join(common.REPO, 'docs', 'reproduction', 'fake-a.png'), str(tmp_path)).replace(os.sep, '/')
    assert f'![fake-a]({rel})' in text
    assert '| ablation | 0.650 ± 0.071 | 0: 0.600, 1: 0.700 |' in text

def test_parse_seeds():
    assert common.parse_seeds('0-2') == [0, 1, 2] and common.parse_seeds('0,3,5-6') == [0, 3, 5, 6]
    with pytest.raises(Exception, match='--seeds'):
        common.parse_seeds('a-b')
