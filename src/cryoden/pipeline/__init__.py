"""Batches of files for facilities: inputs from folders, globs, STAR and cryoSPARC files, outputs
that mirror them, reruns that skip finished work, one bad file that does not stop the rest, and
Dask clusters when one machine is not enough. Built on :mod:`cryoden.inference`."""
