"""Developer checks that guard the shape of the code base, not its behaviour: `leadflow.devtools.layout` (run it as
`python -m leadflow.devtools.layout`) fails on a module over the line limit or an import cycle among leadflow's
own modules, and `tests/test_layout.py` runs it so CI does too. Nothing here is imported by leadflow at run time."""
