"""Render docs/reproduction.md from the result JSONs of the paper experiments (experiments/results/*.json).

    python -m experiments.report                                   # experiments/results -> docs/reproduction.md
    python -m experiments.report --results=DIR --out=FILE.md

The page: the verdict rule, one verdict table (paper's number, baseline mean ± std with seeds, method mean ± std,
verdict), then one section per claim with its settings, deviations, what was tried, the mechanism measured, the
extra arms, the pictures and the command that reruns it. Nothing here computes a verdict: each JSON carries the
one its experiment file computed with experiments.common.verdict.
"""

import os
import sys

import click

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from experiments import common  # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def _esc(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')

def _picture_link(path, page_dir):
    full = path if os.path.isabs(path) else os.path.join(REPO, path)
    return os.path.relpath(full, page_dir).replace(os.sep, '/')

# The paper's authors and year: its citation up to the quoted title.
def _authors(paper):
    return paper.split(', "')[0]

def verdict_table(results):
    lines = ['| claim | paper | paper\'s number | metric | baseline | method | verdict |', '|---|---|---|---|---|---|---|']
    for r in results:
        lines.append(f'| [{_esc(r["claim_id"])}](#{r["claim_id"]}) | {_esc(_authors(r["paper"]))} | {_esc(r["paper_number"])} | '
                     f'{_esc(r["metric"])} | {_esc(r["baseline"]["label"])}: {common.fmt_arm(r["baseline"])} | '
                     f'{_esc(r["method"]["label"])}: {common.fmt_arm(r["method"])} | **{r["verdict"]}** |')
    return '\n'.join(lines)

def claim_section(r, page_dir):
    lines = [f'<a id="{r["claim_id"]}"></a>', f'## {r["claim_id"]}: {r["verdict"]}', '',
             f'**Paper:** {r["paper"]}', '', f'**Claim:** {r["claim"]}', '',
             f'**Paper\'s number:** {r["paper_number"]}. **Metric:** {r["metric"]}.', '',
             '| arm | mean ± std | per seed |', '|---|---|---|']
    for a in [r['baseline'], r['method']] + list(r['extra_arms']):
        per_seed = ', '.join(f'{s}: {v:.3f}' for s, v in zip(a['seeds'], a['values']))
        mean_std = f'{a["mean"]:.3f} ± {a["std"]:.3f}' if a['values'] else '-'
        lines.append(f'| {_esc(a["label"])} | {mean_std} | {_esc(per_seed)} |')
    lines += ['', f'**Settings:** {r["settings"]}', '']
    if r['deviations']:
        lines += ['**Deviations from the paper:**', ''] + [f'- {d}' for d in r['deviations']] + ['']
    if r.get('tried'):
        lines += [f'**What was tried:** {r["tried"]}', '']
    if r.get('mechanism'):
        lines += [f'**Mechanism:** {r["mechanism"]}', '']
    for p in r['pictures']:
        lines += [f'![{r["claim_id"]}]({_picture_link(p, page_dir)})', '']
    lines += ['**Rerun:**', '', f'    {r["command"]}', '', f'_Machine: {r["machine"]}; date: {r["date"]}._', '']
    return '\n'.join(lines)

def render(results, page_path):
    page_dir = os.path.dirname(os.path.abspath(page_path))
    head = ['# Reproduction report: the papers\' own experiments', '',
            'Written by `python -m experiments.report` from `experiments/results/*.json` (do not edit by hand). Each row is '
            'rerun by the command in its section; `python -m experiments.run_all --jobs=N` reruns all of them and rewrites '
            'this page. Runs go through `train.py` (one thread each); the paper files (`experiments/<paper>.py`) hold each '
            'paper\'s settings with their sources at the top.', '',
            '## Verdict rule', '', common.VERDICT_RULE, '', '## Verdicts', '']
    if not results:
        return '\n'.join(head + ['No results yet: run `python -m experiments.run_all`.', ''])
    body = [verdict_table(results), '']
    for r in results:
        body.append(claim_section(r, page_dir))
    return '\n'.join(head + body)

def write_report(results_dir=common.RESULTS_DIR, out=os.path.join(REPO, 'docs', 'reproduction.md')):
    results = common.load_results(results_dir)
    for r in results:
        common.check_result(r)
    text = render(results, out)
    with open(out, 'w', encoding='utf-8') as f:
        f.write(text)
    return out, len(results)

@click.command()
@click.option('--results', 'results_dir', default=common.RESULTS_DIR, show_default=True, help='Folder of result JSONs')
@click.option('--out', default=os.path.join(REPO, 'docs', 'reproduction.md'), show_default=True, help='Markdown page to write')
def main(results_dir, out):
    """Render the reproduction report from the result JSONs."""
    path, count = write_report(results_dir, out)
    print(f'wrote {path} ({count} claims)')

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
