"""Datasets: ImageFolder pipelines (data.pipeline), image checks (data.image_check) and the
built-in digits data (data.digits). Nothing is imported here, so that `python -m
mindspore_acmix.data.image_check` runs without importing MindSpore (or itself twice)."""
