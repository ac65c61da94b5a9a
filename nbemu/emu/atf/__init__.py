"""ATF test suites under nbemu.

NetBSD's tests are ATF test programs (atf-c, atf-sh, atf-c++): each lists its test
cases with ``-l`` and runs one case per invocation, writing the result to a file.
Kyua is their runner.  This package runs such programs under nbemu, one nbemu
process per test case:

- ``tp``          the ATF test-program interface: ``-l`` lists, result files, and
                  the cross-check of a result with the way the process ended (as
                  Kyua's engine/atf_list.cpp, atf_result.cpp, requirements.cpp);
- ``launch``      ``python -m nbemu.emu.atf.launch``: nbemu for ATF cases (guest cwd =
                  host cwd, guest signal deaths re-raised as real ones);
- ``suite``       finding test programs: a file, or a directory with an Atffile /
                  Kyuafile tree;
- ``runner``      running cases in parallel, each in a fresh work directory, with
                  timeouts enforced on the nbemu process;
- ``report``      the Kyua-like text summary, JUnit XML and an HTML report;
- ``kyua``        preparing a suite for the real Kyua (Kyuafile + wrappers);
- ``cli``         ``nbemu atf ...``;
- ``pytest_plugin`` ``pytest --nbemu-atf PATH``;
- ``bench``       per-case overhead and parallel speed-up for ``make bench``.

Nothing here is imported by nbemu itself; importing this package is cheap.
"""
