"""experiments.toy_masked_sweep: its rows (train.py options and the sample-time spec of the "on" score) and its table."""

from experiments import toy_masked_sweep as sweep

def test_rows_train_the_prior_and_score_through_the_same_selection():
    rows = sweep.make_rows([0.1, 1.0], presample=4, pool=32)
    assert list(rows) == ['baseline', 'masked r=0.1', 'masked r=1', 'weighted']
    args, spec = rows['baseline']
    assert args == [] and spec == dict(class_name=sweep.TRANSFORM, mode='masked', rate=0.5, pool=32)  # masked at generation only
    args, spec = rows['masked r=0.1']
    assert '--prior=masked' in args and '--masked-rate=0.1' in args and '--masked-presample=4' in args
    assert spec['mode'] == 'masked' and spec['rate'] == 0.1
    args, spec = rows['weighted']
    assert '--masked-mode=weighted' in args and not any(a.startswith('--masked-rate') for a in args) and spec['mode'] == 'weighted'

def test_table_reports_mean_and_std_of_each_column():
    def record(row, seed, off, on):
        return dict(row=row, seed=seed, emd_off=off, emd_on=on, modes_off=8, modes_on=7, hq_off=0.5, hq_on=0.25, wall=10)
    records = [record('weighted', 1, 0.2, 0.5), record('weighted', 0, 0.4, 0.7), record('baseline', 0, 1.0, 2.0)]
    table = sweep.format_table(records, ['baseline', 'masked r=0.5', 'weighted']).splitlines()
    assert len(table) == 4  # header, rule, baseline, weighted (no runs of masked r=0.5)
    assert table[3].startswith('| weighted | 0.300 ± 0.100 | 0.600 ± 0.100 | 8.0 ± 0.0 / 7.0 ± 0.0 | 50 / 25 | 0.0891 |')
    assert table[3].endswith('| 0,1 |')
    assert '0.3195 / 0.3378 (on)' in table[2]
