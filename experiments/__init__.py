"""The papers' own experiments, one runnable file per paper (`python -m experiments.<paper>`), and the research scripts of the toy lab.

    python -m experiments.run_all --jobs=12       # every paper file, then docs/reproduction.md
    python -m experiments.masked --quick          # one paper, a tiny smoke version
    python -m experiments.report                  # re-render docs/reproduction.md from experiments/results/*.json

Speed benchmarks stay in benchmarks/. experiments/common.py holds the shared machinery (runs through train.py,
the result schema, the verdict rule, pictures over training); experiments/report.py renders the report.
"""
