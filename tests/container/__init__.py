# A package, so that this directory's conftest.py is not imported under the name `conftest`,
# which the tests at the top of tests/ are collected beside.
