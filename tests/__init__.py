"""mlkit's test suite. A regular package on purpose: some wheels (pytorch-widedeep) install a
top-level ``tests`` package into site-packages, which would otherwise win over this folder when
a worker imports a test module's function by reference (``tests.data.test_...``)."""
