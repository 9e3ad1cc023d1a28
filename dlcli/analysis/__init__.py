"""Looking at finished runs: compare tables, re-evaluation of saved weights, bias-variance
decompositions, and the LR range test. Plain data in, plain data (and files) out.
"""
