"""The Parsl and Dask layer, installed as ``hal_workflow.executors``."""
