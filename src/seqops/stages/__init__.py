"""Pipeline stages, one module each, in dvc.yaml order: prepare → train → evaluate."""
