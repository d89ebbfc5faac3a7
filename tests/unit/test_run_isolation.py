"""Runs in one Python process are isolated (issue 20, item 5): each run starts from fresh module-level statistics."""

import glob
import json
import math
import os

import pytest
from click.testing import CliRunner

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_diverged_runs_nan_does_not_leak_into_the_next_run(tmp_path):
    import train
    from torch_utils import training_stats

    # What a diverged run leaves in the process: NaN in the cumulative sums of its statistics. A Collector reports
    # differences of cumulative sums, so without a reset every later interval of these names would read NaN.
    for name in ('Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real'):
        training_stats.report(name, float('nan'))
    training_stats.Collector(regex='.*').update()

    result = CliRunner().invoke(train.main, ['--outdir', str(tmp_path), '--cfg=toy', '--data=toy:ring8,n=512', '--kimg=0.064',
                                             '--batch=16', '--tick=0.032', '--snap=1000', '--workers=1'])
    assert result.exit_code == 0, result.output[-2000:]
    (stats_file,) = glob.glob(os.path.join(str(tmp_path), '*', 'stats.jsonl'))
    with open(stats_file) as f:
        ticks = [json.loads(line) for line in f]
    assert len(ticks) >= 2
    for tick in ticks:
        for name in ('Loss/G/loss', 'Loss/D/loss'):
            mean = tick[name]['mean']
            assert isinstance(mean, (int, float)) and math.isfinite(mean), f'{name} of a fresh run reads {mean!r}'

#----------------------------------------------------------------------------
