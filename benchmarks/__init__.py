"""On-demand speed and accuracy benchmarks (DESIGN.md: run on demand, never by the tests).

`python -m benchmarks.simulate` simulates every shared night end to end and prints realtime
factors, a stage timing breakdown against a reference run in the same process, and the accuracy
tables. See benchmarks/README.md.
"""
