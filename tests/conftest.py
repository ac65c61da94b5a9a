"""pytest set-up: nbemu is imported before any test module imports unicorn, so
the tests that drive an engine directly run on the one nbemu selects
(nbemu/emu/native/engine_lib.py), as the nbemu processes they start do."""
import nbemu  # noqa: F401
