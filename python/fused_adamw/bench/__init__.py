"""The CPU benchmark (`python -m fused_adamw.bench`): every AdamW a MindSpore user can run,
one step each, against a memory floor. Kept out of the optimizer's core:

    cli.py     options, the run plan, the environment record
    runner.py  timing: the floor blocks, the steps, one floor per table
    impls.py   the implementations (ours and the peers) and the named suites
    sets.py    the parameter sets (GPT-like, single tensor, 1,000 small tensors)
    report.py  the table, the targets, the JSON file and the plot
    peers.py   MindFormers' own AdamW, loaded from its wheel (also used by the tests)

How to add an implementation or a set: bench/NOTES.md in the repository.
"""
