# A package, so that this directory's conftest.py is not imported under the name `conftest`,
# which tests/test_api.py imports its helpers from.
