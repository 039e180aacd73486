"""The grants of `POST /token` (PRODUCT.md §4), one module each."""
